"""Absolute cancer risk for one person from a model package: percentile, risk, interval, reasons.

`GenomicRiskPredictor.predict` takes a plaintext `SampleScore`,
`predict_score_sum` a bare score sum, as a client has after decrypting an
encrypted score, so the same package turns either into a `RiskPrediction`
(the encrypted path runs it on the client, the server never sees the score);
`explain` adds the TreeSHAP explanation, giving a `CancerRisk`, and `assess`
does both. Predicting and explaining are separate steps so that a service
can time them apart.

The interval is a 95% confidence interval of the calibrated risk from the
uncertainty of the two Platt calibration parameters (delta method on the
log-odds), i.e. how sure the calibration is of the level of risk at this
point; the population average is the mean predicted risk over the
reference score distribution for the same age and sex, family history at
its population prevalence.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clinpred.pilots.common.calibration import Calibrator
from clinpred.pilots.common.errors import FailedPrecondition, InvalidInput, ViolationCollector
from clinpred.pilots.common.explanation import (
    LOG_ODDS,
    TREESHAP_METHOD,
    Contribution,
    Explanation,
    Reason,
    top_reasons,
    treeshap_contributions,
)
from clinpred.pilots.common.model_package import ModelIdentity, ModelPackage
from clinpred.pilots.common.onnx import onnx_session
from clinpred.pilots.common.schema import FeatureBounds, ModelSchema, RangeFlag
from clinpred.pilots.genomics.encrypted import EncryptedScoreLayout
from clinpred.pilots.genomics.matching import Overlap
from clinpred.pilots.genomics.package_format import FEATURES, ScoreDistribution, onnx_probabilities
from clinpred.pilots.genomics.scoring import SampleScore, VariantContribution

_Z_975 = 1.959963984540054
SEXES = ("female", "male")
MIN_AGE, MAX_AGE = 18.0, 100.0
INTERVAL_METHOD = "delta method on the Platt calibration parameters"
# Yes/no inputs read badly as numbers with units ("family history 1 1 = yes").
_BINARY_WORDS = {"family_history": ("no family history", "family history"), "male": ("female sex", "male sex")}


@dataclass(frozen=True)
class RiskPrediction:
    """One person's risk of one cancer, before it is explained."""

    cancer: str
    pgs_id: str
    horizon_years: float
    score_sum: float
    z_score: float
    percentile: float  # 0-100 in the reference population
    absolute_risk: float
    risk_interval: tuple[float, float]
    interval_level: float
    population_average_risk: float  # same age and sex
    relative_risk: float  # absolute_risk / population_average_risk
    top_variants: tuple[VariantContribution, ...]
    model_inputs: tuple[float, ...]  # in FEATURES order, as the model saw them
    variants_total: int
    variants_matched: int
    variants_missing: int
    variants_imputed: int
    overlap: Overlap | None
    model: ModelIdentity
    out_of_range: tuple[RangeFlag, ...]  # model inputs outside the training range


@dataclass(frozen=True)
class CancerRisk(RiskPrediction):
    """A risk with its explanation: TreeSHAP of the model inputs, in log-odds, and the top reasons in words."""

    explanation: Explanation


class GenomicRiskPredictor:
    """A loaded genomics model package for one cancer."""

    def __init__(self, package: ModelPackage) -> None:
        self.package = package
        meta = package.metadata
        self.cancer = str(meta["cancer"])
        self.pgs_id = str(meta["pgs_id"])
        self.pgs_name = str(meta.get("pgs_name") or "")
        # The build of the package's own score layout (None: not reported).
        self.genome_build = str(meta["genome_build"]) if meta.get("genome_build") else None
        self.horizon_years = float(meta["horizon_years"])
        self.family_history_prevalence = float(meta["family_history_prevalence"])
        self.schema = ModelSchema.from_json(package.read_json("schema.json"))
        if self.schema.feature_names != FEATURES:
            raise FailedPrecondition(f"model package {package.path}: features {self.schema.feature_names} unexpected")
        self._specs = {spec.name: spec for spec in self.schema.features}
        self._bounds = FeatureBounds(self.schema)
        self.metrics: dict[str, Any] = package.read_json("metrics.json")
        calibration = package.read_json("calibration.json")
        self.calibrator = Calibrator.from_json(calibration)
        self.covariance = np.asarray(calibration["covariance"], dtype=np.float64)
        self.interval_level = float(calibration["interval_level"])
        self.reference = ScoreDistribution.from_json(package.read_json("reference_distribution.json"))
        self.layout = EncryptedScoreLayout.from_json(package.read_json("score_layout.json"))
        self.session = onnx_session(package.file("model.onnx"))
        import xgboost as xgb

        self.booster = xgb.Booster()
        self.booster.load_model(str(package.file("booster.json")))
        self.booster.set_param({"nthread": 1})
        self._reference_z = self.reference.standardise(np.asarray(self.reference.quantiles))

    @classmethod
    def load(cls, package: ModelPackage | Path | str) -> GenomicRiskPredictor:
        return cls(package if isinstance(package, ModelPackage) else ModelPackage.open(package))

    @property
    def identity(self) -> ModelIdentity:
        return self.package.identity

    def _raw(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        return onnx_probabilities(self.session, x)

    def _validate(self, age: float, sex: str, family_history: bool) -> None:
        violations = ViolationCollector()
        if not (isinstance(age, (int, float)) and np.isfinite(age) and MIN_AGE <= age <= MAX_AGE):
            violations.add("age", f"must be a number of years between {MIN_AGE:g} and {MAX_AGE:g}")
        if sex not in SEXES:
            violations.add("sex", f"must be one of {', '.join(SEXES)}")
        if not isinstance(family_history, (bool, np.bool_)):
            violations.add("family_history", "must be true or false")
        violations.raise_if_any()

    def assess(self, sample_score: SampleScore, age: float, sex: str, family_history: bool,
               top_variants: int = 10) -> CancerRisk:
        """The explained risk of a plaintext score: `predict` then `explain`."""
        return self.explain(self.predict(sample_score, age, sex, family_history, top_variants))

    def predict(self, sample_score: SampleScore, age: float, sex: str, family_history: bool,
                top_variants: int = 10) -> RiskPrediction:
        if sample_score.pgs_id != self.pgs_id:
            raise FailedPrecondition(f"score {sample_score.pgs_id} given to the {self.pgs_id} model ({self.cancer})")
        return self.predict_score_sum(
            sample_score.score_sum, age, sex, family_history,
            top_variants=tuple(sample_score.top_variants(top_variants)),
            variants_total=sample_score.variants_total, variants_matched=sample_score.variants_matched,
            variants_missing=sample_score.variants_missing, variants_imputed=sample_score.variants_imputed,
            overlap=sample_score.overlap,
        )

    def predict_score_sum(
        self,
        score_sum: float,
        age: float,
        sex: str,
        family_history: bool,
        *,
        top_variants: tuple[VariantContribution, ...] = (),
        variants_total: int | None = None,
        variants_matched: int | None = None,
        variants_missing: int = 0,
        variants_imputed: int = 0,
        overlap: Overlap | None = None,
    ) -> RiskPrediction:
        """The risk of a bare score sum, as a client has after decrypting an encrypted score."""
        self._validate(age, sex, family_history)
        if not np.isfinite(score_sum):
            raise InvalidInput("score_sum: must be a finite number")
        male = sex == "male"
        z = float(self.reference.standardise(score_sum))
        inputs = (z, float(age), float(male), float(family_history))
        x = np.array([inputs], dtype=np.float32)
        raw = self._raw(x)
        risk = float(self.calibrator.apply(raw)[0, 1])
        low, high = self._interval(float(raw[0, 1]))

        grid = len(self._reference_z)
        population = np.empty((2 * grid, len(FEATURES)), dtype=np.float32)
        population[:, 0] = np.tile(self._reference_z, 2)
        population[:, 1] = age
        population[:, 2] = float(male)
        population[:, 3] = np.repeat([0.0, 1.0], grid)
        average_by_history = self.calibrator.apply(self._raw(population))[:, 1].reshape(2, grid).mean(axis=1)
        average = float(average_by_history @ [1 - self.family_history_prevalence, self.family_history_prevalence])

        return RiskPrediction(
            cancer=self.cancer,
            pgs_id=self.pgs_id,
            horizon_years=self.horizon_years,
            score_sum=float(score_sum),
            z_score=z,
            percentile=self.reference.percentile(score_sum),
            absolute_risk=risk,
            risk_interval=(low, high),
            interval_level=self.interval_level,
            population_average_risk=average,
            relative_risk=risk / average,
            top_variants=top_variants,
            model_inputs=inputs,
            variants_total=len(self.layout) if variants_total is None else variants_total,
            variants_matched=self.reference.variants_matched if variants_matched is None else variants_matched,
            variants_missing=variants_missing,
            variants_imputed=variants_imputed,
            overlap=overlap,
            model=self.identity,
            out_of_range=self._bounds.flags(np.array([inputs]))[0],
        )

    def explain(self, prediction: RiskPrediction) -> CancerRisk:
        """TreeSHAP of the prediction's model inputs (exact, log-odds) and its top three reasons in words."""
        if prediction.model != self.identity:
            raise FailedPrecondition(f"a prediction of model {prediction.model.name} given to {self.identity.name}")
        # TreeSHAP reads the float32 inputs model.onnx saw; contributions show the inputs as given.
        shap = treeshap_contributions(self.booster, np.array([prediction.model_inputs], dtype=np.float32))
        contributions = tuple(
            Contribution(name, value, float(shap_value))
            for name, value, shap_value in zip(FEATURES, prediction.model_inputs, shap.values[0, 0], strict=True)
        )
        base = float(shap.base_values[0, 0])
        explained = f"{self.cancer} cancer within {self.horizon_years:g} years"
        explanation = Explanation(
            explained_class=explained,
            output_space=LOG_ODDS,
            base_value=base,
            margin=base + sum(c.shap_value for c in contributions),
            contributions=contributions,
            top_reasons=tuple(_in_words(r, explained) for r in top_reasons(contributions, self._specs, explained)),
            method=TREESHAP_METHOD,
        )
        return CancerRisk(**{f.name: getattr(prediction, f.name) for f in fields(RiskPrediction)}, explanation=explanation)

    def _interval(self, raw_probability: float) -> tuple[float, float]:
        p = min(max(raw_probability, 1e-12), 1 - 1e-12)
        logit = float(np.log(p) - np.log1p(-p))
        centre = self.calibrator.slope * logit + self.calibrator.intercept
        gradient = np.array([logit, 1.0])
        spread = _Z_975 * float(np.sqrt(gradient @ self.covariance @ gradient))
        return float(_sigmoid(centre - spread)), float(_sigmoid(centre + spread))


def _in_words(reason: Reason, explained: str) -> Reason:
    words = _BINARY_WORDS.get(reason.feature)
    if words is None:
        return reason
    return replace(reason, text=f"{words[int(reason.value >= 0.5)]} {reason.direction} the likelihood of {explained}")


def _sigmoid(value: float) -> float:
    return float(1.0 / (1.0 + np.exp(-value)))
