"""clinpred.deterioration.v1 messages <-> deterioration domain objects. Every input check of the service is here.

Limits, units and plausibility rules come from the domain's single table
(`validation.OBSERVATION_LIMITS`, `UNIT_MISTAKES`); this module only walks the
messages and names the fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from clinpred.pilots.common.errors import ViolationCollector
from clinpred.pilots.deterioration.observations import SIGNAL_NAMES, Observation, PatientHistory, PatientInfo
from clinpred.pilots.deterioration.pews import ITEMS as PEWS_ITEMS
from clinpred.pilots.deterioration.store import ObservationRecord, PatientRecord, ScoreRecord
from clinpred.pilots.deterioration.validation import (
    OBSERVATION_LIMITS,
    collect_observation_problems,
    collect_patient_problems,
)
from clinpred.services.api.common.v1 import prediction_pb2 as common_pb2
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.common import codec as common

SEXES = ("female", "male", "other", "unknown")
BANDS = {"low": pb.RISK_BAND_LOW, "medium": pb.RISK_BAND_MEDIUM, "high": pb.RISK_BAND_HIGH}
BAND_NAMES = {value: name for name, value in BANDS.items()}


@dataclass(frozen=True)
class DecodedPatient:
    record: PatientRecord
    info: PatientInfo
    chemotherapy_at: tuple[datetime, ...]


def _time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def _check_id(value: str, field: str, violations: ViolationCollector) -> None:
    if not value.strip():
        violations.add(field, "is required")
    elif len(value) > 128:
        violations.add(field, "must be at most 128 characters")


def decode_patient(message: pb.Patient, path: str, violations: ViolationCollector, now: datetime) -> DecodedPatient | None:
    """The patient as the store keeps it and as the model reads it; None when invalid (violations say why)."""
    _check_id(message.patient_id, f"{path}.patient_id", violations)
    try:
        birth = date.fromisoformat(message.birth_date)
    except ValueError:
        violations.add(f"{path}.birth_date", "must be an ISO 8601 date such as 2019-05-01")
        return None
    sex = message.sex or "unknown"
    if sex not in SEXES:
        violations.add(f"{path}.sex", f"must be one of {', '.join(SEXES)}")
    info = PatientInfo(
        patient_id=message.patient_id,
        birth_date=birth,
        diagnosis_group=message.diagnosis_group,
        treatment_intensity=message.treatment_intensity,
        central_line=message.central_line,
        sex=sex,
    )
    collect_patient_problems(info, violations, now=now, field_prefix=path)
    chemotherapy = tuple(sorted(_time(t) for t in message.chemotherapy_at))
    for index, when in enumerate(chemotherapy):
        if when > now:
            violations.add(f"{path}.chemotherapy_at[{index}]", "is in the future")
    record = PatientRecord(
        patient_id=message.patient_id,
        birth_date=birth,
        sex=sex,
        ward=message.ward,
        team=message.team,
        attributes={
            "diagnosis_group": info.diagnosis_group,
            "treatment_intensity": info.treatment_intensity,
            "central_line": info.central_line,
            "chemotherapy_at": [t.isoformat() for t in chemotherapy],
        },
    )
    return DecodedPatient(record, info, chemotherapy)


def patient_message(record: PatientRecord) -> pb.Patient:
    attributes = record.attributes
    message = pb.Patient(
        patient_id=record.patient_id,
        birth_date=record.birth_date.isoformat(),
        sex=record.sex,
        diagnosis_group=attributes["diagnosis_group"],
        treatment_intensity=attributes["treatment_intensity"],
        central_line=attributes["central_line"],
        ward=record.ward,
        team=record.team,
    )
    for when in attributes.get("chemotherapy_at", []):
        message.chemotherapy_at.add().FromDatetime(datetime.fromisoformat(when))
    return message


def history_of(record: PatientRecord, observations: Sequence[ObservationRecord]) -> PatientHistory:
    attributes = record.attributes
    info = PatientInfo(
        patient_id=record.patient_id,
        birth_date=record.birth_date,
        diagnosis_group=attributes["diagnosis_group"],
        treatment_intensity=attributes["treatment_intensity"],
        central_line=attributes["central_line"],
        sex=record.sex,
    )
    return PatientHistory(
        patient=info,
        observations=tuple(Observation(o.observation_id, o.observed_at, **o.values) for o in observations),
        chemotherapy_at=tuple(datetime.fromisoformat(t) for t in attributes.get("chemotherapy_at", [])),
    )


def decode_observations(
    messages: Sequence[pb.Observation],
    path: str,
    violations: ViolationCollector,
    *,
    birth_date: date | None,
    now: datetime,
    max_batch_size: int,
) -> list[ObservationRecord]:
    """Observations of one batch, checked against the domain's limits; every problem is collected."""
    common.check_batch_size(len(messages), max_batch_size, path, violations)
    if violations:
        return []
    observations = []
    for index, message in enumerate(messages):
        if not message.HasField("observed_at"):
            violations.add(f"{path}[{index}].observed_at", "is required")
            continue
        values: dict[str, Any] = {name: getattr(message, name) for name in SIGNAL_NAMES if message.HasField(name)}
        if "avpu" in values:
            values["avpu"] = values["avpu"].strip().upper()
        observations.append(Observation(message.observation_id, _time(message.observed_at), **values))
    collect_observation_problems(observations, violations, birth_date=birth_date, now=now, field_prefix=path)
    for index in range(1, len(observations)):
        if observations[index].observed_at < observations[index - 1].observed_at:
            violations.add(
                f"{path}[{index}].observed_at",
                "is earlier than the observation before it; send a batch in time order",
            )
    return [
        ObservationRecord(
            o.observation_id,
            o.observed_at,
            {name: getattr(o, name) for name in SIGNAL_NAMES if getattr(o, name) is not None},
        )
        for o in observations
    ]


def signal_specs() -> list[common_pb2.FeatureSpec]:
    return [
        common_pb2.FeatureSpec(
            name=spec.name,
            unit=spec.unit,
            description=spec.description,
            valid_min=spec.valid_min,
            valid_max=spec.valid_max,
        )
        for spec in OBSERVATION_LIMITS.values()
    ]


def encode_payload(patient_id: str, version: int, payload: dict[str, Any]) -> pb.RiskScore:
    """A score as the store keeps it (the domain score's JSON form) -> RiskScore."""
    pews = payload["pews"]
    values = dict(pews.get("values") or [])
    explanation = payload["explanation"]
    confidence = payload["confidence"]
    score = pb.RiskScore(
        patient_id=patient_id,
        version=version,
        probability=payload["probability"],
        horizon_hours=int(payload["horizon_hours"]),
        band=BANDS[payload["risk_band"]],
        pews=pb.Pews(
            total=pews["total"],
            items=[_pews_item(name, pews[name], values) for name in PEWS_ITEMS],
        ),
        confidence=common_pb2.Confidence(
            prediction_set=confidence["prediction_set"],
            coverage=confidence["coverage"],
            method=confidence["method"],
            statement=confidence["statement"],
            verified_coverage=confidence["verified_coverage"],
        ),
        explanation=common_pb2.Explanation(
            explained_class=explanation["explained_class"],
            output_space=explanation["output_space"],
            base_value=explanation["base_value"],
            margin=explanation["margin"],
            method=explanation["method"],
            contributions=[
                common_pb2.FeatureContribution(feature=c["feature"], value=c["value"] or 0.0, shap_value=c["shap_value"])
                for c in explanation["contributions"]
            ],
            top_reasons=[
                common_pb2.Reason(
                    feature=r["feature"],
                    value=r["value"] or 0.0,
                    unit=r["unit"],
                    direction=common_pb2.DIRECTION_RAISES if r["direction"] == "raises" else common_pb2.DIRECTION_LOWERS,
                    shap_value=r["shap_value"],
                    text=r["text"],
                )
                for r in explanation["top_reasons"]
            ],
        ),
        quality_flags=[pb.DataQualityFlag(**flag) for flag in payload["data_quality"]],
        model=common_pb2.ModelIdentity(**payload["model"]),
    )
    score.scored_at.FromDatetime(datetime.fromisoformat(payload["scored_at"].replace("Z", "+00:00")))
    return score


def _pews_item(name: str, points: int, values: dict[str, float | None]) -> pb.PewsItem:
    item = pb.PewsItem(item=name, points=points)
    value = values.get(name)
    if value is not None:
        item.value = value
    return item


def encode_score(record: ScoreRecord) -> pb.RiskScore:
    return encode_payload(record.patient_id, record.version, record.payload)


def decode_page_token(token: str, violations: ViolationCollector) -> int | None:
    if not token:
        return None
    if not token.isdigit():
        violations.add("page_token", "is not a token this service issued")
        return None
    return int(token)


def decode_resume_token(token: str, violations: ViolationCollector) -> int | None:
    if not token:
        return None
    if not token.isdigit():
        violations.add("resume_token", "is not a token this service issued")
        return None
    return int(token)


@dataclass(frozen=True)
class WatchQuery:
    ward: str
    team: str
    alert_rank: int
    resume_after: int | None


@dataclass(frozen=True)
class StatelessScoring:
    patient: DecodedPatient
    observations: list[ObservationRecord]
    at: datetime


BAND_RANK = {"low": 1, "medium": 2, "high": 3}


class DeteriorationCodec:
    """Request-level decoding: each method checks one request completely or raises InvalidInput."""

    def __init__(self, max_batch_size: int, max_page_size: int) -> None:
        self.max_batch_size = max_batch_size
        self.max_page_size = max_page_size

    @staticmethod
    def _start(request: Any) -> ViolationCollector:
        violations = ViolationCollector()
        common.check_unknown_fields(request, "", violations)
        return violations

    def decode_register(self, request: pb.RegisterPatientRequest) -> DecodedPatient:
        violations = self._start(request)
        if not request.HasField("patient"):
            violations.add("patient", "is required")
        decoded = decode_patient(request.patient, "patient", violations, datetime.now(UTC))
        violations.raise_if_any()
        assert decoded is not None
        return decoded

    def decode_patient_id(self, request: Any) -> str:
        violations = self._start(request)
        _check_id(request.patient_id, "patient_id", violations)
        violations.raise_if_any()
        return str(request.patient_id)

    def decode_record(self, request: pb.RecordObservationsRequest, patient: PatientRecord) -> list[ObservationRecord]:
        violations = self._start(request)
        observations = decode_observations(
            request.observations,
            "observations",
            violations,
            birth_date=patient.birth_date,
            now=datetime.now(UTC),
            max_batch_size=self.max_batch_size,
        )
        violations.raise_if_any()
        return observations

    def decode_history(self, request: pb.ListRiskHistoryRequest) -> tuple[str, int, int | None]:
        violations = self._start(request)
        _check_id(request.patient_id, "patient_id", violations)
        if request.page_size < 0 or request.page_size > self.max_page_size:
            violations.add("page_size", f"must be between 0 and {self.max_page_size}")
        before = decode_page_token(request.page_token, violations)
        violations.raise_if_any()
        return request.patient_id, request.page_size or 20, before

    def decode_watch(self, request: pb.WatchRiskRequest) -> WatchQuery:
        violations = self._start(request)
        if not request.ward and not request.team:
            violations.add("ward", "give a ward or a team to watch")
        if request.alert_band not in BAND_NAMES and request.alert_band != pb.RISK_BAND_UNSPECIFIED:
            violations.add("alert_band", "is not a known risk band")
        resume = decode_resume_token(request.resume_token, violations)
        violations.raise_if_any()
        band = BAND_NAMES.get(request.alert_band, "high")
        return WatchQuery(request.ward, request.team, BAND_RANK[band], resume)

    def decode_score(self, request: pb.ScoreObservationsRequest) -> StatelessScoring:
        violations = self._start(request)
        now = datetime.now(UTC)
        if not request.HasField("patient"):
            violations.add("patient", "is required")
        patient = decode_patient(request.patient, "patient", violations, now)
        observations = decode_observations(
            request.observations,
            "observations",
            violations,
            birth_date=patient.info.birth_date if patient else None,
            now=now,
            max_batch_size=self.max_batch_size,
        )
        at = _time(request.at) if request.HasField("at") else None
        if at is not None and at > now:
            violations.add("at", "is in the future")
        violations.raise_if_any()
        assert patient is not None
        newest = max(o.observed_at for o in observations)
        return StatelessScoring(patient, observations, at or newest)


def watch_response(record: ScoreRecord, query: WatchQuery) -> pb.WatchRiskResponse:
    previous = record.payload.get("previous_band")
    rank = BAND_RANK[record.band]
    rose = previous is None or BAND_RANK[previous] < rank
    return pb.WatchRiskResponse(
        score=encode_score(record),
        alert=rank >= query.alert_rank and rose,
        previous_band=BANDS[previous] if previous else pb.RISK_BAND_UNSPECIFIED,
        resume_token=str(record.seq),
    )
