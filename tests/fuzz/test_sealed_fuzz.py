"""Fuzzing the sealed envelope and the key configurations through real in-process servers of all three services.

Envelopes start valid (real HPKE to the service's key) and are then truncated, bit-flipped, re-ordered, given
another key id, sealed to a foreign key, or replaced by random bytes; valid envelopes carry hostile inner
methods and garbage inner bytes to the service's own methods (deterioration's reach its SQLite store, and its
replay guard is a table there). Property: the outer call ends OK, INVALID_ARGUMENT or FAILED_PRECONDITION,
never INTERNAL or UNKNOWN; an opened envelope's sealed status is never INTERNAL or UNKNOWN either and its
INVALID_ARGUMENT names violations; and the server answers a valid sealed call afterwards.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from hypothesis import given
from hypothesis import strategies as st

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.deterioration.v1 import deterioration_pb2
from clinpred.services.api.genomics.v1 import genomics_pb2
from clinpred.services.api.tumor.v1 import tumor_pb2
from clinpred.services.common.model_store import register_package
from clinpred.services.common.sealed import HEADER_BYTES, ResponseOpener, open_response, seal_request
from clinpred.services.common.sealed_messages import sealing_key_of
from clinpred.services.common.sealing_keys import SealingKey, generate_key, init_keyring
from clinpred.services.common.serving import ServiceMount, start_inprocess_server
from clinpred.services.deterioration.service import deterioration_mount
from clinpred.services.deterioration.settings import DeteriorationSettings
from clinpred.services.genomics.service import genomics_mount
from clinpred.services.genomics.settings import GenomicsSettings
from clinpred.services.tumor.service import tumor_mount
from clinpred.services.tumor.settings import TumorSettings
from tests.fuzz.outcomes import TALLY, examples, hostile_text, outcome, print_tally, raw_tail

TALLIED = "sealed."
ENVELOPE_ACCEPTED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}


@dataclass(frozen=True)
class SealedTarget:
    """One running service: where it listens, its full service name, its messages and its unary methods."""

    name: str
    address: str
    service: str  # "/package.Service/"
    pb: ModuleType
    methods: tuple[str, ...]  # unary methods a sealed envelope may carry

    def tallied(self, what: str) -> str:
        return f"{TALLIED}{self.name}.{what}"


UNARY_METHODS = {
    "tumor": ("Classify", "ClassifyBatch", "GetModelInfo", "GetEncryptionLayout", "ClassifyEncrypted"),
    "deterioration": (
        "RegisterPatient", "RecordObservations", "GetLatestRisk", "ListRiskHistory", "ScoreObservations", "ExportFhir",
        "GetModelInfo",
    ),
    "genomics": ("ListScores", "AssessVcf", "GetScoreLayout", "GetModelInfo"),
}
SERVICES = {
    "tumor": ("/clinpred.tumor.v1.TumorClassificationService/", tumor_pb2),
    "deterioration": ("/clinpred.deterioration.v1.DeteriorationService/", deterioration_pb2),
    "genomics": ("/clinpred.genomics.v1.GenomicRiskService/", genomics_pb2),
}


@pytest.fixture(scope="module", autouse=True)
def tally() -> Iterator[None]:
    yield
    print_tally(TALLIED)


def _mount(name: str, keys: Path, request: pytest.FixtureRequest, database: Path) -> ServiceMount:
    if name == "tumor":
        register_package(request.getfixturevalue("tumor_package"))
        return tumor_mount(TumorSettings(sealing_keys_dir=keys))
    if name == "deterioration":
        request.getfixturevalue("deterioration_package")
        return deterioration_mount(DeteriorationSettings(database_url=f"sqlite:///{database}", sealing_keys_dir=keys))
    breast: ModelPackage = request.getfixturevalue("breast_package")
    register_package(breast)
    return genomics_mount(GenomicsSettings(scoring_dir=request.getfixturevalue("scoring_dir"), sealing_keys_dir=keys))


@pytest.fixture(scope="module", params=list(SERVICES))
async def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SealedTarget]:
    name = request.param
    keys: Path = tmp_path_factory.mktemp(f"sealed-fuzz-{name}") / "keys"
    init_keyring(keys, datetime.now(UTC))
    with tempfile.TemporaryDirectory() as folder:
        server, port = await start_inprocess_server(_mount(name, keys, request, Path(folder) / "risk.db"))
        service, module = SERVICES[name]
        yield SealedTarget(name, f"127.0.0.1:{port}", service, module, UNARY_METHODS[name])
        await server.stop(grace=None)


@pytest.fixture(scope="module")
def channel(target: SealedTarget) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(target.address) as opened:
        yield opened


@pytest.fixture(scope="module")
async def service_key(channel: grpc.Channel, target: SealedTarget) -> SealingKey:
    keys = channel.unary_unary(
        target.service + "GetKeyConfigurations", response_deserializer=target.pb.GetKeyConfigurationsResponse.FromString
    )
    # In a thread: the server answers on this event loop.
    answer = await asyncio.to_thread(keys, target.pb.GetKeyConfigurationsRequest().SerializeToString(), timeout=30)
    return sealing_key_of(next(key for key in answer.keys if key.key_id == answer.current_key_id))


@pytest.fixture(scope="module")
def foreign_key() -> SealingKey:
    return generate_key(datetime.now(UTC) - timedelta(minutes=1)).config


def send(channel: grpc.Channel, target: SealedTarget, envelope: bytes) -> object:
    sealed = channel.unary_unary(target.service + "Sealed", response_deserializer=target.pb.SealedResponse.FromString)
    return sealed(target.pb.SealedRequest(envelope=envelope).SerializeToString(), timeout=30)


def checked_envelope_call(channel: grpc.Channel, target: SealedTarget, envelope: bytes, opener: ResponseOpener | None) -> None:
    """The outer call's ending against the property; an answer opened and its sealed status checked too."""
    try:
        answer = send(channel, target, envelope)
    except grpc.RpcError as error:
        assert outcome(target.tallied("envelope"), error) in ENVELOPE_ACCEPTED, error.details()
        return
    outcome(target.tallied("envelope"), None)
    if opener is not None:
        checked_status(target, status_pb2.Status.FromString(open_response(opener, answer.envelope)))  # type: ignore[attr-defined]


def checked_status(target: SealedTarget, status: status_pb2.Status) -> None:
    TALLY[target.tallied("inner")][code_pb2.Code.Name(status.code)] += 1
    assert status.code not in (code_pb2.INTERNAL, code_pb2.UNKNOWN), status.message
    if status.code == code_pb2.INVALID_ARGUMENT:
        assert any(detail.Is(error_details_pb2.BadRequest.DESCRIPTOR) for detail in status.details), status.message


def model_info_bytes(target: SealedTarget) -> bytes:
    return bytes(target.pb.GetModelInfoRequest().SerializeToString())


async def serves_a_valid_sealed_call(channel: grpc.Channel, target: SealedTarget, key: SealingKey) -> None:
    envelope, opener = seal_request(key, target.service + "GetModelInfo", model_info_bytes(target), datetime.now(UTC))
    answer = await asyncio.to_thread(send, channel, target, envelope)
    status = status_pb2.Status.FromString(open_response(opener, answer.envelope))  # type: ignore[attr-defined]
    assert status.code == code_pb2.OK, status.message
    response = target.pb.GetModelInfoResponse()
    status.details[0].Unpack(response)
    # Genomics lists every model it serves; the others describe their one model.
    models = [info.model for info in response.models] if target.name == "genomics" else [response.model]
    assert models and all(model.name for model in models)


@st.composite
def mangled(draw: st.DrawFn, envelope: bytes, foreign: bytes) -> bytes:
    kind = draw(st.sampled_from(["truncate", "flip", "reorder", "key id", "foreign key id", "random", "extend"]))
    if kind == "truncate":
        return envelope[: draw(st.integers(0, len(envelope) - 1))]
    if kind == "flip":
        data = bytearray(envelope)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
        return bytes(data)
    if kind == "reorder":
        cut = sorted(draw(st.lists(st.integers(1, len(envelope) - 1), min_size=2, max_size=2, unique=True)))
        return envelope[: cut[0]] + envelope[cut[1] :] + envelope[cut[0] : cut[1]]
    if kind == "key id":
        return envelope[:1] + draw(st.binary(min_size=8, max_size=8)) + envelope[9:]
    if kind == "foreign key id":
        return envelope[:1] + foreign[1:9] + envelope[9:]
    if kind == "extend":
        return envelope + draw(st.binary(min_size=1, max_size=64))
    return draw(st.binary(max_size=HEADER_BYTES + 1200))


# The Sealed RPC's examples are shared between its two tests: half mangled envelopes, half hostile inner calls.
@examples(60, share=0.5)
@given(data=st.data())
async def test_fuzz_mangled_envelopes(
    channel: grpc.Channel, target: SealedTarget, service_key: SealingKey, foreign_key: SealingKey, data: st.DataObject
) -> None:
    method, inner = target.service + "GetModelInfo", model_info_bytes(target)
    envelope, _ = seal_request(service_key, method, inner, datetime.now(UTC))
    foreign, _ = seal_request(foreign_key, method, inner, datetime.now(UTC))
    hostile = data.draw(st.one_of(mangled(envelope, foreign), st.just(foreign)))
    await asyncio.to_thread(checked_envelope_call, channel, target, hostile, None)
    await serves_a_valid_sealed_call(channel, target, service_key)


def inner_methods(target: SealedTarget) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from([f"{target.service}{name}" for name in (*target.methods, "Sealed", "GetKeyConfigurations")]),
        st.sampled_from(["/clinpred.genomics.v1.GenomicRiskService/AssessVcf", "/grpc.health.v1.Health/Check"]),
        hostile_text.map(lambda text: f"{target.service}X{''.join(c for c in text if c.isascii() and c.isalnum())[:150]}"),
    )


@examples(60, share=0.5)
@given(data=st.data())
async def test_fuzz_inner_requests(
    channel: grpc.Channel, target: SealedTarget, service_key: SealingKey, data: st.DataObject
) -> None:
    method = data.draw(inner_methods(target))
    inner = data.draw(st.one_of(st.binary(max_size=300), st.just(b"")))
    skew = data.draw(st.integers(-400, 400))
    envelope, opener = seal_request(service_key, method, inner, datetime.now(UTC) + timedelta(seconds=skew))
    await asyncio.to_thread(checked_envelope_call, channel, target, envelope, opener)
    await serves_a_valid_sealed_call(channel, target, service_key)


@examples(30)
@given(raw=raw_tail())
async def test_fuzz_get_key_configurations(
    channel: grpc.Channel, target: SealedTarget, service_key: SealingKey, raw: bytes
) -> None:
    keys = channel.unary_unary(target.service + "GetKeyConfigurations")

    def ask() -> None:
        try:
            keys(target.pb.GetKeyConfigurationsRequest().SerializeToString() + raw, timeout=30)
        except grpc.RpcError as error:
            outcome(target.tallied("GetKeyConfigurations"), error)
            return
        outcome(target.tallied("GetKeyConfigurations"), None)

    await asyncio.to_thread(ask)
    await serves_a_valid_sealed_call(channel, target, service_key)
