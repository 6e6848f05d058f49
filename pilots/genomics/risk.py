"""Absolute cancer risk for one person from a model package: percentile, risk, interval, reasons.

`GenomicRiskPredictor.assess` takes a plaintext `SampleScore`;
`assess_score_sum` takes a bare score sum, as a client has after decrypting
an encrypted score, so the same package turns either into a `CancerRisk`
(the encrypted path runs it on the client, the server never sees the score).

The interval is a 95% confidence interval of the calibrated risk from the
uncertainty of the two Platt calibration parameters (delta method on the
log-odds), i.e. how sure the calibration is of the level of risk at this
point; the population average is the mean predicted risk over the
reference score distribution for the same age and sex, family history at
its population prevalence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clinpred.pilots.common.calibration import Calibrator
from clinpred.pilots.common.errors import FailedPrecondition, InvalidInput, ViolationCollector
from clinpred.pilots.common.explanation import treeshap_contributions
from clinpred.pilots.common.model_package import ModelIdentity, ModelPackage
from clinpred.pilots.common.schema import ModelSchema
from clinpred.pilots.genomics.cohort import ScoreDistribution
from clinpred.pilots.genomics.encrypted import EncryptedScoreLayout
from clinpred.pilots.genomics.matching import Overlap
from clinpred.pilots.genomics.scoring import SampleScore, VariantContribution
from clinpred.pilots.genomics.training import FEATURES, onnx_probabilities, onnx_session

_Z_975 = 1.959963984540054
SEXES = ("female", "male")


@dataclass(frozen=True)
class CancerRisk:
    cancer: str
    pgs_id: str
    scoring_file: str
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
    shap_values: dict[str, float]  # log-odds contribution of each model input
    shap_base_value: float
    variants_total: int
    variants_matched: int
    variants_missing: int
    variants_imputed: int
    overlap: Overlap | None
    model: ModelIdentity
    outside_training_range: tuple[str, ...] = field(default_factory=tuple)


class GenomicRiskPredictor:
    """A loaded genomics model package for one cancer."""

    def __init__(self, package: ModelPackage) -> None:
        self.package = package
        meta = package.metadata
        self.cancer = str(meta["cancer"])
        self.pgs_id = str(meta["pgs_id"])
        self.scoring_file = str(meta["scoring_file"])
        self.horizon_years = float(meta["horizon_years"])
        self.family_history_prevalence = float(meta["family_history_prevalence"])
        self.schema = ModelSchema.from_json(package.read_json("schema.json"))
        if self.schema.feature_names != FEATURES:
            raise FailedPrecondition(f"model package {package.path}: features {self.schema.feature_names} unexpected")
        calibration = package.read_json("calibration.json")
        self.calibrator = Calibrator.from_json(calibration)
        self.covariance = np.asarray(calibration["covariance"], dtype=np.float64)
        self.interval_level = float(calibration["interval_level"])
        self.reference = ScoreDistribution.from_json(package.read_json("reference_distribution.json"))
        self.layout = EncryptedScoreLayout.from_json(package.read_json("score_layout.json"))
        self.session = onnx_session(str(package.file("model.onnx")))
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
        if not (isinstance(age, (int, float)) and np.isfinite(age) and 18.0 <= age <= 100.0):
            violations.add("age", "must be a number of years between 18 and 100")
        if sex not in SEXES:
            violations.add("sex", f"must be one of {', '.join(SEXES)}")
        if not isinstance(family_history, (bool, np.bool_)):
            violations.add("family_history", "must be true or false")
        violations.raise_if_any()

    def assess(self, sample_score: SampleScore, age: float, sex: str, family_history: bool,
               top_variants: int = 10) -> CancerRisk:
        if sample_score.pgs_id != self.pgs_id:
            raise FailedPrecondition(f"score {sample_score.pgs_id} given to the {self.pgs_id} model ({self.cancer})")
        return self.assess_score_sum(
            sample_score.score_sum, age, sex, family_history,
            top_variants=tuple(sample_score.top_variants(top_variants)),
            variants_total=sample_score.variants_total, variants_matched=sample_score.variants_matched,
            variants_missing=sample_score.variants_missing, variants_imputed=sample_score.variants_imputed,
            overlap=sample_score.overlap,
        )

    def assess_score_sum(
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
    ) -> CancerRisk:
        self._validate(age, sex, family_history)
        if not np.isfinite(score_sum):
            raise InvalidInput("score_sum: must be a finite number")
        male = sex == "male"
        z = float(self.reference.standardise(score_sum))
        x = np.array([[z, age, float(male), float(family_history)]], dtype=np.float32)
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

        shap = treeshap_contributions(self.booster, x)
        outside = tuple(
            spec.name for spec, value in zip(self.schema.features, x[0], strict=True)
            if not spec.training_min <= float(value) <= spec.training_max
        )
        return CancerRisk(
            cancer=self.cancer,
            pgs_id=self.pgs_id,
            scoring_file=self.scoring_file,
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
            shap_values={name: float(v) for name, v in zip(FEATURES, shap.values[0, 0], strict=True)},
            shap_base_value=float(shap.base_values[0, 0]),
            variants_total=len(self.layout) if variants_total is None else variants_total,
            variants_matched=self.reference.variants_matched if variants_matched is None else variants_matched,
            variants_missing=variants_missing,
            variants_imputed=variants_imputed,
            overlap=overlap,
            model=self.identity,
            outside_training_range=outside,
        )

    def _interval(self, raw_probability: float) -> tuple[float, float]:
        p = min(max(raw_probability, 1e-12), 1 - 1e-12)
        logit = float(np.log(p) - np.log1p(-p))
        centre = self.calibrator.slope * logit + self.calibrator.intercept
        gradient = np.array([logit, 1.0])
        spread = _Z_975 * float(np.sqrt(gradient @ self.covariance @ gradient))
        return float(_sigmoid(centre - spread)), float(_sigmoid(centre + spread))


def _sigmoid(value: float) -> float:
    return float(1.0 / (1.0 + np.exp(-value)))

