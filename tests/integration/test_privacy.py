"""No patient identifier leaks: every RPC of every service, succeeding and failing, with markers in every identifying field.

The three services run in this process over mutual TLS with a policy and their real audit trails. Each RPC is called
with unique markers (`MRKqz...`) in case, patient and observation ids, wards, teams, VCF sample names and header
lines, then refused in every way we can make it refuse: invalid values beside the markers, unknown patients,
unknown fields, undecodable bytes, a forbidden method, no identity, a broken database. Then every log record of every
logger (at DEBUG), everything written to the process's stdout and stderr, every error's message and rich details,
the Prometheus exposition and every stored audit record (raw bytes and as FHIR AuditEvent) is scanned for a marker.
Successful answers may echo the caller's own ids and are not scanned.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import grpc
import numpy as np
import psycopg
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client import REGISTRY, generate_latest

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.genomics.encrypted import create_client_context, encrypt_dosages, public_context_bytes
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.tumor import encrypted as tumor_encrypted
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as dpb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as dpb_grpc
from clinpred.services.api.genomics.v1 import genomics_pb2 as gpb
from clinpred.services.api.genomics.v1 import genomics_pb2_grpc as gpb_grpc
from clinpred.services.api.tumor.v1 import tumor_pb2 as tpb
from clinpred.services.api.tumor.v1 import tumor_pb2_grpc as tpb_grpc
from clinpred.services.common.audit import AuditKeys, AuditRecord, read_records, verify
from clinpred.services.common.audit.fhir import audit_event
from clinpred.services.common.sealed_channel import SealedChannel
from clinpred.services.deterioration.client import observation
from clinpred.services.genomics.client import layout_of
from clinpred.services.tumor.codec import decode_encrypted_model
from tests.fuzz.outcomes import varint
from tests.integration.deterioration.conftest import _drop_tables, deterioration_package, postgres_url  # noqa: F401  (fixtures)
from tests.integration.deterioration.test_service import NOW, patient
from tests.integration.genomics.conftest import breast_package, pgs37, pgs_file, vcf_text  # noqa: F401  (fixtures)
from tests.integration.mutual_tls_services import OTHER_TENANT, READER, TENANT, ThreeServices, serve_three_services
from tests.integration.tumor.conftest import tumor_package, wdbc_cases  # noqa: F401  (fixtures)

MARKER_PREFIX = "MRKqz"
# Case-insensitive, and matched on a prefix: a marker cut short by a length bound, or lower-cased, still counts.
_MARKER = re.compile(MARKER_PREFIX.lower(), re.IGNORECASE)
_MARKER_BYTES = re.compile(MARKER_PREFIX.lower().encode(), re.IGNORECASE)
TUMOR = "/clinpred.tumor.v1.TumorClassificationService/"
DETERIORATION = "/clinpred.deterioration.v1.DeteriorationService/"
GENOMICS = "/clinpred.genomics.v1.GenomicRiskService/"
TUMOR_SERVICE = tpb.DESCRIPTOR.services_by_name["TumorClassificationService"]
DETERIORATION_SERVICE = dpb.DESCRIPTOR.services_by_name["DeteriorationService"]
GENOMICS_SERVICE = gpb.DESCRIPTOR.services_by_name["GenomicRiskService"]
REQUEST_ID = "x-request-id"
TIMEOUT = 60.0


def marker() -> str:
    """A fresh identifier that appears nowhere but where the test puts it."""
    return f"{MARKER_PREFIX}{uuid.uuid4().hex[:12]}"


def found_in(text: str | bytes) -> list[str]:
    """Excerpts around every marker in `text`."""
    if isinstance(text, bytes):
        return [text[max(0, m.start() - 40) : m.end() + 40].decode("latin-1") for m in _MARKER_BYTES.finditer(text)]
    return [text[max(0, m.start() - 40) : m.end() + 40] for m in _MARKER.finditer(text)]


def _unknown_field(payload: str) -> bytes:
    """Field 1000 (no message defines it), length-delimited, holding `payload`: what a newer client might send."""
    data = payload.encode()
    return varint(1000 << 3 | 2) + varint(len(data)) + data


class CapturedLogs(logging.Handler):
    """Every record of every logger, formatted as a log file would hold it (with tracebacks)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._lock_lines = threading.Lock()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception as error:  # a record that cannot be formatted is still scanned, raw
            line = f"{record.name} {record.msg!r} {record.args!r} ({type(error).__name__})"
        with self._lock_lines:
            self.lines.append(line)

    def take(self) -> list[str]:
        """The lines captured since the last take: each line is scanned once."""
        with self._lock_lines:
            taken, self.lines = self.lines, []
        return taken


_VERBOSE_LOGGERS = ("", "grpc", "grpc._cython", "grpc.aio", "bentoml", "clinpred", "asyncio", "sqlalchemy", "yoyo", "psycopg")


@pytest.fixture(scope="module")
def logs() -> Iterator[CapturedLogs]:
    handler = CapturedLogs()
    saved = {name: logging.getLogger(name).level for name in _VERBOSE_LOGGERS}
    for name in _VERBOSE_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
    # What the servers logged while they stopped.
    assert not [hit for line in handler.take() for hit in found_in(line)]
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def services(
    request: pytest.FixtureRequest,
    logs: CapturedLogs,
    tmp_path_factory: pytest.TempPathFactory,
    tumor_package: ModelPackage,  # noqa: F811
    breast_package: ModelPackage,  # noqa: F811
    deterioration_package: ModelPackage,  # noqa: F811
) -> AsyncIterator[ThreeServices]:
    folder = tmp_path_factory.mktemp("privacy")
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    try:
        async with serve_three_services(folder, tumor_package, breast_package, deterioration_package, database_url) as served:
            yield served
    finally:
        if database_url:
            _drop_tables(database_url)


@dataclass
class Calls:
    """Runs blocking calls in a thread (the servers share this event loop) and keeps every refusal to scan."""

    services: ThreeServices
    refusals: list[tuple[str, grpc.RpcError]] = field(default_factory=list)
    codes: list[tuple[str, str]] = field(default_factory=list)

    async def succeeds(self, what: str, invoke: Callable[[], Any]) -> Any:
        try:
            answer = await asyncio.to_thread(invoke)
        except grpc.RpcError as error:
            raise AssertionError(f"{what}: {error.code()} {error.details()}") from None
        self.codes.append((what, "OK"))
        return answer

    async def refused(self, what: str, expected: grpc.StatusCode | set[grpc.StatusCode], invoke: Callable[[], Any]) -> None:
        try:
            await asyncio.to_thread(invoke)
        except grpc.RpcError as error:
            self.refusals.append((what, error))
            self.codes.append((what, error.code().name))
            allowed = expected if isinstance(expected, set) else {expected}
            assert error.code() in allowed, (what, error.code(), error.details())
            return
        raise AssertionError(f"{what}: answered, but a refusal was expected")


def error_texts(error: grpc.RpcError) -> list[str | bytes]:
    """Everything a refused caller is told: the message, every trailer, and each rich-status detail."""
    texts: list[str | bytes] = [error.details() or "", error.debug_error_string()]
    for key, value in error.trailing_metadata() or ():
        texts += [key, value]
    status = rpc_status.from_call(error)
    if status is not None:
        texts.append(status.message)
        for detail in status.details:
            texts.append(detail.value)
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                texts += [text for v in bad_request.field_violations for text in (v.field, v.description)]
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                texts += [info.reason, info.domain, *info.metadata.keys(), *info.metadata.values()]
    return texts


def _sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Runs one statement on the deterioration database (SQLite or PostgreSQL); its rows."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            return connection.execute(statement).fetchall()
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(statement)
        return cursor.fetchall() if cursor.description else []


def _audit_texts(services: ThreeServices, service: str) -> tuple[list[str | bytes], list[AuditRecord]]:
    """The stored bytes of a service's audit trail, its records as JSON and as FHIR AuditEvents."""
    if service == "deterioration":
        stored = read_records(database=services.database_url)
        raw: list[str | bytes] = [
            repr(row)
            for table in ("audit_records", "audit_heads")
            for row in _sql(services.database_url, f"SELECT * FROM {table}")
        ]
    else:
        folder = services.audit_dirs[service]
        stored = read_records(directory=folder)
        raw = [path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file() and path.name != "audit.key"]
    keys = AuditKeys.from_file(services.key_file)
    assert verify(stored.records_by_writer, stored.heads, keys).intact
    records = [record for chain in stored.records_by_writer.values() for record in chain]
    raw += [record.to_json() for record in records]
    raw += [json.dumps(audit_event(record)) for record in records]
    return raw, records


def find_markers(
    services: ThreeServices, service: str, calls: Calls, logs: CapturedLogs, capfd: pytest.CaptureFixture[str]
) -> tuple[list[tuple[str, str]], list[AuditRecord]]:
    """Where a marker shows in what was logged, printed, answered in errors, exposed as metrics or audited for
    `service`; and the service's audit records."""
    leaks: list[tuple[str, str]] = []
    for what, error in calls.refusals:
        leaks += [(f"error of {what}", hit) for text in error_texts(error) for hit in found_in(text)]
    leaks += [("log", hit) for line in logs.take() for hit in found_in(line)]
    out, err = capfd.readouterr()
    leaks += [("stdout/stderr", hit) for hit in found_in(out + err)]
    leaks += [("metrics", hit) for hit in found_in(generate_latest(REGISTRY))]
    audit, records = _audit_texts(services, service)
    leaks += [("audit trail", hit) for text in audit for hit in found_in(text)]
    return leaks, records


def assert_no_marker(
    services: ThreeServices, service: str, calls: Calls, logs: CapturedLogs, capfd: pytest.CaptureFixture[str]
) -> list[AuditRecord]:
    leaks, records = find_markers(services, service, calls, logs, capfd)
    assert not leaks, leaks
    return records


def _read_all(method: Callable[..., Any], request: Any) -> list[Any]:
    return list(method(request, timeout=TIMEOUT))


def _audited_outcomes(records: list[AuditRecord], prefix: str) -> set[tuple[str, str]]:
    return {(r.entry.method.removeprefix(prefix), r.entry.outcome) for r in records if r.entry.method.startswith(prefix)}


async def test_the_scan_finds_a_marker_planted_in_a_log_line(
    services: ThreeServices, logs: CapturedLogs, capfd: pytest.CaptureFixture[str]
) -> None:
    planted = marker()
    logging.getLogger("clinpred.test").debug("registered patient %s", planted)
    os.write(2, f"worker: patient {planted}\n".encode())
    calls = Calls(services)
    with services.channel("tumor") as channel:
        case = tpb.TumorCase(case_id="\x00")
        refused = lambda: tpb_grpc.TumorClassificationServiceStub(channel).Classify(tpb.ClassifyRequest(tumor_case=case))  # noqa: E731
        await calls.refused("Classify", grpc.StatusCode.INVALID_ARGUMENT, refused)
    leaks, _ = find_markers(services, "tumor", calls, logs, capfd)
    assert sorted(where for where, _ in leaks) == ["log", "stdout/stderr"], leaks
    assert all(planted in hit for _, hit in leaks)
    # The rich details are read: the violation's field and ErrorInfo's reason are among the texts scanned.
    texts = error_texts(calls.refusals[0][1])
    assert "tumor_case.case_id" in texts and "ERROR_REASON_INVALID_INPUT" in texts
    # Cut short or lower-cased, a marker is found all the same; text without one is clean.
    assert found_in(planted[:6] + "…") and found_in(planted.lower().encode()) and not found_in("MRK-7f3a case-17")


# --- tumour ---------------------------------------------------------------------------------------


async def test_tumour_rpcs_leak_no_patient_identifier(
    services: ThreeServices,
    logs: CapturedLogs,
    capfd: pytest.CaptureFixture[str],
    wdbc_cases: list[tuple[dict[str, float], str]],  # noqa: F811
) -> None:
    calls = Calls(services)
    features = wdbc_cases[0][0]
    invalid = features | {"mean_radius": -5.0, "mean_texture": float("nan")}
    bad = grpc.StatusCode.INVALID_ARGUMENT

    def case(case_id: str, values: dict[str, float] | None = None) -> tpb.TumorCase:
        return tpb.TumorCase(case_id=case_id, features=features if values is None else values)

    no_san = services.signed_client([])
    with (
        services.channel("tumor") as channel,
        services.channel("tumor", services.identity(TENANT, READER)) as reader_channel,
        services.channel("tumor", no_san) as anonymous_channel,
    ):
        stub, reader, anonymous = (
            tpb_grpc.TumorClassificationServiceStub(c) for c in (channel, reader_channel, anonymous_channel)
        )

        def classify(one: tpb.TumorCase, on: Any = stub, **options: Any) -> Any:
            return lambda: on.Classify(tpb.ClassifyRequest(tumor_case=one), timeout=TIMEOUT, **options)

        await calls.succeeds("Classify", classify(case(marker())))
        # The caller's own request id is stored; one that is not an id is not.
        await calls.succeeds(
            "Classify with a bad request id", classify(case(marker()), metadata=((REQUEST_ID, f"{marker()} x"),))
        )
        await calls.refused("Classify invalid values", bad, classify(case(marker(), invalid)))
        await calls.refused("Classify control character", bad, classify(case(marker() + "\x00")))
        await calls.refused("Classify long id", bad, classify(case(marker() * 20)))
        await calls.refused("Classify unknown feature", bad, classify(case(marker(), features | {marker(): 1.0})))
        await calls.refused("Classify forbidden", grpc.StatusCode.PERMISSION_DENIED, classify(case(marker()), reader))
        await calls.refused("Classify without identity", grpc.StatusCode.UNAUTHENTICATED, classify(case(marker()), anonymous))
        await calls.refused(
            "Classify bad token",
            grpc.StatusCode.UNAUTHENTICATED,
            classify(case(marker()), metadata=(("authorization", f"Bearer {marker()}"),)),
        )
        raw = channel.unary_unary(TUMOR + "Classify")
        valid_bytes = tpb.ClassifyRequest(tumor_case=case(marker())).SerializeToString()
        await calls.refused("Classify unknown field", bad, lambda: raw(valid_bytes + _unknown_field(marker()), timeout=TIMEOUT))
        await calls.refused("Classify undecodable", bad, lambda: raw(b"\x0a\xff\xff" + marker().encode(), timeout=TIMEOUT))

        def batch(cases: list[tpb.TumorCase]) -> Callable[[], Any]:
            return lambda: stub.ClassifyBatch(tpb.ClassifyBatchRequest(cases=cases), timeout=TIMEOUT)

        await calls.succeeds("ClassifyBatch", batch([case(marker()), case(marker())]))
        await calls.refused("ClassifyBatch one invalid", bad, batch([case(marker()), case(marker(), invalid)]))
        await calls.refused("ClassifyBatch duplicate-free oversize", bad, batch([case(marker()) for _ in range(17)]))
        await calls.refused(
            "ClassifyBatch forbidden",
            grpc.StatusCode.PERMISSION_DENIED,
            lambda: reader.ClassifyBatch(tpb.ClassifyBatchRequest(cases=[case(marker())]), timeout=TIMEOUT),
        )

        def stream(cases: list[tpb.TumorCase], on: Any = stub) -> Callable[[], Any]:
            requests = [tpb.ClassifyStreamRequest(tumor_case=c) for c in cases]
            return lambda: list(on.ClassifyStream(iter(requests), timeout=TIMEOUT))

        await calls.succeeds("ClassifyStream", stream([case(marker()), case(marker())]))
        await calls.refused("ClassifyStream one invalid", bad, stream([case(marker()), case(marker() + "\n", invalid)]))
        await calls.refused("ClassifyStream forbidden", grpc.StatusCode.PERMISSION_DENIED, stream([case(marker())], reader))
        raw_stream = channel.stream_stream(TUMOR + "ClassifyStream")
        garbage = [tpb.ClassifyStreamRequest(tumor_case=case(marker())).SerializeToString(), b"\x0a\xff" + marker().encode()]
        await calls.refused("ClassifyStream undecodable", bad, lambda: list(raw_stream(iter(garbage), timeout=TIMEOUT)))

        await calls.succeeds("GetModelInfo", lambda: reader.GetModelInfo(tpb.GetModelInfoRequest(), timeout=TIMEOUT))
        raw_info = channel.unary_unary(TUMOR + "GetModelInfo")
        await calls.refused("GetModelInfo unknown field", bad, lambda: raw_info(_unknown_field(marker()), timeout=TIMEOUT))
        await calls.refused(
            "GetModelInfo without identity",
            grpc.StatusCode.UNAUTHENTICATED,
            lambda: anonymous.GetModelInfo(tpb.GetModelInfoRequest(), timeout=TIMEOUT),
        )

        # Encrypted: a real call, and the marker as the bytes of a context and of a ciphertext, refused unechoed.
        layout = await asyncio.to_thread(lambda: stub.GetEncryptionLayout(tpb.GetEncryptionLayoutRequest(), timeout=TIMEOUT))
        await calls.succeeds(
            "GetEncryptionLayout", lambda: stub.GetEncryptionLayout(tpb.GetEncryptionLayoutRequest(), timeout=TIMEOUT)
        )
        info = await asyncio.to_thread(lambda: stub.GetModelInfo(tpb.GetModelInfoRequest(), timeout=TIMEOUT))
        encrypted_layout = decode_encrypted_model(layout, info).layout
        context = tumor_encrypted.create_client_context()
        public = tumor_encrypted.public_context_bytes(context)
        rows = np.array([[features[f.name] for f in info.features]])
        indicators = tumor_encrypted.encode_cases(encrypted_layout, rows)
        ciphertexts = tumor_encrypted.encrypt_cases(context, encrypted_layout, indicators).ciphertexts

        def encrypted(context_bytes: bytes, blobs: tuple[bytes, ...] | list[bytes], on: Any = stub) -> Callable[[], Any]:
            request = tpb.ClassifyEncryptedRequest(public_context=context_bytes, ciphertexts=blobs)
            return lambda: on.ClassifyEncrypted(request, timeout=TIMEOUT)

        await calls.succeeds("ClassifyEncrypted", encrypted(public, ciphertexts))
        await calls.refused("ClassifyEncrypted garbage context", bad, encrypted(marker().encode(), ciphertexts))
        await calls.refused("ClassifyEncrypted garbage ciphertext", bad, encrypted(public, [marker().encode()]))
        await calls.refused(
            "ClassifyEncrypted forbidden", grpc.StatusCode.PERMISSION_DENIED, encrypted(public, ciphertexts, reader)
        )

        # Sealed: the same refusals, now inside envelopes (the markers travel in the inner requests).
        sealed_stub, sealed_reader = (
            tpb_grpc.TumorClassificationServiceStub(SealedChannel(c, TUMOR_SERVICE)) for c in (channel, reader_channel)
        )
        await calls.succeeds("Sealed Classify", classify(case(marker()), sealed_stub))
        await calls.refused("Sealed Classify invalid values", bad, classify(case(marker(), invalid), sealed_stub))
        denied = grpc.StatusCode.PERMISSION_DENIED
        await calls.refused("Sealed Classify forbidden", denied, classify(case(marker()), sealed_reader))
        sealed_raw = channel.unary_unary(TUMOR + "Sealed")
        await calls.refused("Sealed garbage", bad, lambda: sealed_raw(b"\x0a\x04" + marker().encode()[:4], timeout=TIMEOUT))
        await calls.succeeds(
            "GetKeyConfigurations", lambda: reader.GetKeyConfigurations(tpb.GetKeyConfigurationsRequest(), timeout=TIMEOUT)
        )

    records = assert_no_marker(services, "tumor", calls, logs, capfd)
    outcomes = _audited_outcomes(records, TUMOR)
    assert {
        ("Classify", "OK"),
        ("Classify", "INVALID_ARGUMENT"),
        ("Classify", "PERMISSION_DENIED"),
        ("Classify", "UNAUTHENTICATED"),
        ("ClassifyBatch", "INVALID_ARGUMENT"),
        ("ClassifyStream", "OK"),
        ("ClassifyStream", "INVALID_ARGUMENT"),
        ("GetModelInfo", "OK"),
        ("GetEncryptionLayout", "OK"),
        ("ClassifyEncrypted", "OK"),
        ("ClassifyEncrypted", "INVALID_ARGUMENT"),
        ("ClassifyEncrypted", "PERMISSION_DENIED"),
        ("Sealed/Classify", "OK"),
        ("Sealed/Classify", "INVALID_ARGUMENT"),
        ("Sealed/Classify", "PERMISSION_DENIED"),
        ("Sealed", "INVALID_ARGUMENT"),
        ("GetKeyConfigurations", "OK"),
    } <= outcomes, outcomes


# --- deterioration --------------------------------------------------------------------------------


async def test_deterioration_rpcs_leak_no_patient_identifier(
    services: ThreeServices, logs: CapturedLogs, capfd: pytest.CaptureFixture[str]
) -> None:
    calls = Calls(services)
    bad, missing = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    known, ward, team = marker(), marker(), marker()

    def vitals(observation_id: str, hours_ago: float, **changes: Any) -> dpb.Observation:
        values = {"heart_rate": 100, "respiratory_rate": 22, "temperature_c": 36.8, "spo2": 98, "systolic_bp": 100} | changes
        return observation(observation_id, NOW - timedelta(hours=hours_ago), **values)

    no_san = services.signed_client([])
    with (
        services.channel("deterioration") as channel,
        services.channel("deterioration", services.identity(TENANT, READER)) as reader_channel,
        services.channel("deterioration", services.identity(OTHER_TENANT)) as other_channel,
        services.channel("deterioration", no_san) as anonymous_channel,
    ):
        stub, reader, other, anonymous = (
            dpb_grpc.DeteriorationServiceStub(c) for c in (channel, reader_channel, other_channel, anonymous_channel)
        )

        def register(message: dpb.Patient, on: Any = stub) -> Callable[[], Any]:
            return lambda: on.RegisterPatient(dpb.RegisterPatientRequest(patient=message), timeout=TIMEOUT)

        await calls.succeeds("RegisterPatient", register(patient(known, ward, team=team)))
        await calls.refused(
            "RegisterPatient invalid values",
            bad,
            register(patient(marker(), marker() + "\x01", team=marker() * 20, birth_date=f"born {marker()}", sex=marker())),
        )
        await calls.refused(
            "RegisterPatient unknown categories",
            bad,
            register(patient(marker(), marker(), diagnosis_group=marker(), treatment_intensity=marker())),
        )
        await calls.refused(
            "RegisterPatient forbidden", grpc.StatusCode.PERMISSION_DENIED, register(patient(marker(), marker()), reader)
        )
        await calls.refused(
            "RegisterPatient without identity", grpc.StatusCode.UNAUTHENTICATED, register(patient(marker(), marker()), anonymous)
        )
        raw_register = channel.unary_unary(DETERIORATION + "RegisterPatient")
        await calls.refused(
            "RegisterPatient undecodable", bad, lambda: raw_register(b"\x0a\xff" + marker().encode(), timeout=TIMEOUT)
        )
        valid_register = dpb.RegisterPatientRequest(patient=patient(marker(), marker())).SerializeToString()
        await calls.refused(
            "RegisterPatient unknown field", bad, lambda: raw_register(valid_register + _unknown_field(marker()), timeout=TIMEOUT)
        )

        def record(patient_id: str, observations: list[dpb.Observation], on: Any = stub) -> Callable[[], Any]:
            request = dpb.RecordObservationsRequest(patient_id=patient_id, observations=observations)
            return lambda: on.RecordObservations(request, timeout=TIMEOUT)

        await calls.succeeds("RecordObservations", record(known, [vitals(marker(), 5), vitals(marker(), 2)]))
        await calls.refused("RecordObservations unknown patient", missing, record(marker(), [vitals(marker(), 1)]))
        await calls.refused("RecordObservations other tenant", missing, record(known, [vitals(marker(), 1)], other))
        twice = marker()
        await calls.refused(
            "RecordObservations invalid values",
            bad,
            record(known, [vitals(twice, 1.5, heart_rate=-3), vitals(twice, 1), vitals(marker() * 20, 0.5, avpu=marker())]),
        )
        await calls.refused(
            "RecordObservations forbidden", grpc.StatusCode.PERMISSION_DENIED, record(known, [vitals(marker(), 1)], reader)
        )

        await calls.succeeds(
            "GetLatestRisk", lambda: stub.GetLatestRisk(dpb.GetLatestRiskRequest(patient_id=known), timeout=TIMEOUT)
        )
        for what, patient_id, code in (
            ("GetLatestRisk unknown patient", marker(), missing),
            ("GetLatestRisk control character", known + "\n", bad),
        ):
            request = dpb.GetLatestRiskRequest(patient_id=patient_id)
            await calls.refused(what, code, functools.partial(stub.GetLatestRisk, request, timeout=TIMEOUT))
        await calls.refused(
            "GetLatestRisk other tenant",
            missing,
            lambda: other.GetLatestRisk(dpb.GetLatestRiskRequest(patient_id=known), timeout=TIMEOUT),
        )

        await calls.succeeds(
            "ListRiskHistory", lambda: stub.ListRiskHistory(dpb.ListRiskHistoryRequest(patient_id=known), timeout=TIMEOUT)
        )
        for what, history, code in (
            ("ListRiskHistory unknown patient", dpb.ListRiskHistoryRequest(patient_id=marker()), missing),
            ("ListRiskHistory bad token", dpb.ListRiskHistoryRequest(patient_id=known, page_token=marker(), page_size=-1), bad),
        ):
            await calls.refused(what, code, functools.partial(stub.ListRiskHistory, history, timeout=TIMEOUT))

        def first_event() -> Any:
            watch = stub.WatchRisk(dpb.WatchRiskRequest(ward=ward, resume_token="0"), timeout=TIMEOUT)
            try:
                return next(watch)
            finally:
                watch.cancel()

        event = await calls.succeeds("WatchRisk", first_event)
        assert event.score.patient_id == known
        for what, watch_request, on, code in (
            (
                "WatchRisk invalid",
                dpb.WatchRiskRequest(ward=marker() + "\x00", team=marker() * 20, resume_token=marker()),
                stub,
                bad,
            ),
            ("WatchRisk forbidden", dpb.WatchRiskRequest(ward=ward, team=team), reader, grpc.StatusCode.PERMISSION_DENIED),
        ):
            await calls.refused(what, code, functools.partial(_read_all, on.WatchRisk, watch_request))

        def score(message: dpb.Patient, observations: list[dpb.Observation], **at: Any) -> Callable[[], Any]:
            request = dpb.ScoreObservationsRequest(patient=message, observations=observations, **at)
            return lambda: stub.ScoreObservations(request, timeout=TIMEOUT)

        await calls.succeeds("ScoreObservations", score(patient(marker(), marker(), team=marker()), [vitals(marker(), 1)]))
        future = dpb.ScoreObservationsRequest().at
        future.FromDatetime(NOW + timedelta(days=3))
        await calls.refused(
            "ScoreObservations invalid",
            bad,
            score(patient(marker() + "\t", marker()), [vitals(marker(), 1, spo2=140)], at=future),
        )

        await calls.succeeds("ExportFhir", lambda: stub.ExportFhir(dpb.ExportFhirRequest(patient_id=known), timeout=TIMEOUT))
        await calls.refused(
            "ExportFhir unknown patient",
            missing,
            lambda: stub.ExportFhir(dpb.ExportFhirRequest(patient_id=marker()), timeout=TIMEOUT),
        )

        await calls.succeeds("GetModelInfo", lambda: reader.GetModelInfo(dpb.GetModelInfoRequest(), timeout=TIMEOUT))
        raw_info = channel.unary_unary(DETERIORATION + "GetModelInfo")
        await calls.refused("GetModelInfo unknown field", bad, lambda: raw_info(_unknown_field(marker()), timeout=TIMEOUT))

        # A failure nobody planned for: the scores' table is gone while the service runs.
        _sql(services.database_url, "ALTER TABLE risk_scores RENAME TO risk_scores_moved")
        try:
            await calls.refused(
                "GetLatestRisk without its table",
                {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE},
                lambda: stub.GetLatestRisk(dpb.GetLatestRiskRequest(patient_id=known), timeout=TIMEOUT),
            )
        finally:
            _sql(services.database_url, "ALTER TABLE risk_scores_moved RENAME TO risk_scores")
        await calls.succeeds(
            "GetLatestRisk again", lambda: stub.GetLatestRisk(dpb.GetLatestRiskRequest(patient_id=known), timeout=TIMEOUT)
        )

        sealed = dpb_grpc.DeteriorationServiceStub(SealedChannel(channel, DETERIORATION_SERVICE))
        await calls.succeeds("Sealed RegisterPatient", register(patient(marker(), ward, team=team), sealed))
        await calls.refused("Sealed RegisterPatient invalid values", bad, register(patient(marker(), marker() + "\x01"), sealed))
        await calls.refused(
            "Sealed GetLatestRisk unknown patient",
            missing,
            lambda: sealed.GetLatestRisk(dpb.GetLatestRiskRequest(patient_id=marker()), timeout=TIMEOUT),
        )
        await calls.succeeds(
            "GetKeyConfigurations", lambda: reader.GetKeyConfigurations(dpb.GetKeyConfigurationsRequest(), timeout=TIMEOUT)
        )

    records = assert_no_marker(services, "deterioration", calls, logs, capfd)
    outcomes = _audited_outcomes(records, DETERIORATION)
    assert {
        ("RegisterPatient", "OK"),
        ("RegisterPatient", "INVALID_ARGUMENT"),
        ("RecordObservations", "NOT_FOUND"),
        ("GetLatestRisk", "NOT_FOUND"),
        ("WatchRisk", "INVALID_ARGUMENT"),
        ("ScoreObservations", "OK"),
        ("ExportFhir", "OK"),
        ("RegisterPatient", "UNAUTHENTICATED"),
        ("Sealed/RegisterPatient", "OK"),
        ("Sealed/RegisterPatient", "INVALID_ARGUMENT"),
        ("Sealed/GetLatestRisk", "NOT_FOUND"),
        ("GetKeyConfigurations", "OK"),
    } <= outcomes, outcomes
    # The audit trail keeps a pseudonym of the patient, never the id.
    assert any(r.entry.patient_pseudonym == AuditKeys.from_file(services.key_file).pseudonym(TENANT, known) for r in records)


# --- genomics -------------------------------------------------------------------------------------


def _cell(lines: bytes, column: int, value: str) -> bytes:
    """`lines` with the `column`th cell of its first line replaced by `value`."""
    first, rest = lines.split(b"\n", 1)
    cells = first.split(b"\t")
    cells[column] = value.encode()
    return b"\t".join(cells) + b"\n" + rest


def _with_header_line(vcf: bytes, line: str) -> bytes:
    first, rest = vcf.split(b"\n", 1)
    return first + b"\n" + line.encode() + b"\n" + rest


async def test_genomics_rpcs_leak_no_patient_identifier(
    services: ThreeServices,
    logs: CapturedLogs,
    capfd: pytest.CaptureFixture[str],
    pgs37: ScoringFile,  # noqa: F811
) -> None:
    calls = Calls(services)
    bad = grpc.StatusCode.INVALID_ARGUMENT
    sample, other_sample = marker(), marker()
    vcf = _with_header_line(vcf_text(pgs37, 2, seed=3, names=(sample, other_sample)), f"##source={marker()}")

    def assessment(*sample_ids: str) -> gpb.Assessment:
        patients = [gpb.Patient(sample_id=s, age=52, sex=gpb.SEX_FEMALE) for s in sample_ids]
        return gpb.Assessment(build=gpb.GENOME_BUILD_GRCH37, patients=patients)

    twice = marker()
    duplicate_names = vcf_text(pgs37, 2, seed=4, names=(twice, twice))
    data_start = vcf.index(b"\n", vcf.index(b"#CHROM")) + 1
    family = gpb.Patient(sample_id=sample, age=52, sex=gpb.SEX_FEMALE, family_history={marker(): True})
    bad_genotype = vcf[:data_start] + re.sub(rb"\t[0-9.][/|][0-9.]", ("\t" + marker()).encode(), vcf[data_start:], count=1)
    hostile_vcfs = {
        "unknown sample": (vcf, assessment(marker())),
        "duplicate sample names": (duplicate_names, assessment(twice)),
        "sample name with a control character": (vcf.replace(sample.encode(), (sample + "\x01").encode()), assessment(sample)),
        "sample name too long": (vcf.replace(sample.encode(), (sample * 20).encode()), assessment(sample * 20)),
        "invalid genotype": (bad_genotype, assessment(sample)),
        "truncated": (vcf[: data_start + 7], assessment(sample)),
        "bad gzip": (b"\x1f\x8b\x08\x00" + marker().encode(), assessment(marker())),
        "invalid allele": (vcf[:data_start] + _cell(vcf[data_start:], 3, marker() + "!"), assessment(sample)),
        "unknown cancer": (vcf, gpb.Assessment(build=gpb.GENOME_BUILD_GRCH37, patients=[family], cancers=[marker()])),
    }

    no_san = services.signed_client([])
    with (
        services.channel("genomics") as channel,
        services.channel("genomics", services.identity(TENANT, READER)) as reader_channel,
        services.channel("genomics", no_san) as anonymous_channel,
    ):
        stub, reader, anonymous = (gpb_grpc.GenomicRiskServiceStub(c) for c in (channel, reader_channel, anonymous_channel))

        def assess(data: bytes, request: gpb.Assessment, on: Any = stub) -> Callable[[], Any]:
            return lambda: on.AssessVcf(gpb.AssessVcfRequest(assessment=request, vcf=data), timeout=TIMEOUT)

        answer = await calls.succeeds("AssessVcf", assess(vcf, assessment(sample)))
        assert [s.sample_id for s in answer.assessment.samples] == [sample]
        await calls.succeeds("AssessVcf gzip, every sample", assess(gzip.compress(vcf), assessment("")))
        odd_header = _cell(_with_header_line(vcf, f"##{marker()}\x00"), 0, "##fileformat=VCFv4.2")
        data_lines = odd_header[odd_header.index(b"\n", odd_header.index(b"#CHROM")) + 1 :]
        odd_header = odd_header[: len(odd_header) - len(data_lines)] + _cell(data_lines, 2, marker())
        await calls.succeeds("AssessVcf odd header line", assess(odd_header, assessment(sample)))
        for what, (data, request) in hostile_vcfs.items():
            await calls.refused(f"AssessVcf {what}", bad, assess(data, request))
        await calls.refused("AssessVcf forbidden", grpc.StatusCode.PERMISSION_DENIED, assess(vcf, assessment(sample), reader))
        await calls.refused(
            "AssessVcf without identity", grpc.StatusCode.UNAUTHENTICATED, assess(vcf, assessment(sample), anonymous)
        )
        raw_assess = channel.unary_unary(GENOMICS + "AssessVcf")
        valid_bytes = gpb.AssessVcfRequest(assessment=assessment(sample), vcf=vcf).SerializeToString()
        await calls.refused(
            "AssessVcf unknown field", bad, lambda: raw_assess(valid_bytes + _unknown_field(marker()), timeout=TIMEOUT)
        )
        await calls.refused("AssessVcf undecodable", bad, lambda: raw_assess(b"\x12\xff\xff" + vcf[:200], timeout=TIMEOUT))

        def upload(
            data: bytes, header: gpb.UploadHeader, before: tuple[gpb.AssessVcfUploadRequest, ...] = ()
        ) -> Callable[[], Any]:
            messages = [*before, gpb.AssessVcfUploadRequest(header=header)]
            messages += [gpb.AssessVcfUploadRequest(chunk=data[i : i + 4096]) for i in range(0, len(data), 4096)]
            return lambda: stub.AssessVcfUpload(iter(messages), timeout=TIMEOUT)

        digest = hashlib.sha256(vcf).hexdigest()
        good_header = gpb.UploadHeader(assessment=assessment(sample), content_length=len(vcf), content_sha256=digest)
        await calls.succeeds("AssessVcfUpload", upload(vcf, good_header))
        await calls.refused(
            "AssessVcfUpload bad digest",
            bad,
            upload(vcf, gpb.UploadHeader(assessment=assessment(sample), content_length=len(vcf), content_sha256=marker())),
        )
        wrong = gpb.UploadHeader(
            assessment=assessment(sample), content_length=len(vcf), content_sha256=hashlib.sha256(b"x").hexdigest()
        )
        await calls.refused("AssessVcfUpload other content", bad, upload(vcf, wrong))
        await calls.refused(
            "AssessVcfUpload chunk first", bad, upload(vcf, good_header, (gpb.AssessVcfUploadRequest(chunk=marker().encode()),))
        )
        hostile, hostile_request = hostile_vcfs["duplicate sample names"]
        hostile_header = gpb.UploadHeader(
            assessment=hostile_request, content_length=len(hostile), content_sha256=hashlib.sha256(hostile).hexdigest()
        )
        await calls.refused("AssessVcfUpload duplicate sample names", bad, upload(hostile, hostile_header))

        await calls.succeeds("ListScores", lambda: reader.ListScores(gpb.ListScoresRequest(), timeout=TIMEOUT))
        raw_list = channel.unary_unary(GENOMICS + "ListScores")
        await calls.refused("ListScores unknown field", bad, lambda: raw_list(_unknown_field(marker()), timeout=TIMEOUT))

        published = await calls.succeeds(
            "GetScoreLayout", lambda: stub.GetScoreLayout(gpb.GetScoreLayoutRequest(score="breast"), timeout=TIMEOUT)
        )
        await calls.refused(
            "GetScoreLayout unknown score",
            {bad, grpc.StatusCode.NOT_FOUND},
            lambda: stub.GetScoreLayout(gpb.GetScoreLayoutRequest(score=marker()), timeout=TIMEOUT),
        )

        layout = layout_of(published)
        context = create_client_context()
        (ciphertext,) = encrypt_dosages(context, np.ones(len(layout)), layout).ciphertexts
        public = public_context_bytes(context)

        def encrypted(score: str, ciphertexts: list[bytes]) -> Callable[[], Any]:
            header = gpb.EncryptedScoreHeader(
                score=score, public_context_length=len(public), ciphertext_lengths=[len(c) for c in ciphertexts]
            )
            messages = [gpb.ScoreEncryptedRequest(header=header)]
            messages += [
                gpb.ScoreEncryptedRequest(public_context_chunk=public[i : i + (1 << 20)]) for i in range(0, len(public), 1 << 20)
            ]
            messages += [
                gpb.ScoreEncryptedRequest(ciphertext_chunk=gpb.CiphertextChunk(index=index, data=blob))
                for index, blob in enumerate(ciphertexts)
            ]
            return lambda: list(stub.ScoreEncrypted(iter(messages), timeout=TIMEOUT))

        answers = await calls.succeeds("ScoreEncrypted", encrypted("breast", [ciphertext]))
        assert answers[0].summary.variants == len(layout)
        await calls.refused("ScoreEncrypted unknown score", {bad, grpc.StatusCode.NOT_FOUND}, encrypted(marker(), [ciphertext]))
        forged = marker().encode() + ciphertext[len(marker()) :]
        await calls.refused("ScoreEncrypted forged ciphertext", bad, encrypted("breast", [forged]))

        def register(context: bytes, sha256: str = "") -> Callable[[], Any]:
            header = gpb.EvaluationKeysHeader(public_context_length=len(context), public_context_sha256=sha256)
            messages = [gpb.RegisterEvaluationKeysRequest(header=header)]
            messages += [
                gpb.RegisterEvaluationKeysRequest(public_context_chunk=context[i : i + (1 << 20)])
                for i in range(0, len(context), 1 << 20)
            ]
            return lambda: stub.RegisterEvaluationKeys(iter(messages), timeout=TIMEOUT)

        registration = await calls.succeeds("RegisterEvaluationKeys", register(public))
        await calls.refused("RegisterEvaluationKeys forged context", bad, register(marker().encode() + public[64:]))
        await calls.refused("RegisterEvaluationKeys wrong digest", bad, register(public, marker()))

        def registered(digest: str) -> Callable[[], Any]:
            header = gpb.EncryptedScoreHeader(
                score="breast", public_context_sha256=digest, ciphertext_lengths=[len(ciphertext)]
            )
            messages = [
                gpb.ScoreEncryptedRequest(header=header),
                gpb.ScoreEncryptedRequest(ciphertext_chunk=gpb.CiphertextChunk(index=0, data=ciphertext)),
            ]
            return lambda: list(stub.ScoreEncrypted(iter(messages), timeout=TIMEOUT))

        answers = await calls.succeeds("ScoreEncrypted registered", registered(registration.public_context_sha256))
        assert answers[0].summary.variants == len(layout)
        await calls.refused("ScoreEncrypted unknown digest", {bad, grpc.StatusCode.FAILED_PRECONDITION}, registered(marker()))

        await calls.succeeds("GetModelInfo", lambda: reader.GetModelInfo(gpb.GetModelInfoRequest(), timeout=TIMEOUT))
        raw_info = channel.unary_unary(GENOMICS + "GetModelInfo")
        await calls.refused("GetModelInfo unknown field", bad, lambda: raw_info(_unknown_field(marker()), timeout=TIMEOUT))

        sealed = gpb_grpc.GenomicRiskServiceStub(SealedChannel(channel, GENOMICS_SERVICE))
        await calls.succeeds("Sealed AssessVcf", assess(vcf, assessment(sample), sealed))
        await calls.refused("Sealed AssessVcf unknown sample", bad, assess(vcf, assessment(marker()), sealed))
        await calls.succeeds(
            "GetKeyConfigurations", lambda: reader.GetKeyConfigurations(gpb.GetKeyConfigurationsRequest(), timeout=TIMEOUT)
        )

    records = assert_no_marker(services, "genomics", calls, logs, capfd)
    outcomes = _audited_outcomes(records, GENOMICS)
    assert {
        ("AssessVcf", "OK"),
        ("AssessVcf", "INVALID_ARGUMENT"),
        ("AssessVcf", "PERMISSION_DENIED"),
        ("AssessVcfUpload", "OK"),
        ("AssessVcfUpload", "INVALID_ARGUMENT"),
        ("ScoreEncrypted", "OK"),
        ("ScoreEncrypted", "INVALID_ARGUMENT"),
        ("RegisterEvaluationKeys", "OK"),
        ("RegisterEvaluationKeys", "INVALID_ARGUMENT"),
        ("GetScoreLayout", "OK"),
        ("Sealed/AssessVcf", "OK"),
        ("Sealed/AssessVcf", "INVALID_ARGUMENT"),
    } <= outcomes, outcomes


def test_every_rpc_of_every_service_was_called() -> None:
    """Guards the list above: a new RPC must be added to this test."""
    called = {
        TUMOR: {
            "Classify",
            "ClassifyBatch",
            "ClassifyStream",
            "GetModelInfo",
            "GetEncryptionLayout",
            "ClassifyEncrypted",
            "Sealed",
            "GetKeyConfigurations",
        },
        DETERIORATION: {
            "RegisterPatient",
            "RecordObservations",
            "GetLatestRisk",
            "ListRiskHistory",
            "WatchRisk",
            "ScoreObservations",
            "ExportFhir",
            "GetModelInfo",
            "Sealed",
            "GetKeyConfigurations",
        },
        GENOMICS: {
            "ListScores",
            "AssessVcf",
            "AssessVcfUpload",
            "GetScoreLayout",
            "ScoreEncrypted",
            "RegisterEvaluationKeys",
            "GetModelInfo",
            "Sealed",
            "GetKeyConfigurations",
        },
    }
    for module, service in ((tpb, "TumorClassificationService"), (dpb, "DeteriorationService"), (gpb, "GenomicRiskService")):
        descriptor = module.DESCRIPTOR.services_by_name[service]
        assert {m.name for m in descriptor.methods} == called[f"/{descriptor.full_name}/"]
