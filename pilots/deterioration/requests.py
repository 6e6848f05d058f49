"""What callers ask of home monitoring and what it answers, as domain objects (no transport types).

A transport decodes its messages into the requests here, checked as far as
they can be without stored state, and encodes the answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from clinpred.pilots.common.model_package import ModelIdentity
from clinpred.pilots.common.schema import FeatureSpec
from clinpred.pilots.deterioration.observations import Observation, PatientHistory, SignalSpec
from clinpred.pilots.deterioration.predictor import RiskBand
from clinpred.pilots.deterioration.store.records import PatientRecord, ScoreRecord
from clinpred.pilots.deterioration.stored_score import StoredScore


@dataclass(frozen=True)
class ObservationBatch:
    """Observations of one stored patient, in time order, not yet checked against the patient's birth date."""

    patient_id: str
    observations: tuple[Observation, ...]


@dataclass(frozen=True)
class LatestQuery:
    """The patient's latest score, unless it is still `known_version` (0: none known)."""

    patient_id: str
    known_version: int


@dataclass(frozen=True)
class LatestRisk:
    """The newest version, and its score unless the caller already has it (None: unchanged, nothing travels)."""

    version: int
    record: ScoreRecord | None

    @property
    def unchanged(self) -> bool:
        return self.record is None


@dataclass(frozen=True)
class HistoryQuery:
    """At most `page_size` scores, newest first, of versions below `before_version` (None: from the newest)."""

    patient_id: str
    page_size: int
    before_version: int | None


@dataclass(frozen=True)
class HistoryPage:
    scores: tuple[ScoreRecord, ...]
    # Where the next page starts (its versions are below this); None on the last page.
    next_before: int | None


@dataclass(frozen=True)
class WatchQuery:
    """Scores of a ward or a team as they are committed, after `resume_after` (a seq; None: from now)."""

    ward: str
    team: str
    alert_band: RiskBand
    resume_after: int | None

    def watches(self, record: ScoreRecord) -> bool:
        return bool((self.ward and record.ward == self.ward) or (self.team and record.team == self.team))


@dataclass(frozen=True)
class WatchEvent:
    record: ScoreRecord
    # The score rose into the watcher's alert band (StoredScore.alerts).
    alert: bool


@dataclass(frozen=True)
class StatelessScoring:
    """A patient and observations scored without storing anything; at `at`, or at the newest observation if None."""

    patient: PatientRecord
    observations: tuple[Observation, ...]
    at: datetime | None

    def history(self) -> PatientHistory:
        return self.patient.history(self.observations)


@dataclass(frozen=True)
class StatelessScore:
    patient_id: str
    score: StoredScore


@dataclass(frozen=True)
class Estimate:
    value: float
    ci_lower: float
    ci_upper: float

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> Estimate:
        low, high = entry["ci95"]
        return cls(float(entry["value"]), float(low), float(high))


@dataclass(frozen=True)
class Comparator:
    """The model or a baseline on the package's held-out children (any deterioration within the horizon)."""

    name: str
    description: str
    auroc: Estimate
    auprc: Estimate


COMPARATOR_WORDS: Final = {
    "model": "this model (LightGBM, Platt-calibrated)",
    "pews": "Bedside PEWS (Parshuram 2009) from the same home observations",
    "pathway": "febrile-neutropenia pathway: fever with neutropenia or chemotherapy within 7 days (binary rule)",
    "logistic": "logistic regression on PEWS, max temperature, neutrophils, fever readings and their interactions",
}


@dataclass(frozen=True)
class ModelComparison:
    """What a package's metrics say against the standard of care; empty for packages before 1.1.0."""

    comparators: tuple[Comparator, ...] = ()
    best_baseline: str = ""
    auroc_gain_over_best_baseline: Estimate | None = None
    transparency_json: str = ""
    alert_budget_per_100_children_per_day: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, metrics: Mapping[str, Any], transparency_json: str) -> ModelComparison:
        outcomes = metrics.get("outcomes")
        if not outcomes:
            return cls(transparency_json=transparency_json)
        overall = outcomes["any"]
        comparators = tuple(
            Comparator(name, words, Estimate.of(overall[name]["auroc"]), Estimate.of(overall[name]["auprc"]))
            for name, words in COMPARATOR_WORDS.items()
        )
        headline = metrics["headline"]
        budget = metrics["risk_bands"].get("alert_budget_per_100_children_per_day", {})
        return cls(
            comparators=comparators,
            best_baseline=str(headline["best_baseline"]),
            auroc_gain_over_best_baseline=Estimate.of(headline["auroc_gain"]),
            transparency_json=transparency_json,
            alert_budget_per_100_children_per_day={str(k): float(v) for k, v in budget.items()},
        )


@dataclass(frozen=True)
class ModelInfo:
    """The loaded model and what it reads: its features, the observation signals, and the batch limit."""

    identity: ModelIdentity
    horizon_hours: float
    features: tuple[FeatureSpec, ...]
    metrics: Mapping[str, object]
    signals: tuple[SignalSpec, ...]
    max_batch_size: int
    comparison: ModelComparison = field(default_factory=ModelComparison)


@dataclass(frozen=True)
class FhirExport:
    """The score a FHIR export shows, and whose it is: resource ids differ across tenants.

    `measurements` maps each vital sign to the newest observation set that measured it within
    `PEWS_MAX_AGE_H` before the score: the Bedside PEWS items were scored from these.
    """

    tenant: str
    record: ScoreRecord
    measurements: Mapping[str, Observation] = field(default_factory=dict)
