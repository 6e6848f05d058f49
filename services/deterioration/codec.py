"""clinpred.deterioration.v1 messages <-> deterioration domain objects, and every check a request allows on its own.

Limits, units and plausibility rules come from the domain's single table
(`observations.SIGNALS`, with `validation`'s rules); this module only walks the
messages and names the fields. What needs stored state (a stored patient's
birth date, an observation id stored with other content) is checked by the
domain, on the locked patient, with the field paths handed in.

Hostile input is refused here, before it reaches the model or the store: every
Timestamp within the range Timestamp defines, every string with a length limit
and no control characters (PostgreSQL's text cannot hold NUL), tokens only as
this service issues them, and violations that name the field and the rule,
never the value sent.

ExportFhir's Bundle is built (and checked) by `services/deterioration/fhir.py`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Final

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from clinpred.pilots.common.errors import ViolationCollector
from clinpred.pilots.deterioration.observations import SIGNAL_NAMES, Observation, PatientInfo, SignalSpec
from clinpred.pilots.deterioration.pews import ITEMS as PEWS_ITEMS
from clinpred.pilots.deterioration.predictor import RiskBand
from clinpred.pilots.deterioration.requests import (
    Estimate,
    FhirExport,
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
from clinpred.pilots.deterioration.stored_score import StoredScore
from clinpred.pilots.deterioration.validation import (
    BEFORE_BIRTH,
    collect_observation_problems,
    collect_patient_problems,
)
from clinpred.services.api.common.v1 import prediction_pb2 as common_pb2
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.common import codec as common
from clinpred.services.deterioration.fhir import fhir_bundle

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
# Patient and observation ids.
MAX_ID_LENGTH: Final = 128
# Ward and team names.
MAX_LABEL_LENGTH: Final = 128
# "2019-05-01"; ISO 8601's other spellings of a date ("20190501", "2019-W18-3") are shorter still.
MAX_DATE_LENGTH: Final = 32
# Chemotherapy days of one patient: years of daily oral maintenance fit.
MAX_CHEMOTHERAPY_DAYS: Final = 2000


def _check_id(value: str, field: str, violations: ViolationCollector) -> bool:
    return common.check_text(value, field, violations, max_length=MAX_ID_LENGTH, required=True)


def _check_label(value: str, field: str, violations: ViolationCollector) -> bool:
    return common.check_text(value, field, violations, max_length=MAX_LABEL_LENGTH)


def _decode_birth_date(text: str, field: str, violations: ViolationCollector) -> date | None:
    if len(text) <= MAX_DATE_LENGTH:
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    violations.add(field, "must be an ISO 8601 date such as 2019-05-01")
    return None


def _start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _decode_chemotherapy(
    stamps: Sequence[Timestamp], path: str, violations: ViolationCollector, birth: date, now: datetime
) -> tuple[datetime, ...]:
    if len(stamps) > MAX_CHEMOTHERAPY_DAYS:
        violations.add(path, f"holds {len(stamps)} items; at most {MAX_CHEMOTHERAPY_DAYS} are accepted")
        return ()
    born = _start_of(birth)
    days = []
    for index, stamp in enumerate(stamps):
        when = common.decode_timestamp(stamp, f"{path}[{index}]", violations)
        if when is None:
            continue
        if when > now:
            violations.add(f"{path}[{index}]", "is in the future")
        elif when < born:
            violations.add(f"{path}[{index}]", BEFORE_BIRTH)
        days.append(when)
    return tuple(sorted(days))


def decode_patient(message: pb.Patient, path: str, violations: ViolationCollector, now: datetime) -> PatientRecord | None:
    """The patient as the store keeps it; None when it cannot be built (violations say why)."""
    _check_id(message.patient_id, f"{path}.patient_id", violations)
    _check_label(message.ward, f"{path}.ward", violations)
    _check_label(message.team, f"{path}.team", violations)
    birth = _decode_birth_date(message.birth_date, f"{path}.birth_date", violations)
    if birth is None:
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
    chemotherapy = _decode_chemotherapy(message.chemotherapy_at, f"{path}.chemotherapy_at", violations, birth, now)
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
    observations: list[Observation] = []
    # Each decoded observation's index in the request: one without a usable time is left out.
    positions: list[int] = []
    for index, message in enumerate(messages):
        # A blank or repeated id is the domain's to name (collect_observation_problems).
        if message.observation_id.strip():
            _check_id(message.observation_id, f"{path}[{index}].observation_id", violations)
        if not message.HasField("observed_at"):
            violations.add(f"{path}[{index}].observed_at", "is required")
            continue
        observed_at = common.decode_timestamp(message.observed_at, f"{path}[{index}].observed_at", violations)
        if observed_at is None:
            continue
        values = {name: getattr(message, name) for name in SIGNAL_NAMES if message.HasField(name)}
        if "avpu" in values:
            values["avpu"] = values["avpu"].strip().upper()
        observations.append(Observation(message.observation_id, observed_at, **values))
        positions.append(index)
    collect_observation_problems(observations, violations, birth_date=birth_date, now=now, field_prefix=path, positions=positions)
    for index in range(1, len(observations)):
        if observations[index].observed_at < observations[index - 1].observed_at:
            violations.add(
                f"{path}[{positions[index]}].observed_at",
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


def _check_scoring_time(
    at: datetime,
    patient: PatientRecord | None,
    observations: Sequence[Observation],
    violations: ViolationCollector,
    now: datetime,
) -> None:
    """A stateless score's time: not in the future, not before birth, and with an observation at or before it."""
    if at > now:
        violations.add("at", "is in the future")
    elif patient is not None and at < _start_of(patient.birth_date):
        violations.add("at", BEFORE_BIRTH)
    elif observations and at < min(o.observed_at for o in observations):
        violations.add("at", "is before every observation; score at or after an observation")


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
        if latest.record is None:
            return pb.GetLatestRiskResponse(unchanged=pb.Unchanged(version=latest.version))
        return pb.GetLatestRiskResponse(score=encode_score(latest.record))

    # ListRiskHistory

    def decode_history(self, request: pb.ListRiskHistoryRequest) -> HistoryQuery:
        violations = self._start(request)
        _check_id(request.patient_id, "patient_id", violations)
        if request.page_size < 0 or request.page_size > self.max_page_size:
            violations.add("page_size", f"must be between 0 and {self.max_page_size}")
        before = common.decode_counter_token(request.page_token, "page_token", violations)
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
        _check_label(request.ward, "ward", violations)
        _check_label(request.team, "team", violations)
        if request.alert_band not in BAND_NAMES and request.alert_band != pb.RISK_BAND_UNSPECIFIED:
            violations.add("alert_band", "is not a known risk band")
        resume = common.decode_counter_token(request.resume_token, "resume_token", violations)
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
        at = common.decode_timestamp(request.at, "at", violations) if request.HasField("at") else None
        if at is not None:
            _check_scoring_time(at, patient, observations, violations, now)
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
    def encode_export(export: FhirExport) -> pb.ExportFhirResponse:
        documents = fhir_bundle(export)
        return pb.ExportFhirResponse(
            bundle_json=json.dumps(documents.bundle),
            # Deprecated fields, filled until the next API version: the Bundle's own two resources.
            risk_assessment_json=json.dumps(documents.risk_assessment),
            pews_observation_json=json.dumps(documents.pews_observation),
        )

    # GetModelInfo

    def decode_model_info(self, request: pb.GetModelInfoRequest) -> None:
        self._start(request).raise_if_any()

    @staticmethod
    def encode_model_info(info: ModelInfo) -> pb.GetModelInfoResponse:
        comparison = info.comparison
        return pb.GetModelInfoResponse(
            model=common.encode_identity(info.identity),
            horizon_hours=int(info.horizon_hours),
            features=[common.encode_feature_spec(spec) for spec in info.features],
            metrics=common.encode_metrics(info.metrics),
            signals=[encode_signal_spec(spec) for spec in info.signals],
            max_batch_size=info.max_batch_size,
            comparators=[
                pb.Comparator(
                    name=c.name, description=c.description, auroc=_estimate(c.auroc), auprc=_estimate(c.auprc)
                )
                for c in comparison.comparators
            ],
            auroc_gain_over_best_baseline=(
                _estimate(comparison.auroc_gain_over_best_baseline)
                if comparison.auroc_gain_over_best_baseline is not None
                else None
            ),
            best_baseline=comparison.best_baseline,
            transparency_json=comparison.transparency_json,
            alert_budget_per_100_children_per_day=dict(comparison.alert_budget_per_100_children_per_day),
        )


def _estimate(estimate: Estimate) -> pb.Estimate:
    return pb.Estimate(value=estimate.value, ci_lower=estimate.ci_lower, ci_upper=estimate.ci_upper)
