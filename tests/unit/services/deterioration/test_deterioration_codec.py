"""The deterioration codec alone (no server, no store): every check with its field path, encodings that keep every field."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pytest
from google.protobuf.message import Message

from clinpred.pilots.common.conformal import ConformalSet
from clinpred.pilots.common.errors import InvalidInput
from clinpred.pilots.common.explanation import Contribution, Explanation, Reason
from clinpred.pilots.common.model_package import ModelIdentity
from clinpred.pilots.common.schema import FeatureSpec
from clinpred.pilots.deterioration.observations import SIGNALS, Observation
from clinpred.pilots.deterioration.pews import ITEMS as PEWS_ITEMS
from clinpred.pilots.deterioration.pews import bedside_pews
from clinpred.pilots.deterioration.predictor import DataQualityFlag
from clinpred.pilots.deterioration.requests import (
    FhirExport,
    HistoryPage,
    HistoryQuery,
    LatestQuery,
    LatestRisk,
    ModelInfo,
    ObservationBatch,
    StatelessScore,
    WatchEvent,
    WatchQuery,
)
from clinpred.pilots.deterioration.store import PatientRecord, RecordOutcome, ScoreRecord
from clinpred.pilots.deterioration.stored_score import StoredScore
from clinpred.services.api.common.v1 import prediction_pb2 as common_pb2
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.deterioration.client import observation
from clinpred.services.deterioration.codec import DeteriorationCodec, encode_stored_score

MAX_BATCH = 5
MAX_PAGE = 50
NOW = datetime.now(UTC).replace(microsecond=0)
# Field 15 is in none of the requests: what a client of another API version would send.
FOREIGN_FIELD = b"\x78\x01"
# Field 17 (varint 1) is not part of Observation either.
FOREIGN_OBSERVATION_FIELD = b"\x88\x01\x01"


@pytest.fixture
def codec() -> DeteriorationCodec:
    return DeteriorationCodec(MAX_BATCH, MAX_PAGE)


def violations_of(decode: Callable[[Any], object], request: Message) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        decode(request)
    found = {v.field: v.description for v in caught.value.violations}
    assert len(found) == len(caught.value.violations), "a field is named twice"
    return found


def patient_message(**changes: Any) -> pb.Patient:
    fields: dict[str, Any] = {
        "patient_id": "p1",
        "birth_date": "2018-03-14",
        "sex": "male",
        "diagnosis_group": "aml",
        "treatment_intensity": "high",
        "central_line": True,
        "ward": "onc-a",
        "team": "team-1",
    }
    return pb.Patient(**(fields | changes))


def reading(index: int, hours_ago: float, **values: Any) -> pb.Observation:
    return observation(f"o{index}", NOW - timedelta(hours=hours_ago), **(values or {"heart_rate": 110}))


# RegisterPatient


def test_a_patient_decodes_as_stored_and_encodes_back(codec: DeteriorationCodec) -> None:
    message = patient_message(sex="")
    for days in (3, 10):  # sent newest first: stored oldest first
        message.chemotherapy_at.add().FromDatetime(NOW - timedelta(days=days))
    patient = codec.decode_register(pb.RegisterPatientRequest(patient=message))
    assert patient == PatientRecord(
        "p1",
        date(2018, 3, 14),
        "unknown",
        "aml",
        "high",
        True,
        "onc-a",
        "team-1",
        (NOW - timedelta(days=10), NOW - timedelta(days=3)),
    )
    answer = codec.encode_register(patient)
    assert codec.decode_register(pb.RegisterPatientRequest(patient=answer.patient)) == patient


def test_a_missing_patient_is_named(codec: DeteriorationCodec) -> None:
    violations = violations_of(codec.decode_register, pb.RegisterPatientRequest())
    assert violations == {
        "patient": "is required",
        "patient.patient_id": "is required",
        "patient.birth_date": "must be an ISO 8601 date such as 2019-05-01",
    }


def test_every_problem_of_a_patient_is_named(codec: DeteriorationCodec) -> None:
    message = patient_message(
        patient_id="x" * 129, sex="robot", diagnosis_group="flu", treatment_intensity="extreme", birth_date="1990-01-01"
    )
    message.chemotherapy_at.add().FromDatetime(NOW + timedelta(days=2))
    violations = violations_of(codec.decode_register, pb.RegisterPatientRequest(patient=message))
    assert violations == {
        "patient.patient_id": "must be at most 128 characters",
        "patient.sex": "must be one of female, male, other, unknown",
        "patient.birth_date": "gives an age above 25 years; the model is paediatric (0-18 years)",
        "patient.diagnosis_group": "must be one of all, aml, lymphoma, cns_tumour, solid_tumour",
        "patient.treatment_intensity": "must be one of low, medium, high",
        "patient.chemotherapy_at[0]": "is in the future",
    }


# RecordObservations


def test_a_batch_decodes_in_order_with_avpu_normalised(codec: DeteriorationCodec) -> None:
    request = pb.RecordObservationsRequest(
        patient_id="p1", observations=[reading(1, 3, heart_rate=120, avpu=" v "), reading(2, 1, spo2=97, temperature_c=37.1)]
    )
    batch = codec.decode_record(request)
    assert batch == ObservationBatch(
        "p1",
        (
            Observation("o1", NOW - timedelta(hours=3), heart_rate=120.0, avpu="V"),
            Observation("o2", NOW - timedelta(hours=1), spo2=97.0, temperature_c=37.1),
        ),
    )


def test_a_batch_is_decoded_without_the_stored_patients_birth_date(codec: DeteriorationCodec) -> None:
    """The birth date is the stored patient's: the handler checks it on the locked patient, not the codec."""
    old = observation("o1", datetime(1990, 1, 1, tzinfo=UTC), heart_rate=110, weight_kg=60)
    batch = codec.decode_record(pb.RecordObservationsRequest(patient_id="p1", observations=[old]))
    assert batch.observations[0].observed_at == datetime(1990, 1, 1, tzinfo=UTC)


def test_every_problem_of_a_batch_is_named_without_its_value(codec: DeteriorationCodec) -> None:
    no_time = pb.Observation(observation_id="o9", heart_rate=100)
    request = pb.RecordObservationsRequest(
        patient_id=" ",
        observations=[
            reading(1, 2, heart_rate=500),
            reading(2, 3, temperature_c=98.6),  # earlier than the one before, and Fahrenheit
            reading(2, 1, respiratory_effort=1.5),  # the id again
            observation("", NOW + timedelta(hours=3), avpu="X"),
            no_time,
        ],
    )
    violations = violations_of(codec.decode_record, request)
    assert violations == {
        "patient_id": "is required",
        "observations[0].heart_rate": "outside the valid range 20-300 /min",
        "observations[1].temperature_c": "looks like degrees Fahrenheit; send degrees Celsius (valid range 30-44 Cel)",
        "observations[1].observed_at": "is earlier than the observation before it; send a batch in time order",
        "observations[2].observation_id": "duplicate observation id",
        "observations[2].respiratory_effort": "must be 0, 1, 2 or 3",
        "observations[3].observation_id": "is required",
        "observations[3].observed_at": "is in the future",
        "observations[3].avpu": "must be one of A, V, P, U",
        "observations[4].observed_at": "is required",
    }
    assert not any("500" in text or "98.6" in text for text in violations.values())


def test_an_observation_with_no_value_is_named(codec: DeteriorationCodec) -> None:
    empty = observation("o1", NOW - timedelta(hours=1))
    violations = violations_of(codec.decode_record, pb.RecordObservationsRequest(patient_id="p1", observations=[empty]))
    assert violations == {"observations[0]": "has no measured value"}


@pytest.mark.parametrize(
    ("count", "reason"), [(0, "must contain at least one item"), (MAX_BATCH + 1, f"holds 6 items; at most {MAX_BATCH}")]
)
def test_a_batch_size_is_bounded(codec: DeteriorationCodec, count: int, reason: str) -> None:
    batch = [reading(i, 10 - i) for i in range(count)]
    violations = violations_of(codec.decode_record, pb.RecordObservationsRequest(patient_id="p1", observations=batch))
    assert list(violations) == ["observations"] and violations["observations"].startswith(reason)


# GetLatestRisk, ListRiskHistory, ExportFhir


def test_latest_queries_decode_and_reject_a_negative_known_version(codec: DeteriorationCodec) -> None:
    assert codec.decode_latest(pb.GetLatestRiskRequest(patient_id="p1", known_version=3)) == LatestQuery("p1", 3)
    assert codec.decode_latest(pb.GetLatestRiskRequest(patient_id="p1")) == LatestQuery("p1", 0)
    violations = violations_of(codec.decode_latest, pb.GetLatestRiskRequest(known_version=-1))
    assert set(violations) == {"patient_id", "known_version"}


def test_history_pages_decode_their_size_and_token(codec: DeteriorationCodec) -> None:
    assert codec.decode_history(pb.ListRiskHistoryRequest(patient_id="p1")) == HistoryQuery("p1", 20, None)
    request = pb.ListRiskHistoryRequest(patient_id="p1", page_size=MAX_PAGE, page_token="17")
    assert codec.decode_history(request) == HistoryQuery("p1", MAX_PAGE, 17)
    for size in (-1, MAX_PAGE + 1):
        violations = violations_of(codec.decode_history, pb.ListRiskHistoryRequest(patient_id="p1", page_size=size))
        assert violations == {"page_size": f"must be between 0 and {MAX_PAGE}"}
    violations = violations_of(codec.decode_history, pb.ListRiskHistoryRequest(patient_id="p1", page_token="-3"))
    assert violations == {"page_token": "is not a token this service issued (at most 19 decimal digits)"}


def test_an_export_needs_a_patient_id(codec: DeteriorationCodec) -> None:
    assert codec.decode_export(pb.ExportFhirRequest(patient_id="p1")) == "p1"
    assert violations_of(codec.decode_export, pb.ExportFhirRequest()) == {"patient_id": "is required"}


# WatchRisk


def test_watch_queries_decode_with_the_default_alert_band(codec: DeteriorationCodec) -> None:
    assert codec.decode_watch(pb.WatchRiskRequest(ward="onc-a")) == WatchQuery("onc-a", "", "high", None)
    request = pb.WatchRiskRequest(team="t1", alert_band=pb.RISK_BAND_MEDIUM, resume_token="42")
    assert codec.decode_watch(request) == WatchQuery("", "t1", "medium", 42)


def test_every_problem_of_a_watch_is_named(codec: DeteriorationCodec) -> None:
    request = pb.WatchRiskRequest(alert_band=cast(pb.RiskBand, 9), resume_token="abc")
    assert violations_of(codec.decode_watch, request) == {
        "ward": "give a ward or a team to watch",
        "alert_band": "is not a known risk band",
        "resume_token": "is not a token this service issued (at most 19 decimal digits)",
    }


# ScoreObservations


def test_stateless_scoring_decodes_and_checks_against_the_patient_it_carries(codec: DeteriorationCodec) -> None:
    request = pb.ScoreObservationsRequest(patient=patient_message(), observations=[reading(1, 2)])
    request.at.FromDatetime(NOW - timedelta(hours=1))
    scoring = codec.decode_score(request)
    assert scoring.patient.patient_id == "p1" and scoring.at == NOW - timedelta(hours=1)
    assert scoring.history().patient.birth_date == date(2018, 3, 14)
    assert codec.decode_score(pb.ScoreObservationsRequest(patient=patient_message(), observations=[reading(1, 2)])).at is None
    before_birth = observation("o1", datetime(2010, 1, 1, tzinfo=UTC), weight_kg=60)
    request = pb.ScoreObservationsRequest(patient=patient_message(), observations=[before_birth])
    request.at.FromDatetime(NOW + timedelta(days=1))
    assert violations_of(codec.decode_score, request) == {
        "observations[0].observed_at": "is before the patient's birth date",
        "at": "is in the future",
    }
    assert set(violations_of(codec.decode_score, pb.ScoreObservationsRequest())) == {
        "patient",
        "patient.patient_id",
        "patient.birth_date",
        "observations",
    }


# Unknown fields, for every request kind


@pytest.mark.parametrize(
    ("decode", "request_message"),
    [
        ("decode_register", pb.RegisterPatientRequest(patient=patient_message())),
        ("decode_record", pb.RecordObservationsRequest(patient_id="p1", observations=[reading(1, 1)])),
        ("decode_latest", pb.GetLatestRiskRequest(patient_id="p1")),
        ("decode_history", pb.ListRiskHistoryRequest(patient_id="p1")),
        ("decode_watch", pb.WatchRiskRequest(ward="onc-a")),
        ("decode_score", pb.ScoreObservationsRequest(patient=patient_message(), observations=[reading(1, 1)])),
        ("decode_export", pb.ExportFhirRequest(patient_id="p1")),
        ("decode_model_info", pb.GetModelInfoRequest()),
    ],
)
def test_unknown_fields_are_refused_in_every_request(codec: DeteriorationCodec, decode: str, request_message: Message) -> None:
    decoder = getattr(codec, decode)
    decoder(request_message)  # valid as it is
    foreign = type(request_message).FromString(request_message.SerializeToString() + FOREIGN_FIELD)
    violations = violations_of(decoder, foreign)
    assert list(violations) == ["request"] and "unknown field number 15" in violations["request"]


def test_an_unknown_field_inside_an_observation_is_named_where_it_is(codec: DeteriorationCodec) -> None:
    inner = pb.Observation.FromString(reading(2, 1).SerializeToString() + FOREIGN_OBSERVATION_FIELD)
    request = pb.RecordObservationsRequest(patient_id="p1", observations=[reading(1, 2), inner])
    violations = violations_of(codec.decode_record, request)
    assert list(violations) == ["observations[1]"] and "unknown field number 17" in violations["observations[1]"]


# Encoding


SCORED_AT = datetime(2026, 3, 2, 9, 30, 15, 250_000, tzinfo=UTC)
REASONS = (
    Reason("temperature_c_max_24h", 39.4, "Cel", "raises", 1.01, "highest body temperature in 24 h: 39.4 °C raises the risk"),
    Reason("spo2_last", 98.0, "%", "lowers", -0.2, "latest SpO2: 98 % lowers the risk"),
    # A direction this encoder does not know is UNSPECIFIED on the wire, never a guess.
    Reason("crp_mg_l_last", math.nan, "mg/L", cast(Any, "sideways"), 0.1, "latest CRP: not measured"),
)
SCORE = StoredScore(
    probability=0.1494,
    horizon_hours=24.0,
    band="high",
    band_thresholds=(0.004, 0.0105),
    pews=bedside_pews(6.5, heart_rate=168.0, respiratory_rate=44.0, spo2=91.0),
    confidence=ConformalSet(("deterioration",), 0.9, "class-conditional", "with 90% coverage the outcome is in {deterioration}"),
    verified_coverage=0.8985,
    explanation=Explanation(
        explained_class="deterioration",
        output_space="log-odds",
        base_value=-6.66,
        margin=-4.74,
        contributions=(
            Contribution("temperature_c_max_24h", 39.4, 1.01),
            Contribution("spo2_last", 98.0, -0.2),
            Contribution("crp_mg_l_last", math.nan, 0.1),
            Contribution("heart_rate_vs_7d", math.nan, 1.01),
        ),
        top_reasons=REASONS,
        method="TreeSHAP",
    ),
    data_quality=(DataQualityFlag("missing_labs", "neutrophils_g_l", "no labs in the last 72 h"),),
    model=ModelIdentity("home-deterioration", "1.0.0", "ab" * 32),
    scored_at=SCORED_AT,
    previous_band="low",
)
RECORD = ScoreRecord("p1", 7, 301, "onc-a", "team-1", SCORE)


def test_a_stored_score_encodes_every_field() -> None:
    message = encode_stored_score("p1", 7, SCORE)
    assert (message.patient_id, message.version, message.probability, message.horizon_hours) == ("p1", 7, 0.1494, 24)
    assert message.band == pb.RISK_BAND_HIGH
    assert message.scored_at.ToDatetime(tzinfo=UTC) == SCORED_AT
    assert message.pews.total == SCORE.pews.total == sum(item.points for item in message.pews.items)
    assert [item.item for item in message.pews.items] == list(PEWS_ITEMS)
    items = {item.item: item for item in message.pews.items}
    assert items["heart_rate"].value == 168.0 and items["heart_rate"].points == SCORE.pews.heart_rate
    assert items["oxygen_saturation"].value == 91.0
    assert not items["systolic_bp"].HasField("value")  # not measured: absent, not 0
    assert message.confidence == common_pb2.Confidence(
        prediction_set=["deterioration"],
        coverage=0.9,
        method="class-conditional",
        statement="with 90% coverage the outcome is in {deterioration}",
        verified_coverage=0.8985,
    )
    explanation = message.explanation
    assert (explanation.explained_class, explanation.output_space, explanation.method) == (
        "deterioration",
        "log-odds",
        "TreeSHAP",
    )
    assert (explanation.base_value, explanation.margin) == (-6.66, -4.74)
    assert [(c.feature, c.shap_value) for c in explanation.contributions] == [
        (c.feature, c.shap_value) for c in SCORE.explanation.contributions
    ]
    assert [c.value for c in explanation.contributions][:2] == [39.4, 98.0]
    assert all(math.isnan(c.value) for c in explanation.contributions[2:])  # not measured stays NaN
    assert [r.direction for r in explanation.top_reasons] == [
        common_pb2.DIRECTION_RAISES,
        common_pb2.DIRECTION_LOWERS,
        common_pb2.DIRECTION_UNSPECIFIED,
    ]
    assert [(r.feature, r.unit, r.shap_value, r.text) for r in explanation.top_reasons] == [
        (r.feature, r.unit, r.shap_value, r.text) for r in REASONS
    ]
    assert [(f.code, f.signal, f.message) for f in message.quality_flags] == [
        ("missing_labs", "neutrophils_g_l", "no labs in the last 72 h")
    ]
    assert message.model == common_pb2.ModelIdentity(name="home-deterioration", version="1.0.0", sha256="ab" * 32)


def test_a_score_read_from_its_payload_encodes_the_same() -> None:
    # Only directions the domain writes can be stored: an unknown one makes the row unreadable.
    known = replace(SCORE, explanation=replace(SCORE.explanation, top_reasons=REASONS[:2]))
    stored = StoredScore.from_payload(json.loads(json.dumps(known.to_payload(), sort_keys=True)))
    assert encode_stored_score("p1", 7, stored).SerializeToString() == encode_stored_score("p1", 7, known).SerializeToString()


def test_answers_encode_what_the_handler_decided(codec: DeteriorationCodec) -> None:
    recorded = codec.encode_record(RecordOutcome(2, 1, RECORD))
    assert (recorded.stored, recorded.duplicates, recorded.score.version) == (2, 1, 7)
    unchanged = codec.encode_latest(LatestRisk(RECORD.version, None))
    assert unchanged.WhichOneof("answer") == "unchanged" and unchanged.unchanged.version == 7
    changed = codec.encode_latest(LatestRisk(RECORD.version, RECORD))
    assert changed.WhichOneof("answer") == "score" and changed.score == encode_stored_score("p1", 7, SCORE)
    page = codec.encode_history(HistoryPage((RECORD, RECORD), next_before=6))
    assert len(page.scores) == 2 and page.next_page_token == "6"
    assert codec.encode_history(HistoryPage((RECORD,), next_before=None)).next_page_token == ""
    stateless = codec.encode_stateless(StatelessScore("someone", SCORE))
    assert stateless.score.patient_id == "someone" and stateless.score.version == 0


def test_a_watch_event_carries_the_alert_the_domain_decided(codec: DeteriorationCodec) -> None:
    event = codec.encode_watch(WatchEvent(RECORD, alert=True))
    assert event.alert and event.previous_band == pb.RISK_BAND_LOW and event.resume_token == "301"
    first = ScoreRecord("p1", 1, 5, "onc-a", "", replace(SCORE, previous_band=None))
    quiet = codec.encode_watch(WatchEvent(first, alert=False))
    assert not quiet.alert and quiet.previous_band == pb.RISK_BAND_UNSPECIFIED


def test_a_fhir_export_encodes_the_stored_score_as_one_bundle(codec: DeteriorationCodec) -> None:
    measured = Observation("app-9", SCORED_AT - timedelta(hours=2), heart_rate=168.0, respiratory_rate=44.0, spo2=91.0)
    measurements = {"heart_rate": measured, "respiratory_rate": measured, "spo2": measured}
    exported = codec.encode_export(FhirExport("st-olav", RECORD, measurements))
    bundle = json.loads(exported.bundle_json)
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    resources = [entry["resource"] for entry in bundle["entry"]]
    assert [r["resourceType"] for r in resources] == ["RiskAssessment", "Observation", *["Observation"] * 3, "Device"]
    assessment, pews = resources[0], resources[1]
    # The deprecated fields hold the Bundle's own RiskAssessment and PEWS Observation.
    assert json.loads(exported.risk_assessment_json) == assessment
    assert json.loads(exported.pews_observation_json) == pews
    assert assessment["subject"] == {"identifier": {"system": "urn:clinpred:patient-id", "value": "p1"}}
    assert assessment["occurrenceDateTime"] == "2026-03-02T09:30:15.250000Z"
    prediction = assessment["prediction"][0]
    # 0.1494 is in the service's high alert band but not "more likely than not": no HL7 "high".
    assert prediction["probabilityDecimal"] == 0.1494 and "qualitativeRisk" not in prediction
    assert prediction["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "high"
    assert prediction["whenPeriod"]["end"] == "2026-03-03T09:30:15.250000Z"
    assert prediction["rationale"].split("; ") == [r.text for r in REASONS]
    assert "note" not in assessment and "note" not in pews
    assert assessment["basis"][0] == {"reference": bundle["entry"][1]["fullUrl"]}
    assert "p1" not in pews["id"] + assessment["id"]
    assert pews["valueQuantity"]["value"] == SCORE.pews.total and len(pews["derivedFrom"]) == 3
    # Another hospital's child with the same id and version: other resource ids.
    elsewhere = json.loads(codec.encode_export(FhirExport("haukeland", RECORD)).risk_assessment_json)
    assert elsewhere["id"] != assessment["id"] and elsewhere["subject"] == assessment["subject"]


def test_model_info_encodes_features_signals_and_numeric_metrics(codec: DeteriorationCodec) -> None:
    feature = FeatureSpec("heart_rate_last", "/min", "latest heart rate", 20.0, 300.0, 60.0, 200.0, 110.0)
    info = ModelInfo(
        identity=SCORE.model,
        horizon_hours=24.0,
        features=(feature,),
        metrics={"test": {"auroc": 0.8, "note": "text is not a metric"}, "seed": 0},
        signals=tuple(SIGNALS.values()),
        max_batch_size=MAX_BATCH,
    )
    answer = codec.encode_model_info(info)
    assert answer.model.sha256 == "ab" * 32 and answer.horizon_hours == 24 and answer.max_batch_size == MAX_BATCH
    assert [f.name for f in answer.features] == ["heart_rate_last"] and answer.features[0].valid_max == 300.0
    assert dict(answer.metrics) == {"test.auroc": 0.8, "seed": 0.0}
    assert [s.name for s in answer.signals] == list(SIGNALS)
    assert answer.signals[0].valid_min == SIGNALS["heart_rate"].valid_min
