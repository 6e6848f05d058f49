"""What the deterioration risk store keeps: patients, observations and risk scores, per tenant."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from clinpred.pilots.deterioration.observations import Observation, PatientHistory, PatientInfo
from clinpred.pilots.deterioration.stored_score import StoredScore


def to_micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_micros(micros: int) -> datetime:
    return _UNIX_EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class PatientRecord:
    """A registered patient: who the model scores, and where their scores are watched (ward, team)."""

    patient_id: str
    birth_date: date
    sex: str
    diagnosis_group: str
    treatment_intensity: str
    central_line: bool
    ward: str = ""
    team: str = ""
    chemotherapy_at: tuple[datetime, ...] = ()

    def info(self) -> PatientInfo:
        return PatientInfo(
            patient_id=self.patient_id,
            birth_date=self.birth_date,
            diagnosis_group=self.diagnosis_group,
            treatment_intensity=self.treatment_intensity,
            central_line=self.central_line,
            sex=self.sex,
        )

    def history(self, observations: Iterable[Observation]) -> PatientHistory:
        """What the model reads: this patient with `observations` (oldest first)."""
        return PatientHistory(self.info(), tuple(observations), self.chemotherapy_at)


@dataclass(frozen=True)
class ScoreRecord:
    """A stored score: `version` counts the patient's scores from 1; `seq` orders all of a tenant's scores by commit."""

    patient_id: str
    version: int
    seq: int
    ward: str
    team: str
    score: StoredScore


@dataclass(frozen=True)
class RecordOutcome:
    """What recording a batch did: observations new and already stored, and the patient's score after it."""

    stored: int
    duplicates: int
    score: ScoreRecord
