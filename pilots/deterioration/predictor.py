"""Online scoring of one child at one time: probability, risk band, PEWS, uncertainty, reasons, data quality.

    predictor = DeteriorationPredictor.load("models/deterioration/home-deterioration/1.0.0")
    score = predictor.score(history, at=datetime.now(UTC))

The probability comes from the ONNX model followed by the package's Platt
map; reasons come from exact TreeSHAP on the native booster, in log-odds
(`explanation.base_value + sum(contributions) = explanation.margin`; the calibrated probability
is a monotone function of that sum). `score` is `predict` then `explain`, which
a caller may also run one after the other (to time them apart).

Uncertainty: packages from 1.1.0 carry a Venn-Abers interval (`venn_abers.py`)
and each band's observed event rate on held-out children; the score's
`confidence` holds the interval as lower/upper (widened to include the served
Platt probability where the two calibrations differ) and says both in words. The
class-conditional conformal set of 1.0.0 is still filled (deprecated: for a
rare outcome it is mostly {no deterioration, deterioration}); 1.0.0 packages,
which have no interval, keep their conformal statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from clinpred.pilots.common.calibration import Calibrator
from clinpred.pilots.common.conformal import ConformalSet
from clinpred.pilots.common.errors import ModelPackageError
from clinpred.pilots.common.explanation import (
    LOG_ODDS,
    TREESHAP_METHOD,
    Contribution,
    Explanation,
    Reason,
    treeshap_contributions,
)
from clinpred.pilots.common.model_package import ModelIdentity, ModelPackage
from clinpred.pilots.common.onnx import onnx_session
from clinpred.pilots.common.schema import ModelSchema
from clinpred.pilots.deterioration.conformal import ClassConditionalConformal
from clinpred.pilots.deterioration.features import (
    FEATURE_DESCRIPTIONS,
    FEATURE_NAMES,
    FEATURE_UNITS,
    PEWS_INPUTS,
    PEWS_MAX_AGE_H,
    feature_matrix,
    features_at,
)
from clinpred.pilots.deterioration.observations import PatientHistory, latest_measurements
from clinpred.pilots.deterioration.package_format import PILOT, onnx_positive_probability
from clinpred.pilots.deterioration.pews import BedsidePews, bedside_pews
from clinpred.pilots.deterioration.validation import validate_history
from clinpred.pilots.deterioration.venn_abers import VennAbers

RiskBand = Literal["low", "medium", "high"]
# Lowest to highest.
RISK_BANDS: Final[tuple[RiskBand, ...]] = ("low", "medium", "high")
STALE_VITAL_H: Final = 12.0
STALE_LABS_H: Final = 72.0
_QUALITY_VITALS: Final = ("heart_rate", "respiratory_rate", "temperature_c", "spo2")
_SHORT_NAMES: Final = {
    "heart_rate": "heart rate",
    "respiratory_rate": "respiratory rate",
    "temperature_c": "temperature",
    "spo2": "SpO2",
}
_UNIT_WORDS: Final = {
    "Cel": " °C",
    "/min": "/min",
    "%": " %",
    "mm[Hg]": " mmHg",
    "s": " s",
    "L/min": " L/min",
    "10*9/L": " x10^9/L",
    "mg/L": " mg/L",
    "g/L": " g/L",
    "h": " h",
    "d": " days",
    "a": " years",
    "kg": " kg",
}


@dataclass(frozen=True)
class DataQualityFlag:
    """Something about the data that limits the score; `code` is stable, `message` is for people."""

    code: str
    signal: str
    message: str


@dataclass(frozen=True)
class DeteriorationScore:
    """One score. `explanation.margin` = base value + SHAP contributions, in log-odds before calibration.

    `confidence` is the class-conditional conformal set; `verified_coverage` is the coverage
    those sets reached on held-out patients at training.
    """

    probability: float
    horizon_hours: float
    risk_band: RiskBand
    band_thresholds: tuple[float, float]
    pews: BedsidePews
    confidence: ConformalSet
    verified_coverage: float
    explanation: Explanation
    data_quality: tuple[DataQualityFlag, ...]
    model: ModelIdentity
    scored_at: datetime

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return self.explanation.top_reasons


@dataclass(frozen=True)
class DeteriorationPrediction:
    """A score before its explanation: `x32` is the one feature row the model saw, kept for `explain`."""

    probability: float
    horizon_hours: float
    risk_band: RiskBand
    band_thresholds: tuple[float, float]
    pews: BedsidePews
    confidence: ConformalSet
    verified_coverage: float
    data_quality: tuple[DataQualityFlag, ...]
    model: ModelIdentity
    scored_at: datetime
    x32: npt.NDArray[np.float32]

    def explained(self, explanation: Explanation) -> DeteriorationScore:
        return DeteriorationScore(
            probability=self.probability,
            horizon_hours=self.horizon_hours,
            risk_band=self.risk_band,
            band_thresholds=self.band_thresholds,
            pews=self.pews,
            confidence=self.confidence,
            verified_coverage=self.verified_coverage,
            explanation=explanation,
            data_quality=self.data_quality,
            model=self.model,
            scored_at=self.scored_at,
        )


def conformal_statement(labels: tuple[str, ...], coverage: float) -> str:
    percent = f"{coverage * 100:.4g}%"
    if not labels:
        return f"at {percent} coverage this probability is typical of neither outcome"
    return f"with {percent} coverage the outcome is in {{{', '.join(labels)}}}"


def interval_statement(
    probability: float,
    lower: float,
    upper: float,
    band: str,
    band_rate: dict[str, Any] | None,
    horizon_hours: float,
) -> str:
    """E.g. "risk 2.1% (Venn-Abers interval 1.8%-2.6%); in the medium band, 1.3% (95% CI 0.7%-2.5%) of held-out
    children had an event within 24 h"."""
    text = f"risk {probability:.1%} (Venn-Abers interval {lower:.1%}-{upper:.1%})"
    if band_rate is not None and band_rate.get("n"):
        low, high = band_rate["ci95"]
        text += (
            f"; in the {band} band, {band_rate['rate']:.1%} (95% CI {low:.1%}-{high:.1%}) of held-out scoring times "
            f"were followed by an event within {horizon_hours:g} h"
        )
    return text


def _format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "not measured"
    if unit == "{flag}":
        return "yes" if value >= 0.5 else "no"
    text = f"{value:.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.3g}"
    return text + _UNIT_WORDS.get(unit, "")


class DeteriorationPredictor:
    """Scores histories with one verified model package; safe to share between requests (read-only)."""

    def __init__(self, package: ModelPackage) -> None:
        import lightgbm as lgb

        if package.pilot != PILOT:
            raise ModelPackageError(f"model package {package.path} is not a {PILOT} package")
        self.package = package
        self.identity = package.identity
        self.schema = ModelSchema.from_json(package.read_json("schema.json"))
        if self.schema.feature_names != FEATURE_NAMES:
            raise ModelPackageError(f"model package {package.path} expects other features than this code computes")
        self.session = onnx_session(package.file("model.onnx"))
        self.booster = lgb.Booster(model_file=str(package.file("booster.txt")))
        self.calibrator = Calibrator.from_json(package.read_json("calibration.json"))
        self.conformal = ClassConditionalConformal.from_json(package.read_json("conformal.json"))
        bands = package.read_json("risk_bands.json")
        self.band_thresholds = (float(bands["medium"]), float(bands["high"]))
        self.horizon_hours = float(self.schema.extra["horizon_hours"])
        self.verified_coverage = float(package.read_json("metrics.json")["conformal_test"]["coverage"])
        # Absent in 1.0.0 packages, which keep answering with their conformal set alone.
        self.venn_abers = (
            VennAbers.from_json(package.read_json("venn_abers.json")) if "venn_abers.json" in package.manifest["files"] else None
        )
        self.band_event_rates: dict[str, Any] = dict(bands.get("observed_test", {}))
        self._training_range = {f.name: (f.training_min, f.training_max) for f in self.schema.features}

    @classmethod
    def load(cls, package: ModelPackage | Path | str) -> DeteriorationPredictor:
        return cls(package if isinstance(package, ModelPackage) else ModelPackage.open(package))

    def calibrated_probability(self, x32: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of deterioration for feature rows (FEATURE_NAMES order, float32)."""
        raw = onnx_positive_probability(self.session, x32)
        return np.asarray(self.calibrator.apply(np.column_stack([1.0 - raw, raw]))[:, 1])

    def risk_band(self, probability: float) -> RiskBand:
        medium, high = self.band_thresholds
        return "high" if probability >= high else "medium" if probability >= medium else "low"

    def score(self, history: PatientHistory, at: datetime, *, validate: bool = True, top: int = 3) -> DeteriorationScore:
        """The score of `history` at `at`; observations after `at` are ignored."""
        prediction = self.predict(history, at, validate=validate)
        return prediction.explained(self.explain(prediction, top))

    def predict(self, history: PatientHistory, at: datetime, *, validate: bool = True) -> DeteriorationPrediction:
        """Everything of the score at `at` but its explanation."""
        if validate:
            validate_history(history, at=at, now=datetime.now(UTC))
        features = features_at(history, at)
        x32 = feature_matrix(features)
        probability = float(self.calibrated_probability(x32)[0])
        band = self.risk_band(probability)
        return DeteriorationPrediction(
            probability=probability,
            horizon_hours=self.horizon_hours,
            risk_band=band,
            band_thresholds=self.band_thresholds,
            pews=self._latest_pews(history, at, features),
            confidence=self.confidence(probability, band),
            verified_coverage=self.verified_coverage,
            data_quality=self._data_quality(history, features, x32[0]),
            model=self.identity,
            scored_at=at,
            x32=x32,
        )

    def confidence(self, probability: float, band: RiskBand) -> ConformalSet:
        """The uncertainty of a probability: its Venn-Abers interval and band rate, or (1.0.0) its conformal set."""
        labels = self.conformal.labels(probability)
        coverage = self.conformal.coverage
        if self.venn_abers is None:
            return ConformalSet(labels, coverage, self.conformal.method, conformal_statement(labels, coverage))
        p0, p1 = (float(v[0]) for v in self.venn_abers.interval(probability))
        # The served probability is Platt's; where the isotonic (Venn-Abers) calibration differs from it, the
        # interval is widened to include it, so that a risk never lies outside its own interval.
        lower, upper = min(p0, probability), max(p1, probability)
        statement = interval_statement(
            probability, lower, upper, band, self.band_event_rates.get(band), self.horizon_hours
        )
        method = f"{self.venn_abers.method}; prediction_set: {self.conformal.method} (deprecated)"
        return ConformalSet(labels, coverage, method, statement, lower=lower, upper=upper)

    def explain(self, prediction: DeteriorationPrediction, top: int = 3) -> Explanation:
        """Exact TreeSHAP of the prediction's feature row, and its `top` reasons in words."""
        x32 = prediction.x32
        shap = treeshap_contributions(self.booster, x32)
        values = shap.values[0, 0]
        base = float(shap.base_values[0, 0])
        contributions = tuple(Contribution(name, float(x32[0, k]), float(values[k])) for k, name in enumerate(FEATURE_NAMES))
        return Explanation(
            explained_class=self.schema.positive_class,
            output_space=LOG_ODDS,
            base_value=base,
            margin=base + float(values.sum()),
            contributions=contributions,
            top_reasons=self._reasons(contributions, top),
            method=TREESHAP_METHOD,
        )

    def _latest_pews(self, history: PatientHistory, at: datetime, features: dict[str, Any]) -> BedsidePews:
        sources = latest_measurements(history.observations, PEWS_INPUTS, at, timedelta(hours=PEWS_MAX_AGE_H))
        latest = {name: float(getattr(sources[name], name)) if name in sources else None for name in PEWS_INPUTS}
        return bedside_pews(
            float(features["age_years"][0]),
            heart_rate=latest["heart_rate"],
            systolic_bp=latest["systolic_bp"],
            respiratory_rate=latest["respiratory_rate"],
            capillary_refill_s=latest["capillary_refill_s"],
            respiratory_effort=latest["respiratory_effort"],
            spo2=latest["spo2"],
            oxygen_flow_l_min=latest["oxygen_flow_l_min"],
        )

    def _reasons(self, contributions: tuple[Contribution, ...], top: int) -> tuple[Reason, ...]:
        ranked = sorted((c for c in contributions if c.shap_value != 0.0), key=lambda c: (-abs(c.shap_value), c.feature))
        reasons = []
        for c in ranked[:top]:
            unit = FEATURE_UNITS[c.feature]
            value = None if np.isnan(c.value) else c.value
            direction: Literal["raises", "lowers"] = "raises" if c.shap_value > 0 else "lowers"
            text = f"{FEATURE_DESCRIPTIONS[c.feature]}: {_format_value(value, unit)} {direction} the risk"
            reasons.append(Reason(c.feature, c.value, unit, direction, c.shap_value, text))
        return tuple(reasons)

    def _data_quality(self, history: PatientHistory, features: dict[str, Any], x: np.ndarray) -> tuple[DataQualityFlag, ...]:
        flags: list[DataQualityFlag] = []
        for name in _QUALITY_VITALS:
            since = float(features[f"{name}_hours_since_last"][0])
            if np.isnan(since):
                flags.append(DataQualityFlag("missing_signal", name, f"no {_SHORT_NAMES[name]} recorded"))
            elif since > STALE_VITAL_H:
                message = f"last {_SHORT_NAMES[name]} older than {STALE_VITAL_H:g} h"
                flags.append(DataQualityFlag("stale_signal", name, message))
        labs_since = float(features["neutrophils_g_l_hours_since_last"][0])
        if np.isnan(labs_since) or labs_since > STALE_LABS_H:
            message = f"no labs in the last {STALE_LABS_H:g} h"
            flags.append(DataQualityFlag("missing_labs", "neutrophils_g_l", message))
        if not history.chemotherapy_at:
            flags.append(DataQualityFlag("unknown_chemotherapy", "", "chemotherapy dates unknown"))
        if float(features["observation_sets_24h"][0]) == 0:
            flags.append(DataQualityFlag("no_recent_observation", "", "no observation in the last 24 h"))
        for k, name in enumerate(FEATURE_NAMES):
            low, high = self._training_range[name]
            if not np.isnan(x[k]) and (x[k] < low or x[k] > high):
                message = f"{FEATURE_DESCRIPTIONS[name]} outside the range seen in training"
                flags.append(DataQualityFlag("outside_training_range", name, message))
        return tuple(flags)
