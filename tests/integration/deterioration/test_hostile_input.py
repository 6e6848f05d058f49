"""Inputs that were once answered INTERNAL (or stored unchecked), each answered INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from fhir.resources.R4B.observation import Observation as FhirObservation
from fhir.resources.R4B.riskassessment import RiskAssessment
from google.protobuf.timestamp_pb2 import Timestamp

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as pb_grpc
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.deterioration.client import observation
from clinpred.services.deterioration.service import SERVICE_NAME, deterioration_mount
from clinpred.services.deterioration.settings import DeteriorationSettings
from tests.support import field_violations

Stub = pb_grpc.DeteriorationServiceStub
NOW = datetime.now(UTC).replace(microsecond=0)
BIRTH = "2018-03-14"
TOO_LATE = 253_402_300_800  # 10000-01-01T00:00:00Z, one second past Timestamp's range
TOO_EARLY = -62_135_596_801  # one second before 0001-01-01T00:00:00Z
SECRET = "SECRET-4711"


@pytest.fixture(scope="module")
async def address(deterioration_package: ModelPackage, database_url: str) -> AsyncIterator[str]:
    settings = DeteriorationSettings(database_url=database_url, watch_poll_seconds=0.05)
    server, port = await start_inprocess_server(deterioration_mount(settings))
    yield f"127.0.0.1:{port}"
    await server.stop(grace=None)


@pytest.fixture(scope="module")
async def channel(address: str) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(address) as opened:
        stub = Stub(opened)
        for patient_id in ("h-1", "child_17", "MRN:12345"):
            await stub.RegisterPatient(pb.RegisterPatientRequest(patient=patient(patient_id)))
            await stub.RecordObservations(pb.RecordObservationsRequest(patient_id=patient_id, observations=[calm("seed")]))
        yield opened


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


def patient(patient_id: str, **changes: Any) -> pb.Patient:
    fields: dict[str, Any] = {
        "patient_id": patient_id,
        "birth_date": BIRTH,
        "sex": "female",
        "diagnosis_group": "all",
        "treatment_intensity": "high",
        "central_line": True,
        "ward": "onc-h",
        "team": "team-h",
    }
    return pb.Patient(**(fields | changes))


def calm(observation_id: str, hours_ago: float = 1) -> pb.Observation:
    return observation(observation_id, NOW - timedelta(hours=hours_ago), heart_rate=110, respiratory_rate=24, spo2=98)


def stamp(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


async def rejected(call: Any) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (caught.value.code(), caught.value.details())
    assert SECRET not in (caught.value.details() or "")
    violations = field_violations(caught.value)
    assert all(SECRET not in text for text in violations.values())
    return violations


@pytest.mark.parametrize(
    "bad", [stamp(TOO_LATE), stamp(TOO_EARLY), stamp(-(2**63)), stamp(2**63 - 1), stamp(0, -1), stamp(0, 10**9)]
)
async def test_timestamps_outside_what_timestamp_allows_are_rejected_in_every_field(stub: Stub, bad: Timestamp) -> None:
    registering = patient("h-chemo")
    registering.chemotherapy_at.append(bad)
    assert "patient.chemotherapy_at[0]" in await rejected(stub.RegisterPatient(pb.RegisterPatientRequest(patient=registering)))
    late = pb.Observation(observation_id="o-bad", observed_at=bad, heart_rate=100)
    violations = await rejected(
        stub.RecordObservations(pb.RecordObservationsRequest(patient_id="h-1", observations=[calm("o-ok", 3), late]))
    )
    assert "observations[1].observed_at" in violations, violations
    scoring = pb.ScoreObservationsRequest(patient=patient("h-score"), observations=[calm("o-1")], at=bad)
    assert "at" in await rejected(stub.ScoreObservations(scoring))


async def test_times_a_date_cannot_hold_or_before_birth_are_rejected(stub: Stub) -> None:
    for birth, reason in (("0001-01-01", "above 25 years"), ("9999-12-31", "future")):
        violations = await rejected(stub.RegisterPatient(pb.RegisterPatientRequest(patient=patient("h-date", birth_date=birth))))
        assert reason in violations["patient.birth_date"]
    # The earliest instant Timestamp allows, for a stored patient: checked against the stored birth date.
    ancient = pb.Observation(observation_id="o-ancient", observed_at=stamp(-62_135_596_800), heart_rate=100)
    violations = await rejected(stub.RecordObservations(pb.RecordObservationsRequest(patient_id="h-1", observations=[ancient])))
    assert "birth" in violations["observations[0].observed_at"]
    chemo = patient("h-chemo-early")
    chemo.chemotherapy_at.append(stamp(0))
    violations = await rejected(stub.RegisterPatient(pb.RegisterPatientRequest(patient=chemo)))
    assert "birth" in violations["patient.chemotherapy_at[0]"]


@pytest.mark.parametrize("token", ["²", "٣", "9" * 4300, "9223372036854775808", "-1", " 1", "1e3"])
async def test_tokens_this_service_never_issued_are_rejected(stub: Stub, token: str) -> None:
    violations = await rejected(stub.ListRiskHistory(pb.ListRiskHistoryRequest(patient_id="h-1", page_token=token)))
    assert "not a token this service issued" in violations["page_token"]
    violations = await rejected(anext(aiter(stub.WatchRisk(pb.WatchRiskRequest(ward="onc-h", resume_token=token)))))
    assert "not a token this service issued" in violations["resume_token"]


async def test_the_largest_token_is_accepted(stub: Stub) -> None:
    page = await stub.ListRiskHistory(pb.ListRiskHistoryRequest(patient_id="h-1", page_token=str(2**63 - 1)))
    assert [score.version for score in page.scores] == [1]


@pytest.mark.parametrize("text", ["a\x00b", f"{SECRET}\x00", "\x07", "left\u202eright", "two\u2028lines"])
async def test_control_characters_are_rejected_in_every_identifier(stub: Stub, text: str) -> None:
    described = "control or invisible characters"
    assert (
        described
        in (await rejected(stub.RegisterPatient(pb.RegisterPatientRequest(patient=patient(text)))))["patient.patient_id"]
    )
    violations = await rejected(stub.RegisterPatient(pb.RegisterPatientRequest(patient=patient("h-2", ward=text, team=text))))
    assert described in violations["patient.ward"] and described in violations["patient.team"]
    assert described in (await rejected(stub.GetLatestRisk(pb.GetLatestRiskRequest(patient_id=text))))["patient_id"]
    assert described in (await rejected(stub.ExportFhir(pb.ExportFhirRequest(patient_id=text))))["patient_id"]
    assert described in (await rejected(stub.ListRiskHistory(pb.ListRiskHistoryRequest(patient_id=text))))["patient_id"]
    assert described in (await rejected(anext(aiter(stub.WatchRisk(pb.WatchRiskRequest(ward=text))))))["ward"]
    batch = [calm(text)]
    violations = await rejected(stub.RecordObservations(pb.RecordObservationsRequest(patient_id="h-1", observations=batch)))
    assert described in violations["observations[0].observation_id"]


@pytest.mark.parametrize("patient_id", ["child_17", "MRN:12345"])
async def test_any_registered_patient_id_exports_as_valid_fhir(stub: Stub, patient_id: str) -> None:
    exported = await stub.ExportFhir(pb.ExportFhirRequest(patient_id=patient_id))
    assessment_json = json.loads(exported.risk_assessment_json)
    pews_json = json.loads(exported.pews_observation_json)
    assessment = RiskAssessment.model_validate(assessment_json)
    pews = FhirObservation.model_validate(pews_json)
    for resource in (assessment, pews):
        assert re.fullmatch(r"[A-Za-z0-9\-\.]{1,64}", resource.id)
        assert patient_id not in resource.id
        assert resource.subject.identifier.system == "urn:clinpred:patient-id"
        assert resource.subject.identifier.value == patient_id
        assert resource.subject.reference is None
    bundle = json.loads(exported.bundle_json)
    assert [entry["resource"] for entry in bundle["entry"][:2]] == [assessment_json, pews_json]
    assert assessment.basis[0].reference == bundle["entry"][1]["fullUrl"]
    assert patient_id not in json.dumps([entry["resource"].get("text") for entry in bundle["entry"]])
    again = await stub.ExportFhir(pb.ExportFhirRequest(patient_id=patient_id))
    assert json.loads(again.risk_assessment_json)["id"] == assessment.id  # the same score, the same id


@pytest.mark.parametrize("size", [1 << 20, 15 << 20])
async def test_a_message_larger_than_its_method_needs_is_refused_before_it_is_parsed(stub: Stub, size: int) -> None:
    request = pb.RegisterPatientRequest(patient=patient("h-3", ward="w" * size))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RegisterPatient(request)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "accepts messages of at most 1048576" in (caught.value.details() or "")
    assert "w" * 20 not in (caught.value.details() or "")


@pytest.mark.parametrize("size", [129, 30_000])
async def test_every_string_has_a_length_limit(stub: Stub, size: int) -> None:
    long = "w" * size
    violations = await rejected(stub.RegisterPatient(pb.RegisterPatientRequest(patient=patient("h-3", ward=long))))
    assert "at most 128 characters" in violations["patient.ward"]
    violations = await rejected(stub.RegisterPatient(pb.RegisterPatientRequest(patient=patient("h-3", team=long))))
    assert "at most 128 characters" in violations["patient.team"]
    assert (
        "at most 128"
        in (await rejected(stub.RegisterPatient(pb.RegisterPatientRequest(patient=patient(long)))))["patient.patient_id"]
    )
    batch = [calm(long)]
    violations = await rejected(stub.RecordObservations(pb.RecordObservationsRequest(patient_id="h-1", observations=batch)))
    assert "at most 128" in violations["observations[0].observation_id"]
    assert "at most 128" in (await rejected(anext(aiter(stub.WatchRisk(pb.WatchRiskRequest(team=long))))))["team"]
    birth = await rejected(
        stub.RegisterPatient(pb.RegisterPatientRequest(patient=patient("h-3", birth_date="2019-05-01" + long)))
    )
    assert "ISO 8601" in birth["patient.birth_date"]
    tokens = await rejected(stub.ListRiskHistory(pb.ListRiskHistoryRequest(patient_id="h-1", page_token="1" * size)))
    assert "at most 19 decimal digits" in tokens["page_token"]


async def test_too_many_chemotherapy_days_are_rejected(stub: Stub) -> None:
    registering = patient("h-chemo-many")
    registering.chemotherapy_at.extend([stamp(int((NOW - timedelta(days=3)).timestamp()))] * 2001)
    violations = await rejected(stub.RegisterPatient(pb.RegisterPatientRequest(patient=registering)))
    assert "at most 2000" in violations["patient.chemotherapy_at"]


async def test_a_stateless_score_before_birth_or_before_every_observation_is_rejected(stub: Stub) -> None:
    batch = [calm("o-1", 5), calm("o-2", 2)]
    before_birth = stamp(int(datetime(1970, 1, 1, tzinfo=UTC).timestamp()))
    violations = await rejected(
        stub.ScoreObservations(pb.ScoreObservationsRequest(patient=patient("h-s"), observations=batch, at=before_birth))
    )
    assert "birth" in violations["at"]
    before_all = stamp(int((NOW - timedelta(hours=6)).timestamp()))
    violations = await rejected(
        stub.ScoreObservations(pb.ScoreObservationsRequest(patient=patient("h-s"), observations=batch, at=before_all))
    )
    assert "before every observation" in violations["at"]
    between = stamp(int((NOW - timedelta(hours=3)).timestamp()))
    scored = await stub.ScoreObservations(pb.ScoreObservationsRequest(patient=patient("h-s"), observations=batch, at=between))
    assert scored.score.scored_at == between


def _unknown(number: int) -> bytes:
    # Field `number`, varint 1: unknown to every message of this API.
    tag = number << 3
    encoded = bytearray()
    while True:
        byte, tag = tag & 0x7F, tag >> 7
        encoded.append(byte | (0x80 if tag else 0))
        if not tag:
            return bytes(encoded) + b"\x01"


@pytest.mark.parametrize(
    ("method", "request_bytes", "field"),
    [
        ("GetModelInfo", pb.GetModelInfoRequest().SerializeToString() + _unknown(99), "request"),
        ("ExportFhir", pb.ExportFhirRequest(patient_id="h-1").SerializeToString() + _unknown(1000), "request"),
        ("GetLatestRisk", pb.GetLatestRiskRequest(patient_id="h-1").SerializeToString() + _unknown(7), "request"),
        ("ListRiskHistory", pb.ListRiskHistoryRequest(patient_id="h-1").SerializeToString() + _unknown(5), "request"),
        ("WatchRisk", pb.WatchRiskRequest(ward="onc-h").SerializeToString() + _unknown(9), "request"),
        ("RegisterPatient", None, "patient"),
        ("RecordObservations", None, "observations[0]"),
        ("ScoreObservations", None, "at"),
    ],
)
async def test_unknown_fields_are_rejected_in_every_request_and_nested_message(
    channel: grpc.aio.Channel, method: str, request_bytes: bytes | None, field: str
) -> None:
    if method == "RecordObservations":
        request = pb.RecordObservationsRequest(patient_id="h-1")
        request.observations.add().MergeFromString(calm("o-unknown").SerializeToString() + _unknown(40))
        request_bytes = request.SerializeToString()
    elif method == "ScoreObservations":
        scoring = pb.ScoreObservationsRequest(patient=patient("h-u"), observations=[calm("o-1")])
        scoring.at.MergeFromString(stamp(int(NOW.timestamp())).SerializeToString() + _unknown(3))
        request_bytes = scoring.SerializeToString()
    elif method == "RegisterPatient":
        registering = pb.RegisterPatientRequest()
        registering.patient.MergeFromString(patient("h-u").SerializeToString() + _unknown(50))
        request_bytes = registering.SerializeToString()
    assert request_bytes is not None
    if method == "WatchRisk":
        call: Any = anext(aiter(channel.unary_stream(f"/{SERVICE_NAME}/{method}")(request_bytes)))
    else:
        call = channel.unary_unary(f"/{SERVICE_NAME}/{method}")(request_bytes)
    violations = await rejected(call)
    assert "unknown field number" in violations[field], violations
