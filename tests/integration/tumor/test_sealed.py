"""Sealed calls to the tumour service: real HPKE envelopes over real gRPC, answered as plain calls are."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.rpc import code_pb2

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.model_store import register_package
from clinpred.services.common.sealed_channel import SealedStreamError
from clinpred.services.common.sealing_keys import rotate_keyring
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.tumor.client import TumorClient
from clinpred.services.tumor.service import tumor_mount
from clinpred.services.tumor.settings import TumorSettings
from tests.integration.sealed_support import RawSealed, audit_records, error_of, new_keyring, raised
from tests.support import field_violations

SERVICE = "/clinpred.tumor.v1.TumorClassificationService/"
Cases = list[tuple[dict[str, float], str]]


@dataclass(frozen=True)
class Served:
    target: str
    keys: Path
    audit: Path


async def _serve(package: ModelPackage, folder: Path, **settings: object) -> tuple[grpc.aio.Server, Served]:
    register_package(package)
    keys, audit = new_keyring(folder / "keys"), folder / "audit"
    mount = tumor_mount(TumorSettings(sealing_keys_dir=keys, audit_dir=audit, **settings))  # type: ignore[arg-type]
    server, port = await start_inprocess_server(mount)
    return server, Served(f"127.0.0.1:{port}", keys, audit)


@pytest.fixture(scope="module")
async def served(tumor_package: ModelPackage, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    server, served = await _serve(tumor_package, tmp_path_factory.mktemp("sealed-tumor"))
    yield served
    await server.stop(grace=None)


def raw(target: str) -> RawSealed:
    return RawSealed(grpc.insecure_channel(target), tumor_pb2_grpc.TumorClassificationServiceStub, tumor_pb2)


def classify_request(features: dict[str, float], case_id: str = "case-1") -> tumor_pb2.ClassifyRequest:
    return tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(case_id=case_id, features=features))


async def test_sealed_answers_equal_plain_answers(served: Served, wdbc_cases: Cases) -> None:
    def both() -> tuple[list[object], list[object]]:
        answers: list[list[object]] = []
        for sealed in (False, True):
            with TumorClient(served.target, sealed=sealed) as client:
                batch = [(f"case-{i}", features) for i, (features, _) in enumerate(wdbc_cases[:20])]
                one = client.classify(wdbc_cases[0][0], case_id="one")
                answers.append([one, client.classify_batch(batch), client.model_info()])
        return answers[0], answers[1]

    plain, sealed = await asyncio.to_thread(both)
    assert sealed == plain
    assert len(sealed[1]) == 20  # type: ignore[arg-type]


async def test_inner_violations_arrive_sealed_and_equal_the_plain_ones(served: Served, wdbc_cases: Cases) -> None:
    features = dict(wdbc_cases[0][0])
    del features["worst_area"]
    features["mean_radius"] = float("nan")

    def both() -> tuple[object, object]:
        errors = []
        for sealed in (False, True):
            with TumorClient(served.target, sealed=sealed) as client:
                errors.append(raised(lambda: client.classify(features)))
        return errors[0], errors[1]

    plain, sealed = await asyncio.to_thread(both)
    assert sealed == plain
    assert plain.code == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert len(plain.status.details) >= 2  # type: ignore[attr-defined]  # BadRequest and ErrorInfo


async def test_the_sealed_error_reads_like_a_plain_one_through_grpc_status(served: Served, wdbc_cases: Cases) -> None:
    features = dict(wdbc_cases[0][0], tumour_colour=3.0)

    def sealed_error() -> grpc.RpcError:
        with TumorClient(served.target, sealed=True) as client:
            try:
                client.classify(features)
            except grpc.RpcError as error:
                return error
        raise AssertionError("accepted an unknown feature")

    error = await asyncio.to_thread(sealed_error)
    violations = field_violations(error)
    assert any("unknown feature name" in reason for reason in violations.values())


async def test_the_audit_record_names_the_inner_method_and_outcome(served: Served, wdbc_cases: Cases) -> None:
    features = dict(wdbc_cases[0][0])

    def calls() -> None:
        with TumorClient(served.target, sealed=True) as client:
            client.classify(features)
            raised(lambda: client.classify({}))

    before = len(audit_records(served.audit))
    await asyncio.to_thread(calls)
    new = [record.entry for record in audit_records(served.audit)[before:]]
    carried = [(entry.method, entry.outcome) for entry in new if entry.method.startswith(SERVICE + "Sealed")]
    assert (SERVICE + "Sealed/Classify", "OK") in carried
    assert (SERVICE + "Sealed/Classify", "INVALID_ARGUMENT") in carried
    assert all(entry.model.startswith("wdbc") for entry in new if entry.outcome == "OK" and entry.method.endswith("Classify"))


async def test_a_replayed_envelope_is_refused_in_clear_and_the_first_stands(served: Served, wdbc_cases: Cases) -> None:
    def replay() -> tuple[int, object]:
        sender = raw(served.target)
        envelope, opener = sender.seal(SERVICE + "Classify", classify_request(wdbc_cases[0][0]))
        first = sender.status(envelope, opener).code
        return first, raised(lambda: sender.send(envelope))

    first, second = await asyncio.to_thread(replay)
    assert first == code_pb2.OK
    assert second.code == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "replay" in second.details  # type: ignore[attr-defined]


async def test_an_envelope_outside_the_window_is_refused(served: Served, wdbc_cases: Cases) -> None:
    def stale() -> object:
        sender = raw(served.target)
        envelope, _ = sender.seal(
            SERVICE + "Classify", classify_request(wdbc_cases[0][0]), now=datetime.now(UTC) - timedelta(minutes=6)
        )
        return raised(lambda: sender.send(envelope))

    refused = await asyncio.to_thread(stale)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "seal it again now" in refused.details  # type: ignore[attr-defined]


async def test_streams_and_unknown_methods_are_refused_inside_the_envelope(served: Served, wdbc_cases: Cases) -> None:
    def refusals() -> tuple[object, object, object]:
        sender = raw(served.target)
        stream = sender.status(*sender.seal(SERVICE + "ClassifyStream", b""))
        other = sender.status(*sender.seal("/clinpred.genomics.v1.GenomicRiskService/ListScores", b""))
        garbage = sender.status(*sender.seal(SERVICE + "Classify", b"\xff\xff\xff"))
        return stream, other, garbage

    stream, other, garbage = await asyncio.to_thread(refusals)
    for status in (stream, other, garbage):
        assert status.code == code_pb2.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "seal ClassifyBatch instead" in str(stream)
    assert "sealed.method" in str(other)
    assert "sealed.request" in str(garbage)
    with TumorClient(served.target, sealed=True) as client, pytest.raises(SealedStreamError, match="ClassifyStream streams"):
        list(client.classify_stream([("x", wdbc_cases[0][0])]))


async def test_rotation_keeps_the_old_key_in_grace_then_names_the_current_one(
    tumor_package: ModelPackage, tmp_path: Path, wdbc_cases: Cases
) -> None:
    server, served = await _serve(tumor_package, tmp_path)
    try:
        sender = raw(served.target)
        old = await asyncio.to_thread(sender.key)
        rotate_keyring(served.keys, datetime.now(UTC), timedelta(hours=1))
        await asyncio.sleep(1.2)  # the service looks at its keyring folder at most once a second

        def in_grace() -> tuple[int, str]:
            envelope, opener = sender.seal(SERVICE + "Classify", classify_request(wdbc_cases[0][0]), key=old)
            return sender.status(envelope, opener).code, sender.key().key_id

        code, current = await asyncio.to_thread(in_grace)
        assert code == code_pb2.OK and current != old.key_id

        # A second rotation an hour ago with a 30-minute grace: every earlier key retired half an hour ago.
        newest = rotate_keyring(served.keys, datetime.now(UTC) - timedelta(hours=1), timedelta(minutes=30))
        time.sleep(1.2)

        def after_grace() -> tuple[object, object]:
            envelope, _ = sender.seal(SERVICE + "Classify", classify_request(wdbc_cases[0][0]), key=old)
            refused = raised(lambda: sender.send(envelope))
            # The client library seals to the key it fetched; refused, it fetches the configurations again.
            with TumorClient(served.target, sealed=True, sealing_key=None) as client:
                return refused, client.classify(wdbc_cases[0][0]).label

        refused, label = await asyncio.to_thread(after_grace)
        assert refused.code == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
        assert newest.key_id in refused.details  # type: ignore[attr-defined]
        assert label in ("benign", "malignant")
    finally:
        await server.stop(grace=None)


async def test_the_client_refetches_the_key_after_a_rotation(
    tumor_package: ModelPackage, tmp_path: Path, wdbc_cases: Cases
) -> None:
    server, served = await _serve(tumor_package, tmp_path)
    try:
        def calls() -> tuple[str, str]:
            with TumorClient(served.target, sealed=True) as client:
                first = client.classify(wdbc_cases[0][0]).label
                rotate_keyring(served.keys, datetime.now(UTC) - timedelta(hours=1), timedelta(minutes=1))
                time.sleep(1.2)
                return first, client.classify(wdbc_cases[0][0]).label

        first, second = await asyncio.to_thread(calls)
        assert first == second
    finally:
        await server.stop(grace=None)


async def test_an_inner_method_the_policy_does_not_grant_is_denied_as_a_plain_call(
    tumor_package: ModelPackage, tmp_path: Path, wdbc_cases: Cases
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('version = 1\n[[grants]]\ntenant = "default"\nclients = ["*"]\nscopes = ["clinpred/model.read"]\n')
    server, served = await _serve(tumor_package, tmp_path, policy_file=policy)
    try:
        def both() -> tuple[object, object, str]:
            errors = []
            for sealed in (False, True):
                with TumorClient(served.target, sealed=sealed) as client:
                    errors.append(raised(lambda: client.classify(wdbc_cases[0][0])))
            with TumorClient(served.target, sealed=True) as client:
                name = client.model_info().model.name
            return errors[0], errors[1], name

        plain, sealed, name = await asyncio.to_thread(both)
        assert plain.code == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
        assert sealed == plain
        assert name == tumor_package.identity.name
        denied = [r.entry for r in audit_records(served.audit) if r.entry.method == SERVICE + "Sealed/Classify"]
        assert [entry.outcome for entry in denied] == ["PERMISSION_DENIED"]
    finally:
        await server.stop(grace=None)


async def test_a_service_without_keys_says_how_to_make_them(tumor_target: str, wdbc_cases: Cases) -> None:
    def refused() -> object:
        with TumorClient(tumor_target, sealed=True) as client:
            return raised(lambda: client.classify(wdbc_cases[0][0]))

    error = await asyncio.to_thread(refused)
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert "clinpred keys init DIR" in error.details and "CLINPRED_TUMOR_SEALING_KEYS_DIR" in error.details  # type: ignore[attr-defined]


def test_plain_errors_compare_by_code_details_and_rich_status() -> None:
    """The helper the tests above compare with: two errors differing in details are not equal."""

    class Failed(grpc.RpcError, grpc.Call):  # type: ignore[misc]
        def __init__(self, details: str) -> None:
            self._details = details

        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.INVALID_ARGUMENT

        def details(self) -> str:
            return self._details

        def trailing_metadata(self) -> tuple[()]:
            return ()

    assert error_of(Failed("a")) != error_of(Failed("b"))
