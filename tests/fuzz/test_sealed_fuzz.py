"""Fuzzing the sealed envelope through a real in-process tumour server (the envelope code is the same for every service).

Envelopes start valid (real HPKE to the service's key) and are then truncated, bit-flipped, re-ordered, given
another key id, sealed to a foreign key, or replaced by random bytes; valid envelopes carry hostile inner
methods and garbage inner bytes. Property: the outer call ends OK, INVALID_ARGUMENT or FAILED_PRECONDITION,
never INTERNAL or UNKNOWN; an opened envelope's sealed status is never INTERNAL or UNKNOWN either and its
INVALID_ARGUMENT names violations; and the server answers a valid sealed call afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from hypothesis import given
from hypothesis import strategies as st

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.tumor.v1 import tumor_pb2 as pb
from clinpred.services.common.model_store import register_package
from clinpred.services.common.sealed import HEADER_BYTES, ResponseOpener, open_response, seal_request
from clinpred.services.common.sealed_messages import sealing_key_of
from clinpred.services.common.sealing_keys import SealingKey, generate_key, init_keyring
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.tumor.service import tumor_mount
from clinpred.services.tumor.settings import TumorSettings
from tests.fuzz.outcomes import TALLY, examples, hostile_text, outcome, print_tally

SERVICE = "/clinpred.tumor.v1.TumorClassificationService/"
TALLIED = "sealed."
ENVELOPE_ACCEPTED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}
Cases = list[tuple[dict[str, float], str]]


@pytest.fixture(scope="module", autouse=True)
def tally() -> Iterator[None]:
    yield
    print_tally(TALLIED)


@pytest.fixture(scope="module")
async def target(tumor_package: ModelPackage, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    register_package(tumor_package)
    keys: Path = tmp_path_factory.mktemp("sealed-fuzz") / "keys"
    init_keyring(keys, datetime.now(UTC))
    server, port = await start_inprocess_server(tumor_mount(TumorSettings(sealing_keys_dir=keys)))
    yield f"127.0.0.1:{port}"
    await server.stop(grace=None)


@pytest.fixture(scope="module")
def channel(target: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(target) as opened:
        yield opened


@pytest.fixture(scope="module")
async def service_key(channel: grpc.Channel) -> SealingKey:
    keys = channel.unary_unary(SERVICE + "GetKeyConfigurations", response_deserializer=pb.GetKeyConfigurationsResponse.FromString)
    # In a thread: the server answers on this event loop.
    answer = await asyncio.to_thread(keys, pb.GetKeyConfigurationsRequest().SerializeToString(), timeout=30)
    return sealing_key_of(next(key for key in answer.keys if key.key_id == answer.current_key_id))


@pytest.fixture(scope="module")
def foreign_key() -> SealingKey:
    return generate_key(datetime.now(UTC) - timedelta(minutes=1)).config


def send(channel: grpc.Channel, envelope: bytes) -> pb.SealedResponse:
    sealed = channel.unary_unary(SERVICE + "Sealed", response_deserializer=pb.SealedResponse.FromString)
    answer: pb.SealedResponse = sealed(pb.SealedRequest(envelope=envelope).SerializeToString(), timeout=30)
    return answer


def checked_envelope_call(channel: grpc.Channel, envelope: bytes, opener: ResponseOpener | None) -> None:
    """The outer call's ending against the property; an answer opened and its sealed status checked too."""
    try:
        answer = send(channel, envelope)
    except grpc.RpcError as error:
        assert outcome(TALLIED + "envelope", error) in ENVELOPE_ACCEPTED, error.details()
        return
    outcome(TALLIED + "envelope", None)
    if opener is not None:
        checked_status(status_pb2.Status.FromString(open_response(opener, answer.envelope)))


def checked_status(status: status_pb2.Status) -> None:
    TALLY[TALLIED + "inner"][code_pb2.Code.Name(status.code)] += 1
    assert status.code not in (code_pb2.INTERNAL, code_pb2.UNKNOWN), status.message
    if status.code == code_pb2.INVALID_ARGUMENT:
        assert any(detail.Is(error_details_pb2.BadRequest.DESCRIPTOR) for detail in status.details), status.message


def classify_bytes(cases: Cases) -> bytes:
    return pb.ClassifyRequest(tumor_case=pb.TumorCase(case_id="ok", features=cases[0][0])).SerializeToString()


async def serves_a_valid_sealed_call(channel: grpc.Channel, key: SealingKey, cases: Cases) -> None:
    envelope, opener = seal_request(key, SERVICE + "Classify", classify_bytes(cases), datetime.now(UTC))
    answer = await asyncio.to_thread(send, channel, envelope)
    status = status_pb2.Status.FromString(open_response(opener, answer.envelope))
    assert status.code == code_pb2.OK
    response = pb.ClassifyResponse()
    status.details[0].Unpack(response)
    assert response.classification.label in ("benign", "malignant")


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


@examples(60)
@given(data=st.data())
async def test_fuzz_mangled_envelopes(
    channel: grpc.Channel, service_key: SealingKey, foreign_key: SealingKey, wdbc_cases: Cases, data: st.DataObject
) -> None:
    envelope, _ = seal_request(service_key, SERVICE + "Classify", classify_bytes(wdbc_cases), datetime.now(UTC))
    foreign, _ = seal_request(foreign_key, SERVICE + "Classify", classify_bytes(wdbc_cases), datetime.now(UTC))
    hostile = data.draw(st.one_of(mangled(envelope, foreign), st.just(foreign)))
    await asyncio.to_thread(checked_envelope_call, channel, hostile, None)
    await serves_a_valid_sealed_call(channel, service_key, wdbc_cases)


inner_methods = st.one_of(
    st.sampled_from([f"{SERVICE}{name}" for name in ("Classify", "ClassifyBatch", "ClassifyStream", "GetModelInfo", "Sealed")]),
    st.sampled_from(["/clinpred.genomics.v1.GenomicRiskService/AssessVcf", "/grpc.health.v1.Health/Check"]),
    hostile_text.map(lambda text: f"{SERVICE}X{''.join(c for c in text if c.isascii() and c.isalnum())[:150]}"),
)


@examples(60)
@given(method=inner_methods, inner=st.one_of(st.binary(max_size=300), st.just(b"")), skew=st.integers(-400, 400))
async def test_fuzz_inner_requests(
    channel: grpc.Channel, service_key: SealingKey, wdbc_cases: Cases, method: str, inner: bytes, skew: int
) -> None:
    envelope, opener = seal_request(service_key, method, inner, datetime.now(UTC) + timedelta(seconds=skew))
    await asyncio.to_thread(checked_envelope_call, channel, envelope, opener)
    await serves_a_valid_sealed_call(channel, service_key, wdbc_cases)
