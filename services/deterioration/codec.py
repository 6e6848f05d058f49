"""clinpred.deterioration.v1 messages <-> deterioration domain objects, and every check a request allows on its own.

Limits, units and plausibility rules come from the domain's single table
(`observations.SIGNALS`, with `validation`'s rules); this module only walks the
messages and names the fields. What needs stored state (a stored patient's
birth date, an observation id stored with other content) is checked by the
domain, on the locked patient, with the field paths handed in.

ExportFhir's resources are validated with fhir.resources' R4B models: R4B is FHIR R4's
technical correction, with RiskAssessment and Observation unchanged from R4.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from fhir.resources.R4B.observation import Observation as FhirObservation
from fhir.resources.R4B.riskassessment import RiskAssessment as FhirRiskAssessment
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from clinpred.pilots.common.errors import ViolationCollector
from clinpred.pilots.deterioration.observations import SIGNAL_NAMES, Observation, PatientInfo, SignalSpec
from clinpred.pilots.deterioration.pews import ITEMS as PEWS_ITEMS
from clinpred.pilots.deterioration.predictor import RiskBand
from clinpred.pilots.deterioration.requests import (
    HistoryPage,
    HistoryQuery,
    LatestQuery,
    LatestRisk,
    ModelInfo,
    ObservationBatch,
    StatelessScore,
    StatelessScoring,
    WatchEvent,
    WatchQuery,
)
from clinpred.pilots.deterioration.store import PatientRecord, RecordOutcome, ScoreRecord
from clinpred.pilots.deterioration.stored_score import StoredScore, instant_text
from clinpred.pilots.deterioration.validation import collect_observation_problems, collect_patient_problems
from clinpred.services.api.common.v1 import prediction_pb2 as common_pb2
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.common import codec as common

SEXES: Final = ("female", "male", "other", "unknown")
BANDS: Final[dict[RiskBand, pb.RiskBand]] = {
    "low": pb.RISK_BAND_LOW,
    "medium": pb.RISK_BAND_MEDIUM,
    "high": pb.RISK_BAND_HIGH,
}
BAND_NAMES: Final[dict[pb.RiskBand, RiskBand]] = {value: name for name, value in BANDS.items()}
# WatchRisk's alert band when the request leaves it unspecified.
DEFAULT_ALERT_BAND: Final[RiskBand] = "high"
DEFAULT_PAGE_SIZE: Final = 20
MAX_ID_LENGTH: Final = 128


def _time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def _check_id(value: str, field: str, violations: ViolationCollector) -> None:
    if not value.strip():
        violations.add(field, "is required")
    elif len(value) > MAX_ID_LENGTH:
        violations.add(field, f"must be at most {MAX_ID_LENGTH} characters")


def _decode_token(token: str, field: str, violations: ViolationCollector) -> int | None:
    """A page or resume token: the decimal number this service issued, or None when empty."""
    if not token:
        return None
    if not token.isdigit():
        violations.add(field, "is not a token this service issued")
        return None
    return int(token)


def decode_patient(message: pb.Patient, path: str, violations: ViolationCollector, now: datetime) -> PatientRecord | None:
    """The patient as the store keeps it; None when it cannot be built (violations say why)."""
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
    return PatientRecord(
        patient_id=message.patient_id,
        birth_date=birth,
        sex=sex,
        diagnosis_group=message.diagnosis_group,
        treatment_intensity=message.treatment_intensity,
        central_line=message.central_line,
        ward=message.ward,
        team=message.team,
        chemotherapy_at=chemotherapy,
    )


def encode_patient(patient: PatientRecord) -> pb.Patient:
    message = pb.Patient(
        patient_id=patient.patient_id,
        birth_date=patient.birth_date.isoformat(),
        sex=patient.sex,
        diagnosis_group=patient.diagnosis_group,
        treatment_intensity=patient.treatment_intensity,
        central_line=patient.central_line,
        ward=patient.ward,
        team=patient.team,
    )
    for when in patient.chemotherapy_at:
        message.chemotherapy_at.add().FromDatetime(when)
    return message


def decode_observations(
    messages: Sequence[pb.Observation],
    path: str,
    violations: ViolationCollector,
    *,
    birth_date: date | None,
    now: datetime,
    max_batch_size: int,
) -> tuple[Observation, ...]:
    """Observations of one batch, checked against the domain's limits (and the birth date, when given)."""
    size = ViolationCollector()
    common.check_batch_size(len(messages), max_batch_size, path, size)
    if size:
        # An empty or oversized batch is one problem; its items are not checked one by one.
        violations.violations.extend(size.violations)
        return ()
    observations = []
    for index, message in enumerate(messages):
        if not message.HasField("observed_at"):
            violations.add(f"{path}[{index}].observed_at", "is required")
            continue
        values = {name: getattr(message, name) for name in SIGNAL_NAMES if message.HasField(name)}
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
    return tuple(observations)


def encode_signal_spec(spec: SignalSpec) -> common_pb2.FeatureSpec:
    return common_pb2.FeatureSpec(
        name=spec.name, unit=spec.unit, description=spec.description, valid_min=spec.valid_min, valid_max=spec.valid_max
    )


def _pews_item(name: str, points: int, value: float | None) -> pb.PewsItem:
    item = pb.PewsItem(item=name, points=points)
    if value is not None:
        item.value = value
    return item


def encode_stored_score(patient_id: str, version: int, score: StoredScore) -> pb.RiskScore:
    points = score.pews.items()
    message = pb.RiskScore(
        patient_id=patient_id,
        version=version,
        probability=score.probability,
        horizon_hours=int(score.horizon_hours),
        band=BANDS[score.band],
        pews=pb.Pews(
            total=score.pews.total,
            items=[_pews_item(name, points[name], score.pews.value_of(name)) for name in PEWS_ITEMS],
        ),
        confidence=common.encode_conformal_set(score.confidence, score.verified_coverage),
        explanation=common.encode_explanation(score.explanation),
        quality_flags=[pb.DataQualityFlag(code=f.code, signal=f.signal, message=f.message) for f in score.data_quality],
        model=common.encode_identity(score.model),
    )
    message.scored_at.FromDatetime(score.scored_at)
    return message


def encode_score(record: ScoreRecord) -> pb.RiskScore:
    return encode_stored_score(record.patient_id, record.version, record.score)


class DeteriorationCodec:
    """Each decode checks one request completely or raises InvalidInput; each encode builds one response."""

    def __init__(self, max_batch_size: int, max_page_size: int) -> None:
        self.max_batch_size = max_batch_size
        self.max_page_size = max_page_size

    @staticmethod
    def _start(request: Message) -> ViolationCollector:
        violations = ViolationCollector()
        common.check_unknown_fields(request, "", violations)
        return violations

    def _patient_id(self, request: Message, patient_id: str) -> str:
        violations = self._start(request)
        _check_id(patient_id, "patient_id", violations)
        violations.raise_if_any()
        return patient_id

    # RegisterPatient

    def decode_register(self, request: pb.RegisterPatientRequest) -> PatientRecord:
        violations = self._start(request)
        if not request.HasField("patient"):
            violations.add("patient", "is required")
        patient = decode_patient(request.patient, "patient", violations, datetime.now(UTC))
        violations.raise_if_any()
        assert patient is not None
        return patient

    @staticmethod
    def encode_register(patient: PatientRecord) -> pb.RegisterPatientResponse:
        return pb.RegisterPatientResponse(patient=encode_patient(patient))

    # RecordObservations

    def decode_record(self, request: pb.RecordObservationsRequest) -> ObservationBatch:
        """Ids, timestamps, limits and order; the stored patient's birth date is checked when recording."""
        violations = self._start(request)
        _check_id(request.patient_id, "patient_id", violations)
        observations = decode_observations(
            request.observations,
            "observations",
            violations,
            birth_date=None,
            now=datetime.now(UTC),
            max_batch_size=self.max_batch_size,
        )
        violations.raise_if_any()
        return ObservationBatch(request.patient_id, observations)

    @staticmethod
    def encode_record(outcome: RecordOutcome) -> pb.RecordObservationsResponse:
        return pb.RecordObservationsResponse(
            stored=outcome.stored, duplicates=outcome.duplicates, score=encode_score(outcome.score)
        )

    # GetLatestRisk

    def decode_latest(self, request: pb.GetLatestRiskRequest) -> LatestQuery:
        violations = self._start(request)
        _check_id(request.patient_id, "patient_id", violations)
        if request.known_version < 0:
            violations.add("known_version", "must be 0 (none known) or a version this service answered")
        violations.raise_if_any()
        return LatestQuery(request.patient_id, request.known_version)

    @staticmethod
    def encode_latest(latest: LatestRisk) -> pb.GetLatestRiskResponse:
        if latest.unchanged:
            return pb.GetLatestRiskResponse(unchanged=pb.Unchanged(version=latest.record.version))
        return pb.GetLatestRiskResponse(score=encode_score(latest.record))

    # ListRiskHistory

    def decode_history(self, request: pb.ListRiskHistoryRequest) -> HistoryQuery:
        violations = self._start(request)
        _check_id(request.patient_id, "patient_id", violations)
        if request.page_size < 0 or request.page_size > self.max_page_size:
            violations.add("page_size", f"must be between 0 and {self.max_page_size}")
        before = _decode_token(request.page_token, "page_token", violations)
        violations.raise_if_any()
        return HistoryQuery(request.patient_id, request.page_size or DEFAULT_PAGE_SIZE, before)

    @staticmethod
    def encode_history(page: HistoryPage) -> pb.ListRiskHistoryResponse:
        return pb.ListRiskHistoryResponse(
            scores=[encode_score(record) for record in page.scores],
            next_page_token=str(page.next_before) if page.next_before is not None else "",
        )

    # WatchRisk

    def decode_watch(self, request: pb.WatchRiskRequest) -> WatchQuery:
        violations = self._start(request)
        if not request.ward and not request.team:
            violations.add("ward", "give a ward or a team to watch")
        if request.alert_band not in BAND_NAMES and request.alert_band != pb.RISK_BAND_UNSPECIFIED:
            violations.add("alert_band", "is not a known risk band")
        resume = _decode_token(request.resume_token, "resume_token", violations)
        violations.raise_if_any()
        return WatchQuery(request.ward, request.team, BAND_NAMES.get(request.alert_band, DEFAULT_ALERT_BAND), resume)

    @staticmethod
    def encode_watch(event: WatchEvent) -> pb.WatchRiskResponse:
        previous = event.record.score.previous_band
        return pb.WatchRiskResponse(
            score=encode_score(event.record),
            alert=event.alert,
            previous_band=BANDS[previous] if previous else pb.RISK_BAND_UNSPECIFIED,
            resume_token=str(event.record.seq),
        )

    # ScoreObservations

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
            birth_date=patient.birth_date if patient else None,
            now=now,
            max_batch_size=self.max_batch_size,
        )
        at = _time(request.at) if request.HasField("at") else None
        if at is not None and at > now:
            violations.add("at", "is in the future")
        violations.raise_if_any()
        assert patient is not None
        return StatelessScoring(patient, observations, at)

    @staticmethod
    def encode_stateless(result: StatelessScore) -> pb.ScoreObservationsResponse:
        # Version 0: a stateless score is no version of anything stored.
        return pb.ScoreObservationsResponse(score=encode_stored_score(result.patient_id, 0, result.score))

    # ExportFhir

    def decode_export(self, request: pb.ExportFhirRequest) -> str:
        return self._patient_id(request, request.patient_id)

    @staticmethod
    def encode_export(record: ScoreRecord) -> pb.ExportFhirResponse:
        return pb.ExportFhirResponse(
            risk_assessment_json=json.dumps(fhir_risk_assessment(record)),
            pews_observation_json=json.dumps(fhir_pews_observation(record)),
        )

    # GetModelInfo

    def decode_model_info(self, request: pb.GetModelInfoRequest) -> None:
        self._start(request).raise_if_any()

    @staticmethod
    def encode_model_info(info: ModelInfo) -> pb.GetModelInfoResponse:
        return pb.GetModelInfoResponse(
            model=common.encode_identity(info.identity),
            horizon_hours=int(info.horizon_hours),
            features=[common.encode_feature_spec(spec) for spec in info.features],
            metrics=common.encode_metrics(info.metrics),
            signals=[encode_signal_spec(spec) for spec in info.signals],
            max_batch_size=info.max_batch_size,
        )


# ExportFhir: a stored score as HL7 FHIR R4 JSON, a RiskAssessment and the Bedside PEWS as an Observation.
FHIR_OUTCOME = "deterioration at home: unplanned admission, PICU transfer or sepsis"
# http://terminology.hl7.org/CodeSystem/risk-probability has no "medium": it says "moderate".
QUALITATIVE_RISK = {"low": "low", "medium": "moderate", "high": "high"}
UCUM = "http://unitsofmeasure.org"


def _score_quantity(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "score", "system": UCUM, "code": "{score}"}


def fhir_pews_observation(record: ScoreRecord) -> dict[str, Any]:
    pews = record.score.pews
    points = pews.items()
    resource = {
        "resourceType": "Observation",
        "id": f"pews-{record.patient_id}-{record.version}",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "survey",
                    }
                ]
            }
        ],
        "code": {"text": "Bedside Paediatric Early Warning Score (Parshuram 2009)"},
        "subject": {"reference": f"Patient/{record.patient_id}"},
        "effectiveDateTime": instant_text(record.score.scored_at),
        "valueQuantity": _score_quantity(pews.total),
        "component": [{"code": {"text": item}, "valueQuantity": _score_quantity(points[item])} for item in PEWS_ITEMS],
    }
    if pews.missing_items:
        resource["note"] = [{"text": "not measured, scored 0: " + ", ".join(pews.missing_items)}]
    return FhirObservation.model_validate(resource).model_dump(mode="json", by_alias=True, exclude_none=True)


def fhir_risk_assessment(record: ScoreRecord) -> dict[str, Any]:
    score = record.score
    model = score.model
    scored_at = instant_text(score.scored_at)
    until = score.scored_at + timedelta(hours=score.horizon_hours)
    reasons = "; ".join(r.text for r in score.explanation.top_reasons)
    resource = {
        "resourceType": "RiskAssessment",
        "id": f"deterioration-{record.patient_id}-{record.version}",
        "status": "final",
        "subject": {"reference": f"Patient/{record.patient_id}"},
        "occurrenceDateTime": scored_at,
        "method": {
            "coding": [{"system": "urn:clinpred:model", "code": f"{model.name}:{model.version}"}],
            "text": f"clinpred {model.name} {model.version} (package sha256 {model.sha256})",
        },
        "basis": [{"reference": f"Observation/pews-{record.patient_id}-{record.version}"}],
        "prediction": [
            {
                "outcome": {"text": FHIR_OUTCOME},
                "probabilityDecimal": score.probability,
                "qualitativeRisk": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/risk-probability",
                            "code": QUALITATIVE_RISK[score.band],
                        }
                    ]
                },
                "whenPeriod": {"start": scored_at, "end": instant_text(until)},
                "rationale": reasons,
            }
        ],
        "note": [{"text": score.confidence.statement}],
    }
    return FhirRiskAssessment.model_validate(resource).model_dump(mode="json", by_alias=True, exclude_none=True)
