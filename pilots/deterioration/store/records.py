"""What the deterioration risk store keeps: patients, observations and risk scores, per tenant."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

DEFAULT_TENANT = "default"


def to_micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


@dataclass(frozen=True)
class PatientRecord:
    patient_id: str
    birth_date: date
    sex: str
    ward: str = ""
    team: str = ""
    # Oncology context that changes rarely (diagnosis group, central line, ...).
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ObservationRecord:
    """One observation as the app sent it; `values` maps a signal name to its value."""

    observation_id: str
    observed_at: datetime
    values: dict[str, Any]


@dataclass(frozen=True)
class ComputedScore:
    """What a scoring function returns; the store numbers and keeps it."""

    scored_at: datetime
    probability: float
    band: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class ScoreRecord:
    patient_id: str
    version: int
    seq: int
    scored_at: datetime
    probability: float
    band: str
    ward: str
    team: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class RecordOutcome:
    stored: int
    duplicates: int
    score: ScoreRecord | None


# Computes a score from a patient, their observations (oldest first) and their
# previous score, read in the same transaction (so "the band rose" is exact
# even with several replicas writing).
ScoreFunction = Callable[[PatientRecord, Sequence[ObservationRecord], "ScoreRecord | None"], ComputedScore]
