"""Property-based fuzzing of every deterioration RPC through a real in-process server, on SQLite and PostgreSQL.

Messages are structurally valid with hostile values (timestamps outside what Timestamp allows, NUL and
other control characters, huge and odd Unicode strings, forged tokens, NaN and infinity, duplicates,
oversized repeated fields) and sometimes raw bytes appended (unknown fields, or bytes that are no
message at all). Property: never INTERNAL or UNKNOWN; INVALID_ARGUMENT carries short BadRequest field
violations that echo nothing sent; afterwards the server still answers valid calls.

The normal suite runs a few examples per RPC; `make fuzz` sets CLINPRED_FUZZ_EXAMPLES=10000.
CLINPRED_FUZZ_REPORT=<file> writes the status codes seen, per backend and RPC, as JSON.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.common.codec import TIMESTAMP_MAX_SECONDS, TIMESTAMP_MIN_SECONDS
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.deterioration.service import SERVICE_NAME, deterioration_mount
from clinpred.services.deterioration.settings import DeteriorationSettings
from tests.support import field_violations

EXAMPLES = int(os.environ.get("CLINPRED_FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
MAX_BATCH = 20
NOW = datetime.now(UTC).replace(microsecond=0)
# Appears in hostile values; must never come back in an answer.
CANARY = "SECRET-4711"
# Registered before the run so that fuzzed calls reach the store, the model and the FHIR export.
KNOWN_PATIENTS = ("fuzz-1", "child_17", "MRN:12345", "Ünïcødé 7")
SEEN: Counter[tuple[str, str, str]] = Counter()
RECORDED_BATCHES = itertools.count()
# A watch that is still open after this long was accepted (it waits for new scores).
WATCH_WAIT_SECONDS = 0.2

# Strings

HOSTILE_STRINGS = (
    "",
    " ",
    "\x00",
    f"{CANARY}\x00",
    f"a\x00{CANARY}",
    "\t",
    "line\nbreak",
    "\u202e" + CANARY,
    "\u200b",
    "\u2028",
    "\ufeff",
    "²",
    "٣",
    "𝟗",
    "0",
    "-1",
    "+1",
    " 1",
    "1.5",
    "1e3",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "9" * 4300,
    CANARY * 20,
    "x" * 129,
    "é" * 128,
    "🙂" * 129,
    "child_17",
    "MRN:12345",
    "../../etc/passwd",
    "'; DROP TABLE patients; --",
    "%s%s%n",
    "{{7*7}}",
    # A 1 MiB and a 4 MiB string, rarely: every string field has a limit.
    CANARY + "w" * (1 << 20),
    CANARY + "w" * (4 << 20),
    "A",
    "v",
    "u ",
    "ß",
)
hostile_text = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=24),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Co", "Zs", "Zl", "Zp", "Nd", "No"]), max_size=8),
)
patient_ids = st.one_of(st.sampled_from(KNOWN_PATIENTS), st.sampled_from(KNOWN_PATIENTS), hostile_text)
wards = st.one_of(st.sampled_from(("onc-a", "onc-b", "")), st.sampled_from(("onc-a", "team-1")), hostile_text)
tokens = st.one_of(
    st.just(""), st.integers(min_value=0, max_value=10).map(str), st.integers(-(2**70), 2**70).map(str), hostile_text
)

# Times

INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
now_seconds = int(NOW.timestamp())
seconds = st.one_of(
    st.integers(min_value=now_seconds - 40 * 86400, max_value=now_seconds + 86400),
    st.integers(*INT64),
    st.sampled_from(
        (
            TIMESTAMP_MIN_SECONDS - 1,
            TIMESTAMP_MIN_SECONDS,
            TIMESTAMP_MAX_SECONDS,
            TIMESTAMP_MAX_SECONDS + 1,
            0,
            -1,
            INT64[0],
            INT64[1],
        )
    ),
)
nanos = st.one_of(st.just(0), st.integers(min_value=0, max_value=999_999_999), st.integers(*INT32))


@st.composite
def timestamps(draw: st.DrawFn) -> Timestamp:
    stamp = Timestamp()
    stamp.seconds = draw(seconds)
    stamp.nanos = draw(nanos)
    return stamp


def recent(hours_ago: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(NOW - timedelta(hours=hours_ago))
    return stamp


recent_times = st.floats(min_value=0, max_value=24 * 20).map(recent)
any_times = st.one_of(recent_times, timestamps())
dates = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.dates(min_value=NOW.date() - timedelta(days=18 * 365), max_value=NOW.date()).map(lambda d: d.isoformat()),
    st.sampled_from(("0001-01-01", "9999-12-31", "20190501", "2019-W18-3", "2019-02-30", "2019-05-01T00:00")),
    hostile_text,
)

# Values

SIGNAL_RANGES = {
    "heart_rate": (20, 300),
    "respiratory_rate": (4, 120),
    "temperature_c": (30, 44),
    "spo2": (30, 100),
    "systolic_bp": (30, 250),
    "capillary_refill_s": (0, 15),
    "respiratory_effort": (0, 3),
    "oxygen_flow_l_min": (0, 30),
    "weight_kg": (0.3, 250),
    "neutrophils_g_l": (0, 100),
    "crp_mg_l": (0, 600),
    "haemoglobin_g_l": (25, 250),
    "platelets_g_l": (0, 2000),
}
# Values every rule accepts at any paediatric age (no unit-mistake look-alikes).
TYPICAL = {
    "heart_rate": st.floats(60, 180),
    "respiratory_rate": st.floats(15, 50),
    "temperature_c": st.floats(35, 41),
    "spo2": st.floats(85, 100),
    "systolic_bp": st.floats(60, 130),
    "capillary_refill_s": st.floats(0, 5),
    "respiratory_effort": st.sampled_from((0.0, 1.0, 2.0, 3.0)),
    "oxygen_flow_l_min": st.floats(0, 5),
    "neutrophils_g_l": st.floats(0, 20),
    "crp_mg_l": st.floats(0, 300),
    "haemoglobin_g_l": st.floats(60, 160),
    "platelets_g_l": st.floats(10, 500),
}
any_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from((0.0, -0.0, 1e308, -1e308, 5e-324, float("nan"), float("inf"), -float("inf"))),
    st.floats(min_value=-1e6, max_value=1e6),
)


def hostile_value(name: str) -> st.SearchStrategy[float]:
    low, high = SIGNAL_RANGES[name]
    return st.one_of(st.floats(min_value=low, max_value=high), any_floats)


def sometimes(hostile: st.SearchStrategy[Any], usual: Any) -> st.SearchStrategy[Any]:
    """Mostly `usual`, now and then a draw of `hostile`."""
    return st.integers(0, 3).flatmap(lambda n: hostile if n == 0 else st.just(usual))


@st.composite
def mutated(draw: st.DrawFn, fields: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]]) -> dict[str, Any]:
    """Field values, each valid but for a few chosen hostile ones, so that calls get past the first check."""
    hostile = draw(sometimes(st.sets(st.sampled_from(sorted(fields)), min_size=1, max_size=3), frozenset()))
    return {name: draw(bad if name in hostile else good) for name, (good, bad) in fields.items()}


ABSENT = st.just(None)
OBSERVATION_FIELDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "observation_id": (st.uuids().map(str), st.one_of(st.sampled_from(("o-1", "o-2")), hostile_text)),
    "observed_at": (recent_times, st.one_of(ABSENT, timestamps())),
    "heart_rate": (TYPICAL["heart_rate"], st.one_of(ABSENT, hostile_value("heart_rate"))),
    **{name: (st.one_of(ABSENT, TYPICAL[name]), hostile_value(name)) for name in TYPICAL if name != "heart_rate"},
    "weight_kg": (ABSENT, hostile_value("weight_kg")),
    "avpu": (st.one_of(ABSENT, st.sampled_from("AVPU")), hostile_text),
}


@st.composite
def observations(draw: st.DrawFn) -> pb.Observation:
    values = draw(mutated(OBSERVATION_FIELDS))
    stamp = values.pop("observed_at")
    message = pb.Observation(**{name: value for name, value in values.items() if value is not None})
    if stamp is not None:
        message.observed_at.CopyFrom(stamp)
    return message


def _in_time_order(batch: list[pb.Observation]) -> list[pb.Observation]:
    return sorted(batch, key=lambda o: (o.observed_at.seconds, o.observed_at.nanos))


batches = st.one_of(
    st.lists(observations(), min_size=1, max_size=5, unique_by=lambda o: o.observation_id).map(_in_time_order),
    st.lists(observations(), min_size=1, max_size=5, unique_by=lambda o: o.observation_id).map(_in_time_order),
    st.lists(observations(), max_size=5),
    # Oversized, and one item repeated (duplicate ids).
    st.tuples(observations(), st.integers(1, MAX_BATCH + 5)).map(lambda pair: [pair[0]] * pair[1]),
)

young_birth_dates = st.dates(min_value=NOW.date() - timedelta(days=17 * 365), max_value=NOW.date() - timedelta(days=60))
PATIENT_FIELDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "patient_id": (st.one_of(st.sampled_from(KNOWN_PATIENTS), st.uuids().map(str)), hostile_text),
    "birth_date": (young_birth_dates.map(lambda d: d.isoformat()), dates),
    "sex": (st.sampled_from(("female", "male", "other", "unknown", "")), hostile_text),
    "diagnosis_group": (st.sampled_from(("all", "aml", "lymphoma", "cns_tumour", "solid_tumour")), hostile_text),
    "treatment_intensity": (st.sampled_from(("low", "medium", "high")), hostile_text),
    "central_line": (st.booleans(), st.booleans()),
    "ward": (st.sampled_from(("onc-a", "onc-b", "")), hostile_text),
    "team": (st.sampled_from(("team-1", "")), hostile_text),
    "chemotherapy_at": (
        st.lists(st.floats(min_value=1, max_value=24 * 30).map(recent), max_size=3),
        st.one_of(st.lists(any_times, max_size=4), any_times.map(lambda t: [t] * 2001)),
    ),
}


@st.composite
def patients(draw: st.DrawFn) -> pb.Patient:
    return pb.Patient(**draw(mutated(PATIENT_FIELDS)))


# Valid at the edges: every value anywhere in its valid range, every time anywhere from birth to now.


def instant(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


def _moments(born: datetime) -> st.SearchStrategy[datetime]:
    return st.datetimes(min_value=_naive(born), max_value=_naive(NOW)).map(lambda t: t.replace(tzinfo=UTC))


def edge_batch(draw: st.DrawFn, born: datetime, prefix: str) -> list[pb.Observation]:
    batch = []
    for moment in sorted(draw(st.lists(_moments(born), min_size=1, max_size=MAX_BATCH))):
        item = pb.Observation(observation_id=f"{prefix}-{len(batch)}", observed_at=instant(moment))
        for name, (low, high) in SIGNAL_RANGES.items():
            if name == "heart_rate" or draw(st.booleans()):
                setattr(item, name, draw(st.sampled_from((0.0, 3.0)) if name == "respiratory_effort" else st.floats(low, high)))
        if draw(st.booleans()):
            item.avpu = draw(st.sampled_from("AVPU"))
        batch.append(item)
    return batch


@st.composite
def edge_scorings(draw: st.DrawFn) -> pb.ScoreObservationsRequest:
    born = draw(st.datetimes(min_value=_naive(NOW - timedelta(days=25 * 365)), max_value=_naive(NOW)))
    born = born.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC)
    request = pb.ScoreObservationsRequest(patient=valid_patient("edge"), observations=edge_batch(draw, born, "edge"))
    request.patient.birth_date = born.date().isoformat()
    del request.patient.chemotherapy_at[:]
    request.patient.chemotherapy_at.extend(instant(t) for t in draw(st.lists(_moments(born), max_size=3)))
    if draw(st.booleans()):
        first = request.observations[0].observed_at.ToDatetime(tzinfo=UTC)
        request.at.CopyFrom(instant(draw(_moments(first))))
    return request


@st.composite
def edge_recordings(draw: st.DrawFn) -> pb.RecordObservationsRequest:
    # Ids unique across the run (hypothesis repeats its uuids), so that every batch adds observations and a score.
    prefix = f"edge-{next(RECORDED_BATCHES)}"
    patient_id = draw(st.sampled_from(KNOWN_PATIENTS))
    return pb.RecordObservationsRequest(
        patient_id=patient_id, observations=edge_batch(draw, datetime(2018, 3, 14, tzinfo=UTC), prefix)
    )


# Raw bytes appended to a serialized message: unknown fields (of each wire type), or garbage.


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@st.composite
def unknown_field(draw: st.DrawFn) -> bytes:
    number = draw(st.integers(min_value=17, max_value=2**29 - 1))
    wire = draw(st.sampled_from((0, 1, 2, 5)))
    tag = _varint(number << 3 | wire)
    if wire == 0:
        return tag + _varint(draw(st.integers(0, 2**64 - 1)))
    if wire == 1:
        return tag + draw(st.binary(min_size=8, max_size=8))
    if wire == 5:
        return tag + draw(st.binary(min_size=4, max_size=4))
    payload = draw(st.binary(max_size=32))
    return tag + _varint(len(payload)) + payload


# Unknown fields only: they keep a nested message parseable.
unknown_fields = st.lists(unknown_field(), min_size=1, max_size=3).map(b"".join)
nested_suffixes = sometimes(unknown_fields, b"")
suffixes = sometimes(st.one_of(unknown_fields, st.binary(min_size=1, max_size=12)), b"")


def with_unknown_in_items(request: Message, field: str, suffix: bytes) -> Message:
    """Unknown fields inside the first item of a repeated message field (a nested unknown field)."""
    items = getattr(request, field)
    if not suffix or not len(items):
        return request
    copy = type(request)()
    copy.CopyFrom(request)
    first = getattr(copy, field)[0]
    first.MergeFromString(suffix)
    return copy


# The server


@pytest.fixture(scope="module")
async def fuzz_target(deterioration_package: ModelPackage, database_url: str) -> AsyncIterator[tuple[str, str]]:
    service_settings = DeteriorationSettings(database_url=database_url, max_batch_size=MAX_BATCH, watch_poll_seconds=0.05)
    server, port = await start_inprocess_server(deterioration_mount(service_settings))
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    yield f"127.0.0.1:{port}", backend
    await server.stop(grace=None)


@pytest.fixture(scope="module")
async def fuzz_channel(fuzz_target: tuple[str, str]) -> AsyncIterator[tuple[grpc.aio.Channel, str]]:
    address, backend = fuzz_target
    async with grpc.aio.insecure_channel(address) as channel:
        for index, patient_id in enumerate(KNOWN_PATIENTS):
            await _valid_patient(channel, patient_id, NOW - timedelta(hours=10 - index))
        yield channel, backend
        await _still_serving(channel)


@pytest.fixture(scope="module", autouse=True)
def fuzz_report() -> Iterator[None]:
    yield
    path = os.environ.get("CLINPRED_FUZZ_REPORT")
    if path:
        rows = [{"backend": b, "rpc": r, "status": s, "count": n} for (b, r, s), n in sorted(SEEN.items())]
        previous = json.loads(Path(path).read_text()) if Path(path).exists() else []
        Path(path).write_text(json.dumps(previous + rows, indent=1))


def valid_patient(patient_id: str) -> pb.Patient:
    message = pb.Patient(
        patient_id=patient_id,
        birth_date="2018-03-14",
        sex="female",
        diagnosis_group="all",
        treatment_intensity="high",
        central_line=True,
        ward="onc-a",
        team="team-1",
    )
    message.chemotherapy_at.append(recent(24 * 9))
    return message


async def _valid_patient(channel: grpc.aio.Channel, patient_id: str, observed_at: datetime) -> pb.RecordObservationsResponse:
    register = channel.unary_unary(f"/{SERVICE_NAME}/RegisterPatient", pb.RegisterPatientRequest.SerializeToString)
    await register(pb.RegisterPatientRequest(patient=valid_patient(patient_id)))
    record = channel.unary_unary(
        f"/{SERVICE_NAME}/RecordObservations",
        pb.RecordObservationsRequest.SerializeToString,
        pb.RecordObservationsResponse.FromString,
    )
    stamp = Timestamp()
    stamp.FromDatetime(observed_at)
    batch = [pb.Observation(observation_id=f"seed-{patient_id}", observed_at=stamp, heart_rate=120, spo2=97)]
    response: pb.RecordObservationsResponse = await record(
        pb.RecordObservationsRequest(patient_id=patient_id, observations=batch)
    )
    return response


async def _still_serving(channel: grpc.aio.Channel) -> None:
    """After the run, authorized valid calls still succeed."""
    info = channel.unary_unary(
        f"/{SERVICE_NAME}/GetModelInfo", pb.GetModelInfoRequest.SerializeToString, pb.GetModelInfoResponse.FromString
    )
    assert (await info(pb.GetModelInfoRequest())).horizon_hours == 24
    recorded = await _valid_patient(channel, "after-the-fuzz", NOW - timedelta(minutes=30))
    assert recorded.score.version >= 1 and 0.0 <= recorded.score.probability <= 1.0
    export = channel.unary_unary(
        f"/{SERVICE_NAME}/ExportFhir", pb.ExportFhirRequest.SerializeToString, pb.ExportFhirResponse.FromString
    )
    bundle = json.loads((await export(pb.ExportFhirRequest(patient_id="MRN:12345"))).bundle_json)
    assert bundle["entry"][0]["resource"]["resourceType"] == "RiskAssessment"


# The property


def _check_status(backend: str, rpc: str, error: grpc.aio.AioRpcError | None) -> None:
    code = grpc.StatusCode.OK if error is None else error.code()
    SEEN[(backend, rpc, code.name)] += 1
    if error is None:
        return
    details = error.details() or ""
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), f"{rpc}: {code.name} {details[:300]}"
    assert CANARY not in details, f"{rpc}: the answer echoes a sent value"
    assert len(details) <= 600, f"{rpc}: status message of {len(details)} characters"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        violations = field_violations(error)
        assert violations, f"{rpc}: INVALID_ARGUMENT without field violations"
        for field, description in violations.items():
            assert CANARY not in field and CANARY not in description, f"{rpc}: a violation echoes a sent value"
            assert 0 < len(description) <= 200 and len(field) <= 100, (field, description[:300])


async def _unary(channel_and_backend: tuple[grpc.aio.Channel, str], rpc: str, payload: bytes, label: str = "") -> bytes | None:
    """Sends raw bytes; checks the status; returns the answer's bytes when it is OK."""
    channel, backend = channel_and_backend
    call = channel.unary_unary(f"/{SERVICE_NAME}/{rpc}", request_serializer=None, response_deserializer=None)
    try:
        answer: bytes = await call(payload, timeout=60)
    except grpc.aio.AioRpcError as error:
        _check_status(backend, label or rpc, error)
        return None
    _check_status(backend, label or rpc, None)
    return answer


def _check_score(score: pb.RiskScore) -> None:
    assert 0.0 <= score.probability <= 1.0 and score.band != pb.RISK_BAND_UNSPECIFIED
    assert score.pews.total == sum(item.points for item in score.pews.items)


# One test per RPC


@FUZZ
@given(patient=st.one_of(patients(), st.none()), suffix=suffixes, nested=nested_suffixes)
async def test_register_patient(
    fuzz_channel: tuple[grpc.aio.Channel, str], patient: pb.Patient | None, suffix: bytes, nested: bytes
) -> None:
    request = pb.RegisterPatientRequest()
    if patient is not None:
        request.patient.CopyFrom(patient)
        request.patient.MergeFromString(nested)
    await _unary(fuzz_channel, "RegisterPatient", request.SerializeToString() + suffix)


@FUZZ
@given(patient_id=patient_ids, batch=batches, suffix=suffixes, nested=nested_suffixes)
async def test_record_observations(
    fuzz_channel: tuple[grpc.aio.Channel, str], patient_id: str, batch: list[pb.Observation], suffix: bytes, nested: bytes
) -> None:
    request = with_unknown_in_items(
        pb.RecordObservationsRequest(patient_id=patient_id, observations=batch), "observations", nested
    )
    await _unary(fuzz_channel, "RecordObservations", request.SerializeToString() + suffix)


@FUZZ
@given(patient_id=patient_ids, known=st.one_of(st.integers(0, 3), st.integers(*INT64)), suffix=suffixes)
async def test_get_latest_risk(fuzz_channel: tuple[grpc.aio.Channel, str], patient_id: str, known: int, suffix: bytes) -> None:
    request = pb.GetLatestRiskRequest(patient_id=patient_id, known_version=known)
    await _unary(fuzz_channel, "GetLatestRisk", request.SerializeToString() + suffix)


@FUZZ
@given(patient_id=patient_ids, page_size=st.one_of(st.integers(0, 5), st.integers(*INT32)), token=tokens, suffix=suffixes)
async def test_list_risk_history(
    fuzz_channel: tuple[grpc.aio.Channel, str], patient_id: str, page_size: int, token: str, suffix: bytes
) -> None:
    request = pb.ListRiskHistoryRequest(patient_id=patient_id, page_size=page_size, page_token=token)
    await _unary(fuzz_channel, "ListRiskHistory", request.SerializeToString() + suffix)


@FUZZ
@given(
    patient=st.one_of(patients(), st.none()),
    batch=batches,
    at=st.one_of(st.none(), st.just(recent(0)), any_times),
    suffix=suffixes,
    nested=nested_suffixes,
)
async def test_score_observations(
    fuzz_channel: tuple[grpc.aio.Channel, str],
    patient: pb.Patient | None,
    batch: list[pb.Observation],
    at: Any,
    suffix: bytes,
    nested: bytes,
) -> None:
    request = pb.ScoreObservationsRequest(observations=batch)
    if patient is not None:
        request.patient.CopyFrom(patient)
    if at is not None:
        request.at.CopyFrom(at)
        request.at.MergeFromString(nested)
    request = with_unknown_in_items(request, "observations", nested)
    await _unary(fuzz_channel, "ScoreObservations", request.SerializeToString() + suffix)


@FUZZ
@given(request=edge_scorings())
async def test_score_observations_at_the_edges_of_validity(
    fuzz_channel: tuple[grpc.aio.Channel, str], request: pb.ScoreObservationsRequest
) -> None:
    # Valid but extreme: answered, or refused as a likely unit mistake (a weight in pounds), never a crash.
    answer = await _unary(fuzz_channel, "ScoreObservations", request.SerializeToString(), "ScoreObservations (valid edges)")
    if answer is not None:
        score = pb.ScoreObservationsResponse.FromString(answer).score
        _check_score(score)
        newest = request.observations[-1].observed_at
        assert score.scored_at == (request.at if request.HasField("at") else newest)


@FUZZ
@given(request=edge_recordings())
async def test_record_observations_at_the_edges_of_validity(
    fuzz_channel: tuple[grpc.aio.Channel, str], request: pb.RecordObservationsRequest
) -> None:
    answer = await _unary(fuzz_channel, "RecordObservations", request.SerializeToString(), "RecordObservations (valid edges)")
    if answer is not None:
        recorded = pb.RecordObservationsResponse.FromString(answer)
        assert recorded.stored == len(request.observations) and recorded.duplicates == 0
        _check_score(recorded.score)


@FUZZ
@given(patient_id=patient_ids, suffix=suffixes)
async def test_export_fhir(fuzz_channel: tuple[grpc.aio.Channel, str], patient_id: str, suffix: bytes) -> None:
    answer = await _unary(fuzz_channel, "ExportFhir", pb.ExportFhirRequest(patient_id=patient_id).SerializeToString() + suffix)
    if answer is not None:
        exported = pb.ExportFhirResponse.FromString(answer)
        bundle = json.loads(exported.bundle_json)
        urls = {entry["fullUrl"] for entry in bundle["entry"]}
        for entry in bundle["entry"]:
            resource = entry["resource"]
            assert re.fullmatch(r"[A-Za-z0-9\-\.]{1,64}", resource["id"])
            # A short id such as "1" is in most hex digests by chance; a longer one would be carried.
            assert len(patient_id) < 6 or patient_id not in resource["id"]
            if "subject" in resource:
                assert resource["subject"]["identifier"]["value"] == patient_id
        assert all(basis["reference"] in urls for basis in bundle["entry"][0]["resource"]["basis"])
        assert [json.loads(exported.risk_assessment_json), json.loads(exported.pews_observation_json)] == [
            entry["resource"] for entry in bundle["entry"][:2]
        ]


@FUZZ
@given(suffix=suffixes)
async def test_get_model_info(fuzz_channel: tuple[grpc.aio.Channel, str], suffix: bytes) -> None:
    await _unary(fuzz_channel, "GetModelInfo", pb.GetModelInfoRequest().SerializeToString() + suffix)


@FUZZ
@given(ward=wards, team=wards, band=st.one_of(st.sampled_from((0, 1, 2, 3)), st.integers(*INT32)), token=tokens, suffix=suffixes)
async def test_watch_risk(
    fuzz_channel: tuple[grpc.aio.Channel, str], ward: str, team: str, band: int, token: str, suffix: bytes
) -> None:
    channel, backend = fuzz_channel
    request = pb.WatchRiskRequest(ward=ward, team=team, alert_band=band, resume_token=token)  # type: ignore[arg-type]
    call = channel.unary_stream(f"/{SERVICE_NAME}/WatchRisk", request_serializer=None, response_deserializer=None)
    stream = call(request.SerializeToString() + suffix, timeout=60)
    try:
        # A rejected watch ends at once; an accepted one waits for scores: both say what the server made of it.
        await asyncio.wait_for(anext(aiter(stream)), WATCH_WAIT_SECONDS)
    except grpc.aio.AioRpcError as error:
        _check_status(backend, "WatchRisk", error)
    except (TimeoutError, StopAsyncIteration):
        _check_status(backend, "WatchRisk", None)
    else:
        _check_status(backend, "WatchRisk", None)
    finally:
        stream.cancel()
