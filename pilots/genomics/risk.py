"""Absolute cancer risk for one person from a model package: percentile, risk, interval, reasons.

`GenomicRiskPredictor.predict` takes a plaintext `SampleScore`,
`predict_score_sum` a bare score sum, as a client has after decrypting an
encrypted score; `explain` adds the explanation, giving a `CancerRisk`, and
`assess` does both. Predicting and explaining are separate steps so that a
service can time them apart.

Two package formats:

- risk_parameters.json (1.2.0 on): the multiplicative hazard model of
  `absolute_risk`, calibrated to registry figures, valid for the ages and
  sexes its parameters state (outside them: FAILED_PRECONDITION naming the
  range). The interval propagates the published CIs and the unmeasured part
  of the score by simulation; the explanation is the model's exact terms on
  the log cumulative-hazard scale. A client computes the same answer from
  the parameters GetModelInfo publishes (`absolute_risk`, no model runtime).
- model.onnx + booster.json (1.1.0 and earlier): the XGBoost model on score,
  age, sex and family history (yes/no), Platt-calibrated, with a delta-method
  interval on the Platt parameters and TreeSHAP; kept loadable and selectable
  so an answer can be reproduced with the model that gave it. Its ages are
  18-100 and any number of affected relatives counts as "family history".
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
from clinpred.pilots.common.schema import FeatureBounds, ModelSchema, RangeFlag
from clinpred.pilots.genomics.absolute_risk import (
    RiskParameters,
    assess_score,
    check_valid,
    cumulative_baseline_hazard,
    imputed_score_variance,
)
from clinpred.pilots.genomics.encrypted import EncryptedScoreLayout
from clinpred.pilots.genomics.matching import Overlap
from clinpred.pilots.genomics.package_format import (
    FEATURES,
    MULTIPLICATIVE_FEATURES,
    RISK_PARAMETERS_FILE,
    TRANSPARENCY_FILE,
    ScoreDistribution,
    onnx_probabilities,
)
from clinpred.pilots.genomics.scoring import SampleScore, VariantContribution

_Z_975 = 1.959963984540054
SEXES = ("female", "male")
# What any request may say (INVALID_ARGUMENT outside); each model states the narrower range it is valid for.
MIN_AGE, MAX_AGE = 18.0, 100.0
MAX_RELATIVES = 50
INTERVAL_METHOD = "delta method on the Platt calibration parameters"
SIMULATION_INTERVAL_METHOD = (
    "simulation: published CIs of the OR per SD and of the family relative risks, and the unmeasured part of the score"
)
EXACT_METHOD = "exact terms of the multiplicative hazard model (log cumulative hazard over the horizon)"
LOG_CUMULATIVE_HAZARD = "log cumulative hazard"
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
    interval_method: str
    population_average_risk: float  # same age and sex
    relative_risk: float  # absolute_risk / population_average_risk
    top_variants: tuple[VariantContribution, ...]
    model_inputs: tuple[float, ...]  # in the model's feature order, as the model saw them
    affected_first_degree_relatives: int
    variants_total: int
    variants_matched: int
    variants_missing: int
    variants_imputed: int
    overlap: Overlap | None
    model: ModelIdentity
    out_of_range: tuple[RangeFlag, ...]  # model inputs outside the training range
    # The score's effect as used: OR per SD of the score as matched (0: the XGBoost packages, which learnt it)
    odds_ratio_per_sd: float
    # Share of the full score's variance not measured for this person (unmatched or imputed variants).
    unmeasured_variance_fraction: float
    score_effect_note: str


@dataclass(frozen=True)
class CancerRisk(RiskPrediction):
    """A risk with its explanation: the model's contributions and the top reasons in words."""

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
        self.schema = ModelSchema.from_json(package.read_json("schema.json"))
        self._specs = {spec.name: spec for spec in self.schema.features}
        self._bounds = FeatureBounds(self.schema)
        self.metrics: dict[str, Any] = package.read_json("metrics.json")
        self.reference = ScoreDistribution.from_json(package.read_json("reference_distribution.json"))
        self.layout = EncryptedScoreLayout.from_json(package.read_json("score_layout.json"))
        self.parameters: RiskParameters | None = None
        self._booster: _BoosterModel | None = None
        if RISK_PARAMETERS_FILE in package.manifest["files"]:
            if self.schema.feature_names != MULTIPLICATIVE_FEATURES:
                raise FailedPrecondition(f"model package {package.path}: features {self.schema.feature_names} unexpected")
            self.parameters = RiskParameters.from_json(package.read_json(RISK_PARAMETERS_FILE))
            self.interval_level = self.parameters.interval_level
        else:
            if self.schema.feature_names != FEATURES:
                raise FailedPrecondition(f"model package {package.path}: features {self.schema.feature_names} unexpected")
            self._booster = _BoosterModel(package, self.reference, float(meta["family_history_prevalence"]))
            self.interval_level = self._booster.interval_level

    @classmethod
    def load(cls, package: ModelPackage | Path | str) -> GenomicRiskPredictor:
        return cls(package if isinstance(package, ModelPackage) else ModelPackage.open(package))

    @property
    def identity(self) -> ModelIdentity:
        return self.package.identity

    @property
    def risk_parameters_json(self) -> bytes:
        """The exact bytes of risk_parameters.json (b"" for the XGBoost packages): the manifest lists their SHA-256."""
        return self.package.file(RISK_PARAMETERS_FILE).read_bytes() if self.parameters is not None else b""

    @property
    def manifest_json(self) -> bytes:
        """The exact bytes of package.json, whose SHA-256 is the model's identity."""
        return (self.package.path / "package.json").read_bytes()

    @property
    def transparency(self) -> dict[str, str]:
        """The model's HTI-1 source attributes (transparency.json; empty for the XGBoost packages)."""
        if TRANSPARENCY_FILE not in self.package.manifest["files"]:
            return {}
        return {str(k): str(v) for k, v in self.package.read_json(TRANSPARENCY_FILE).items()}

    @property
    def valid_ages(self) -> tuple[float, float]:
        return self.parameters.valid_ages if self.parameters is not None else (MIN_AGE, MAX_AGE)

    @property
    def valid_sexes(self) -> tuple[str, ...]:
        return self.parameters.valid_sexes if self.parameters is not None else SEXES

    def _validate(self, age: float, sex: str, relatives: int) -> None:
        violations = ViolationCollector()
        if not (isinstance(age, (int, float)) and np.isfinite(age) and MIN_AGE <= age <= MAX_AGE):
            violations.add("age", f"must be a number of years between {MIN_AGE:g} and {MAX_AGE:g}")
        if sex not in SEXES:
            violations.add("sex", f"must be one of {', '.join(SEXES)}")
        if isinstance(relatives, (bool, np.bool_)) or not isinstance(relatives, (int, np.integer)) or not (
            0 <= relatives <= MAX_RELATIVES
        ):
            violations.add("affected_first_degree_relatives", f"must be a whole number from 0 to {MAX_RELATIVES}")
        violations.raise_if_any()
        if self.parameters is not None:
            check_valid(self.parameters, float(age), sex)

    def assess(self, sample_score: SampleScore, age: float, sex: str, relatives: int,
               top_variants: int = 10) -> CancerRisk:
        """The explained risk of a plaintext score: `predict` then `explain`."""
        return self.explain(self.predict(sample_score, age, sex, relatives, top_variants))

    def predict(self, sample_score: SampleScore, age: float, sex: str, relatives: int,
                top_variants: int = 10) -> RiskPrediction:
        if sample_score.pgs_id != self.pgs_id:
            raise FailedPrecondition(f"score {sample_score.pgs_id} given to the {self.pgs_id} model ({self.cancer})")
        imputed_variance = imputed_score_variance(sample_score.contributions)
        return self.predict_score_sum(
            sample_score.score_sum, age, sex, relatives,
            top_variants=tuple(sample_score.top_variants(top_variants)),
            variants_total=sample_score.variants_total, variants_matched=sample_score.variants_matched,
            variants_missing=sample_score.variants_missing, variants_imputed=sample_score.variants_imputed,
            overlap=sample_score.overlap, imputed_variance=imputed_variance,
        )

    def predict_score_sum(
        self,
        score_sum: float,
        age: float,
        sex: str,
        relatives: int,
        *,
        top_variants: tuple[VariantContribution, ...] = (),
        variants_total: int | None = None,
        variants_matched: int | None = None,
        variants_missing: int = 0,
        variants_imputed: int = 0,
        overlap: Overlap | None = None,
        imputed_variance: float = 0.0,
    ) -> RiskPrediction:
        """The risk of a bare score sum, as a client has after decrypting an encrypted score.

        `imputed_variance`: the score variance of the genotypes mean-imputed for this person
        (sum of 2 p (1 - p) w^2), which the interval counts as unmeasured.
        """
        self._validate(age, sex, relatives)
        if not np.isfinite(score_sum):
            raise InvalidInput("score_sum: must be a finite number")
        relatives = int(relatives)
        z = float(self.reference.standardise(score_sum))
        matched = self.reference.variants_matched if variants_matched is None else variants_matched
        if self.parameters is None:
            assert self._booster is not None
            inputs: tuple[float, ...] = (z, float(age), float(sex == "male"), float(relatives > 0))
            risk, (low, high), average = self._booster.predict(inputs)
            interval_method, ratio, unmeasured, note = INTERVAL_METHOD, 0.0, 0.0, ""
        else:
            answer = assess_score(self.parameters, float(score_sum), float(age), sex, relatives,
                                  variants_matched=matched, imputed_variance=imputed_variance)
            inputs = (z, float(age), float(relatives))
            risk, (low, high), average = answer.absolute_risk, answer.risk_interval, answer.population_average_risk
            interval_method, ratio = SIMULATION_INTERVAL_METHOD, answer.odds_ratio_per_sd
            unmeasured, note = answer.unmeasured_variance_fraction, answer.score_effect_note
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
            interval_method=interval_method,
            population_average_risk=average,
            relative_risk=risk / average,
            top_variants=top_variants,
            model_inputs=inputs,
            affected_first_degree_relatives=relatives,
            variants_total=len(self.layout) if variants_total is None else variants_total,
            variants_matched=matched,
            variants_missing=variants_missing,
            variants_imputed=variants_imputed,
            overlap=overlap,
            model=self.identity,
            out_of_range=self._bounds.flags(np.array([inputs]))[0],
            odds_ratio_per_sd=ratio,
            unmeasured_variance_fraction=unmeasured,
            score_effect_note=note,
        )

    def explain(self, prediction: RiskPrediction) -> CancerRisk:
        """The prediction's contributions (exact in either model) and its top three reasons in words."""
        if prediction.model != self.identity:
            raise FailedPrecondition(f"a prediction of model {prediction.model.name} given to {self.identity.name}")
        explained = f"{self.cancer} cancer within {self.horizon_years:g} years"
        if self.parameters is None:
            assert self._booster is not None
            contributions, base, space, method = self._booster.contributions(prediction.model_inputs)
        else:
            contributions, base = _hazard_terms(self.parameters, prediction)
            space, method = LOG_CUMULATIVE_HAZARD, EXACT_METHOD
        explanation = Explanation(
            explained_class=explained,
            output_space=space,
            base_value=base,
            margin=base + sum(c.shap_value for c in contributions),
            contributions=contributions,
            top_reasons=tuple(_in_words(r, explained) for r in top_reasons(contributions, self._specs, explained)),
            method=method,
        )
        return CancerRisk(**{f.name: getattr(prediction, f.name) for f in fields(RiskPrediction)}, explanation=explanation)


def _hazard_terms(parameters: RiskParameters, prediction: RiskPrediction) -> tuple[tuple[Contribution, ...], float]:
    """Exact additive terms of the log cumulative baseline-scaled hazard, against z = 0, no relative, age 50."""
    z, age, relatives = prediction.model_inputs
    low, high = parameters.valid_ages
    reference_age = float(np.clip(50.0, low, high))
    base = float(np.log(cumulative_baseline_hazard(parameters, reference_age)))
    age_term = float(np.log(cumulative_baseline_hazard(parameters, age))) - base
    terms = (
        Contribution("polygenic_score_z", z, parameters.effective_log_hr_per_sd * z),
        Contribution("age", age, age_term),
        Contribution("affected_first_degree_relatives", relatives,
                     float(np.log(parameters.family_relative_risk(int(relatives))))),
    )
    return terms, base


class _BoosterModel:
    """The XGBoost packages (1.1.0 and earlier): ONNX for risk, the native booster for TreeSHAP."""

    def __init__(self, package: ModelPackage, reference: ScoreDistribution, family_history_prevalence: float) -> None:
        from clinpred.pilots.common.onnx import onnx_session

        calibration = package.read_json("calibration.json")
        self.calibrator = Calibrator.from_json(calibration)
        self.covariance = np.asarray(calibration["covariance"], dtype=np.float64)
        self.interval_level = float(calibration["interval_level"])
        self.family_history_prevalence = family_history_prevalence
        self.session = onnx_session(package.file("model.onnx"))
        import xgboost as xgb

        self.booster = xgb.Booster()
        self.booster.load_model(str(package.file("booster.json")))
        self.booster.set_param({"nthread": 1})
        self._reference_z = reference.standardise(np.asarray(reference.quantiles))

    def _raw(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        return onnx_probabilities(self.session, x)

    def predict(self, inputs: tuple[float, ...]) -> tuple[float, tuple[float, float], float]:
        raw = self._raw(np.array([inputs], dtype=np.float32))
        risk = float(self.calibrator.apply(raw)[0, 1])
        interval = self._interval(float(raw[0, 1]))
        grid = len(self._reference_z)
        population = np.empty((2 * grid, len(FEATURES)), dtype=np.float32)
        population[:, 0] = np.tile(self._reference_z, 2)
        population[:, 1] = inputs[1]
        population[:, 2] = inputs[2]
        population[:, 3] = np.repeat([0.0, 1.0], grid)
        average_by_history = self.calibrator.apply(self._raw(population))[:, 1].reshape(2, grid).mean(axis=1)
        average = float(average_by_history @ [1 - self.family_history_prevalence, self.family_history_prevalence])
        return risk, interval, average

    def contributions(self, inputs: tuple[float, ...]) -> tuple[tuple[Contribution, ...], float, str, str]:
        # TreeSHAP reads the float32 inputs model.onnx saw; contributions show the inputs as given.
        shap = treeshap_contributions(self.booster, np.array([inputs], dtype=np.float32))
        contributions = tuple(
            Contribution(name, value, float(shap_value))
            for name, value, shap_value in zip(FEATURES, inputs, shap.values[0, 0], strict=True)
        )
        return contributions, float(shap.base_values[0, 0]), LOG_ODDS, TREESHAP_METHOD

    def _interval(self, raw_probability: float) -> tuple[float, float]:
        p = min(max(raw_probability, 1e-12), 1 - 1e-12)
        logit = float(np.log(p) - np.log1p(-p))
        centre = self.calibrator.slope * logit + self.calibrator.intercept
        gradient = np.array([logit, 1.0])
        spread = _Z_975 * float(np.sqrt(gradient @ self.covariance @ gradient))
        return float(_sigmoid(centre - spread)), float(_sigmoid(centre + spread))


def _in_words(reason: Reason, explained: str) -> Reason:
    if reason.feature == "affected_first_degree_relatives":
        count = int(reason.value)
        relatives = f"{count} affected first-degree relative{'s' if count != 1 else ''}"
        return replace(reason, text=f"{relatives} {reason.direction} the likelihood of {explained}")
    words = _BINARY_WORDS.get(reason.feature)
    if words is None:
        return reason
    return replace(reason, text=f"{words[int(reason.value >= 0.5)]} {reason.direction} the likelihood of {explained}")


def _sigmoid(value: float) -> float:
    return float(1.0 / (1.0 + np.exp(-value)))
