"""Tumour classification from a verified model package: probabilities, confidence, explanation.

`predict`: ONNX Runtime probabilities -> calibration -> label -> conformal set
-> flags for values outside the training range. `explain`: exact TreeSHAP on
the native booster (exact linear SHAP for the logistic regression). Everything that does not depend on the case (sessions,
arrays of ranges, the explained output per class, spec lookups) is built once
in `load`, so a single case costs little more than the two model calls.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clinpred.pilots.common.calibration import Calibrator, binary_probabilities_from_margins
from clinpred.pilots.common.conformal import ConformalSet, SplitConformal
from clinpred.pilots.common.errors import ModelPackageError
from clinpred.pilots.common.explanation import (
    Explanation,
    ExplanationDetail,
    StumpShap,
    TreeShap,
    TreeShapExplainer,
    explanations_of_batch,
)
from clinpred.pilots.common.model_package import ModelIdentity, ModelPackage
from clinpred.pilots.common.onnx import onnx_session
from clinpred.pilots.common.schema import FeatureBounds, FeatureSpec, ModelSchema, RangeFlag
from clinpred.pilots.tumor.linear import LinearShapExplainer, LinearTumorModel
from clinpred.pilots.tumor.package_format import (
    BOOSTER_FILES,
    CLASS_COVERAGE_METRIC,
    ONNX_INPUT,
    ONNX_PROBABILITIES,
    PILOT,
    TRANSPARENCY,
    VERIFIED_COVERAGE_METRIC,
)
from clinpred.pilots.tumor.prevalence import PriorShift, training_prevalence


@dataclass(frozen=True)
class TumorCases:
    """Cases to classify: `rows[i]` holds case `case_ids[i]`'s features, float64 in schema feature order,
    and `detail` says how much explanation their answers carry."""

    case_ids: tuple[str, ...]
    rows: npt.NDArray[np.float64]
    detail: ExplanationDetail = ExplanationDetail.FULL

    def __post_init__(self) -> None:
        if self.rows.ndim != 2 or self.rows.shape[0] != len(self.case_ids):
            raise ValueError("one row of features per case id is needed")

    def __len__(self) -> int:
        return len(self.case_ids)


@dataclass(frozen=True)
class TumorPrediction:
    label: str
    probabilities: dict[str, float]  # schema class order
    confidence: ConformalSet
    out_of_range: tuple[RangeFlag, ...]


@dataclass(frozen=True)
class TumorClassification:
    label: str
    probabilities: dict[str, float]
    confidence: ConformalSet
    explanation: Explanation | None  # None when the caller asked for none
    out_of_range: tuple[RangeFlag, ...]
    model: ModelIdentity


@dataclass(frozen=True)
class ClassifiedCase:
    """One case's answer, under the id its caller gave it."""

    case_id: str
    classification: TumorClassification


@dataclass(frozen=True)
class TumorModelInfo:
    """What the loaded model is: identity, schema, published metrics and conformal coverage."""

    identity: ModelIdentity
    schema: ModelSchema
    metrics: dict[str, Any]
    conformal_coverage: float  # the target the sets were fitted for
    verified_coverage: float  # measured on held-out folds at training (0.0 if the package states none)
    # Per class, measured on held-out folds (empty if the package states none).
    class_coverage: dict[str, float] = field(default_factory=dict)
    # The positive class's prevalence answers are recalibrated for, and the training data's (binary models).
    prior_shift: PriorShift | None = None
    # ONC HTI-1 source attributes (transparency.json of the package); "" for packages without them.
    transparency_json: str = ""


def predictions_from_probabilities(
    p: np.ndarray,
    classes: tuple[str, ...],
    conformal: SplitConformal,
    flags: Sequence[tuple[RangeFlag, ...]],
    prior_shift: PriorShift | None = None,
) -> list[TumorPrediction]:
    """Label, probabilities and conformal set per row of calibrated `p[n, k]`: the served answer's
    and the one a client finishes from a decrypted margin.

    With a prior shift, probabilities and label are at the clinical prevalence; the set is the one
    fitted on the training prevalence's probabilities (its per-class coverage does not depend on the
    prevalence), plus the shifted label, so the label is always in its set."""
    shown = prior_shift.apply(p) if prior_shift is not None else p
    labels = shown.argmax(axis=1)
    mask = conformal.mask(p)
    mask[np.arange(p.shape[0]), labels] = True
    sets = conformal.sets_from_mask(mask)
    return [
        TumorPrediction(
            label=classes[labels[i]],
            probabilities=dict(zip(classes, shown[i].tolist(), strict=True)),
            confidence=sets[i],
            out_of_range=flags[i],
        )
        for i in range(p.shape[0])
    ]


def explanations_from_shap(
    shap: TreeShap,
    rows: np.ndarray,
    predictions: Sequence[TumorPrediction],
    schema: ModelSchema,
    method: str,
    specs_by_name: Mapping[str, FeatureSpec] | None = None,
    details: Sequence[ExplanationDetail] | None = None,
) -> list[Explanation | None]:
    """Explanations of `predictions` from their TreeSHAP values, at each row's detail (default: full):
    binary models explain the positive class, multi-class the predicted class. The client that decrypts
    SHAP values builds them here too."""
    specs = specs_by_name if specs_by_name is not None else {f.name: f for f in schema.features}
    classes = schema.classes
    if len(classes) == 2:
        outputs = [0] * len(predictions)
        explained = [schema.positive_class] * len(predictions)
    else:
        outputs = [classes.index(p.label) for p in predictions]
        explained = [p.label for p in predictions]
    levels = details if details is not None else [ExplanationDetail.FULL] * len(predictions)
    return explanations_of_batch(shap, outputs, rows, schema.feature_names, specs, explained, levels, method=method)


def _load_booster(algorithm: str, path: str) -> Any:
    if algorithm == "xgboost":
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(path)
        booster.set_param({"nthread": 1})
        return booster
    if algorithm == "lightgbm":
        import lightgbm as lgb

        # Threads are set per call (the explainer passes num_threads=1); a model file's own params win here.
        return lgb.Booster(model_file=path)
    if algorithm == "logistic":
        import json

        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ModelPackageError(f"linear model file {path} is unreadable: {exc}") from exc
        return LinearTumorModel.from_json(data)
    raise ModelPackageError(f"unknown algorithm {algorithm!r} in model package")


def probe_rows(schema: ModelSchema, n_random: int = 64, seed: int = 0) -> np.ndarray:
    """Rows spread over the training range, to check a fast explainer against the booster at load.

    Besides random points, each feature also takes its training minimum,
    median and maximum, so ties with split thresholds at observed values occur.
    """
    low = np.array([f.training_min for f in schema.features])
    high = np.array([f.training_max for f in schema.features])
    mid = np.array(
        [f.training_median if f.training_median is not None else (f.training_min + f.training_max) / 2 for f in schema.features]
    )
    rng = np.random.default_rng(seed)
    spread = low + (high - low) * rng.random((n_random, low.size))
    return np.vstack([low, mid, high, spread])


class TumorClassifier:
    """A loaded tumour model; thread-safe for concurrent `predict`/`explain` calls."""

    def __init__(
        self,
        package: ModelPackage,
        schema: ModelSchema,
        session: Any,
        booster: Any,
        calibrator: Calibrator,
        conformal: SplitConformal,
        metrics: dict[str, Any],
    ) -> None:
        self.package = package
        self.identity: ModelIdentity = package.identity
        self.schema = schema
        self.metrics = metrics
        self.calibrator = calibrator
        self.conformal = conformal
        self._session = session
        self._booster = booster
        self._explainer: TreeShapExplainer | LinearShapExplainer = (
            LinearShapExplainer(booster)
            if isinstance(booster, LinearTumorModel)
            else TreeShapExplainer(booster, probe=probe_rows(schema))
        )
        self._bounds = FeatureBounds(schema)
        self._classes = schema.classes
        self._specs = {f.name: f for f in schema.features}
        self._binary = len(schema.classes) == 2
        if self._binary and schema.classes[1] != schema.positive_class:
            raise ModelPackageError("binary model packages must list the positive class second")
        self.prior_shift: PriorShift | None = None
        files = package.manifest["files"]
        self.transparency_json = package.file(TRANSPARENCY).read_text() if TRANSPARENCY in files else ""
        if self._binary and "class_counts" in metrics.get("details", {}):
            trained = training_prevalence(metrics, schema.positive_class)
            self.prior_shift = PriorShift(trained, trained)

    def at_prevalence(self, clinical_prevalence: float | None) -> TumorClassifier:
        """This model answering for a clinic with this positive-class prevalence (None: the training data's).

        Shares the loaded sessions. A multi-class model, or one whose package records no class counts,
        refuses a stated prevalence (ModelPackageError, at service start)."""
        if clinical_prevalence is None:
            return self
        if self.prior_shift is None:
            raise ModelPackageError(
                f"model {self.identity.name} {self.identity.version}: a clinical prevalence needs a binary model "
                "whose package records its class counts"
            )
        shifted = copy.copy(self)
        shifted.prior_shift = PriorShift(self.prior_shift.training_prevalence, clinical_prevalence)
        return shifted

    @classmethod
    def load(cls, package: ModelPackage, onnx_threads: int = 1) -> TumorClassifier:
        if package.pilot != PILOT:
            raise ModelPackageError(f"model package {package.identity.name} is for pilot {package.pilot}, not {PILOT}")
        metadata = package.metadata
        algorithm = str(metadata.get("algorithm", ""))
        booster_file = str(metadata.get("booster", BOOSTER_FILES.get(algorithm, "")))
        schema = ModelSchema.from_json(package.read_json("schema.json"))
        calibrator = Calibrator.from_json(package.read_json("calibration.json"))
        conformal = SplitConformal.from_json(package.read_json("conformal.json"))
        if conformal.classes != schema.classes or calibrator.n_classes != len(schema.classes):
            raise ModelPackageError(f"model package {package.path}: calibration/conformal classes disagree with schema")
        session = onnx_session(package.file("model.onnx"), threads=onnx_threads)
        input_names = [i.name for i in session.get_inputs()]
        output_names = [o.name for o in session.get_outputs()]
        if input_names != [ONNX_INPUT] or ONNX_PROBABILITIES not in output_names:
            raise ModelPackageError(f"model package {package.path}: model.onnx has unexpected inputs/outputs")
        booster = _load_booster(algorithm, str(package.file(booster_file)))
        return cls(package, schema, session, booster, calibrator, conformal, package.read_json("metrics.json"))

    @property
    def info(self) -> TumorModelInfo:
        return TumorModelInfo(
            identity=self.identity,
            schema=self.schema,
            metrics=self.metrics,
            conformal_coverage=self.conformal.coverage,
            verified_coverage=float(self.metrics.get(VERIFIED_COVERAGE_METRIC, 0.0)),
            class_coverage={
                str(c): float(v) for c, v in self.metrics.get(CLASS_COVERAGE_METRIC, {}).items()
            },
            prior_shift=self.prior_shift,
            transparency_json=self.transparency_json,
        )

    def _rows(self, x: np.ndarray) -> np.ndarray:
        rows = np.asarray(x, dtype=np.float64)
        if rows.ndim == 1:
            rows = rows[None, :]
        self._bounds.validate(rows)
        return rows

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities `[n, k]` in schema class order (no validation; `x` already checked)."""
        linear = self.linear_model
        if linear is not None:
            # In float64 from the published coefficients: the margin its SHAP values sum to, whatever the
            # batch (model.onnx agrees to 1e-5, checked at training, for runtimes that serve ONNX).
            return self.calibrator.apply(linear.probabilities(x))
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        raw = self._session.run([ONNX_PROBABILITIES], {ONNX_INPUT: x32})[0]
        return self.calibrator.apply(np.asarray(raw, dtype=np.float64))

    def predict(self, x: np.ndarray) -> list[TumorPrediction]:
        """`x[n, d]` float64 in schema feature order. Raises InvalidInput for impossible values."""
        return self._predict(self._rows(x))

    def _predict(self, rows: np.ndarray) -> list[TumorPrediction]:
        if rows.shape[0] == 0:
            return []
        return self._answers(self.probabilities(rows), self._bounds.flags(rows))

    def predictions_from_margins(self, margins: np.ndarray) -> list[TumorPrediction]:
        """Answers from raw log-odds `[n]` of a binary model (e.g. decrypted on the client), no range flags.

        The same calibration and conformal sets as `predict`; the sigmoid is what the ONNX graph applies.
        """
        if not self._binary:
            raise ModelPackageError("answers from margins need a binary model")
        z = np.asarray(margins, dtype=np.float64).reshape(-1)
        if z.size == 0:
            return []
        return self._answers(binary_probabilities_from_margins(z, self.calibrator), [()] * z.size)

    @property
    def explanation_method(self) -> str:
        return self._explainer.method

    @property
    def linear_model(self) -> LinearTumorModel | None:
        """The standardised logistic regression, when the package is one."""
        return self._explainer.model if isinstance(self._explainer, LinearShapExplainer) else None

    @property
    def stump_shap(self) -> StumpShap | None:
        """The step-function form of the booster, when it is one and was verified against it at load."""
        return self._explainer.fast

    def _answers(self, p: np.ndarray, flags: Sequence[tuple[RangeFlag, ...]]) -> list[TumorPrediction]:
        return predictions_from_probabilities(p, self._classes, self.conformal, flags, self.prior_shift)

    def explain(
        self, x: np.ndarray, predictions: Sequence[TumorPrediction], details: Sequence[ExplanationDetail] | None = None
    ) -> list[Explanation | None]:
        """TreeSHAP in log-odds: binary models explain the positive class, multi-class the predicted class.

        `details[i]` is row i's detail (default: full); rows at NONE get None, and a batch of only those
        computes no SHAP values."""
        return self._explain(self._rows(x), predictions, details)

    def _explain(
        self, rows: np.ndarray, predictions: Sequence[TumorPrediction], details: Sequence[ExplanationDetail] | None = None
    ) -> list[Explanation | None]:
        if len(predictions) != rows.shape[0] or (details is not None and len(details) != rows.shape[0]):
            raise ValueError("one prediction (and detail) per row is needed")
        if rows.shape[0] == 0:
            return []
        if details is not None and all(d is ExplanationDetail.NONE for d in details):
            return [None] * rows.shape[0]
        shap = self._explainer(rows)
        return explanations_from_shap(shap, rows, predictions, self.schema, self._explainer.method, self._specs, details)

    def classify(self, x: np.ndarray, detail: ExplanationDetail = ExplanationDetail.FULL) -> list[TumorClassification]:
        rows = self._rows(x)
        predictions = self._predict(rows)
        return self.combine(predictions, self._explain(rows, predictions, [detail] * rows.shape[0]))

    def combine(
        self, predictions: Sequence[TumorPrediction], explanations: Sequence[Explanation | None]
    ) -> list[TumorClassification]:
        """Answers from predictions and their explanations (for callers that time the two apart)."""
        return classifications(predictions, explanations, self.identity)


def classifications(
    predictions: Sequence[TumorPrediction], explanations: Sequence[Explanation | None], model: ModelIdentity
) -> list[TumorClassification]:
    """The answers of `model` from its predictions and their explanations, case by case."""
    return [
        TumorClassification(
            label=p.label,
            probabilities=p.probabilities,
            confidence=p.confidence,
            explanation=e,
            out_of_range=p.out_of_range,
            model=model,
        )
        for p, e in zip(predictions, explanations, strict=True)
    ]
