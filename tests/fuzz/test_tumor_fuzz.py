"""Fuzzing every RPC of the tumour service through a real in-process server.

tests/integration/tumor/test_bad_input.py already fuzzes Classify's feature maps; this adds batches,
streams, GetModelInfo, hostile case ids, unknown fields appended as raw bytes, and real CKKS contexts and
ciphertexts cut, flipped, mixed and multiplied for ClassifyEncrypted and GetEncryptionLayout (whose
only outcomes may be OK, INVALID_ARGUMENT and FAILED_PRECONDITION). Property: never
INTERNAL or UNKNOWN; INVALID_ARGUMENT carries BadRequest violations; the server answers a valid call
afterwards. Plus one regression test per problem an adversarial probe found.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinpred.services.api.tumor.v1 import tumor_pb2 as pb
from clinpred.services.tumor.codec import MAX_CASE_ID_LENGTH
from tests.fuzz.outcomes import call, examples, hostile_text, outcome, print_tally, raw_tail, unknown_fields
from tests.integration.tumor.conftest import MAX_BATCH
from tests.support import field_violations

SERVICE = "/clinpred.tumor.v1.TumorClassificationService/"
TALLIED = "tumor."
Cases = list[tuple[dict[str, float], str]]


@pytest.fixture(scope="module", autouse=True)
def tally() -> Iterator[None]:
    yield
    print_tally(TALLIED)


@pytest.fixture(scope="module")
def channel(tumor_target: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(tumor_target) as opened:
        yield opened


_responses: dict[str, Any] = {
    "Classify": pb.ClassifyResponse,
    "ClassifyBatch": pb.ClassifyBatchResponse,
    "GetModelInfo": pb.GetModelInfoResponse,
    "ClassifyStream": pb.ClassifyStreamResponse,
    "GetEncryptionLayout": pb.GetEncryptionLayoutResponse,
    "ClassifyEncrypted": pb.ClassifyEncryptedResponse,
}


def unary(channel: grpc.Channel, method: str) -> Any:
    return channel.unary_unary(SERVICE + method, response_deserializer=_responses[method].FromString)


async def in_thread(function: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(function)


async def serves_a_valid_call(channel: grpc.Channel, cases: Cases) -> None:
    request = pb.ClassifyRequest(tumor_case=pb.TumorCase(case_id="ok", features=cases[0][0])).SerializeToString()
    answer = await in_thread(lambda: unary(channel, "Classify")(request, timeout=30))
    assert answer.classification.label in ("benign", "malignant")


hostile_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e308, -1e-308]))


@st.composite
def hostile_case(draw: st.DrawFn, cases: Cases) -> pb.TumorCase:
    features = dict(draw(st.sampled_from(cases[:20]))[0])
    for _ in range(draw(st.integers(0, 3))):
        change = draw(st.sampled_from(["value", "drop", "unknown"]))
        if change == "value":
            features[draw(st.sampled_from(sorted(features)))] = draw(hostile_values)
        elif change == "drop" and features:
            del features[draw(st.sampled_from(sorted(features)))]
        else:
            features[draw(hostile_text)] = draw(hostile_values)
    case_id = draw(st.one_of(st.just("case-1"), hostile_text))
    return pb.TumorCase(case_id=case_id, features=features)


@examples(80)
@given(data=st.data(), tail=raw_tail())
async def test_fuzz_classify(channel: grpc.Channel, wdbc_cases: Cases, data: st.DataObject, tail: bytes) -> None:
    raw = pb.ClassifyRequest(tumor_case=data.draw(hostile_case(wdbc_cases))).SerializeToString() + tail
    await in_thread(lambda: call(TALLIED + "Classify", lambda: unary(channel, "Classify")(raw, timeout=30)))
    await serves_a_valid_call(channel, wdbc_cases)


@examples(40)
@given(data=st.data(), tail=raw_tail())
async def test_fuzz_classify_batch(channel: grpc.Channel, wdbc_cases: Cases, data: st.DataObject, tail: bytes) -> None:
    size = data.draw(st.one_of(st.integers(0, 5), st.integers(MAX_BATCH - 1, MAX_BATCH + 2)))
    cases = [data.draw(hostile_case(wdbc_cases)) for _ in range(size)]
    raw = pb.ClassifyBatchRequest(cases=cases).SerializeToString() + tail
    await in_thread(lambda: call(TALLIED + "ClassifyBatch", lambda: unary(channel, "ClassifyBatch")(raw, timeout=30)))
    await serves_a_valid_call(channel, wdbc_cases)


@examples(60)
@given(data=st.data())
async def test_fuzz_classify_stream(channel: grpc.Channel, wdbc_cases: Cases, data: st.DataObject) -> None:
    messages = []
    for _ in range(data.draw(st.integers(0, 6))):
        kind = data.draw(st.sampled_from(["valid", "valid", "hostile", "unknown field", "garbage"]))
        if kind == "valid":
            case = pb.TumorCase(case_id="v", features=data.draw(st.sampled_from(wdbc_cases[:20]))[0])
        else:
            case = data.draw(hostile_case(wdbc_cases))
        raw = pb.ClassifyStreamRequest(tumor_case=case).SerializeToString()
        if kind == "unknown field":
            raw += data.draw(unknown_fields(2))
        elif kind == "garbage":
            raw = data.draw(st.binary(min_size=1, max_size=40))
        messages.append(raw)
    method = channel.stream_stream(SERVICE + "ClassifyStream", response_deserializer=pb.ClassifyStreamResponse.FromString)

    def run() -> None:
        answers = []
        try:
            for answer in method(iter(messages), timeout=30):
                answers.append(answer)
        except grpc.RpcError as error:
            code = outcome(TALLIED + "ClassifyStream", error)
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                # The stream ends at the first bad item; the answers before it stand.
                assert all(f.startswith(f"stream[{len(answers)}]") for f in field_violations(error)), field_violations(error)
            return
        outcome(TALLIED + "ClassifyStream", None)
        assert len(answers) == len(messages)

    await in_thread(run)
    await serves_a_valid_call(channel, wdbc_cases)


@examples(30)
@given(raw=st.one_of(unknown_fields(1), st.binary(max_size=64)))
async def test_fuzz_get_model_info(channel: grpc.Channel, wdbc_cases: Cases, raw: bytes) -> None:
    await in_thread(lambda: call(TALLIED + "GetModelInfo", lambda: unary(channel, "GetModelInfo")(raw, timeout=30)))
    await serves_a_valid_call(channel, wdbc_cases)


ENCRYPTED_OUTCOMES = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}


@pytest.fixture(scope="module")
async def real_encrypted(channel: grpc.Channel, wdbc_cases: Cases) -> tuple[bytes, bytes, bytes]:
    """A keyless context, a ciphertext of 5 cases under it, and one under other parameters (degree 8192)."""
    import numpy as np

    from clinpred.pilots.tumor.encrypted import create_client_context, encode_cases, encrypt_cases, public_context_bytes
    from clinpred.services.tumor.codec import decode_encrypted_model

    layout_message = await in_thread(lambda: unary(channel, "GetEncryptionLayout")(b"", timeout=30))
    info = await in_thread(lambda: unary(channel, "GetModelInfo")(b"", timeout=30))
    layout = decode_encrypted_model(layout_message, info).layout
    rows = np.array([list(features.values()) for features, _ in wdbc_cases[:5]])
    client = create_client_context()
    (ciphertext,) = encrypt_cases(client, layout, encode_cases(layout, rows)).ciphertexts
    (other,) = encrypt_cases(create_client_context(8192, (60, 40, 60), 40), layout, encode_cases(layout, rows)).ciphertexts
    return public_context_bytes(client), ciphertext, other


def _flipped(blob: bytes, at: int, mask: int) -> bytes:
    return blob[:at] + bytes([blob[at] ^ mask]) + blob[at + 1 :]


@examples(12)
@given(data=st.data())
async def test_fuzz_classify_encrypted(
    channel: grpc.Channel, wdbc_cases: Cases, real_encrypted: tuple[bytes, bytes, bytes], data: st.DataObject
) -> None:
    context, ciphertext, other = real_encrypted
    kind = data.draw(
        st.sampled_from(
            [
                "random context",
                "cut context",
                "flipped context",
                "random ciphertext",
                "cut ciphertext",
                "flipped ciphertext",
                "other parameters",
                "count",
                "tail",
            ]
        )
    )
    contexts, ciphertexts = context, [ciphertext]
    if kind == "random context":
        contexts = data.draw(st.binary(max_size=256))
    elif kind == "cut context":
        contexts = context[: data.draw(st.integers(0, len(context) - 1))]
    elif kind == "flipped context":
        contexts = _flipped(context, data.draw(st.integers(0, len(context) - 1)), data.draw(st.integers(1, 255)))
    elif kind == "random ciphertext":
        ciphertexts = [data.draw(st.binary(max_size=256))]
    elif kind == "cut ciphertext":
        ciphertexts = [ciphertext[: data.draw(st.integers(0, len(ciphertext) - 1))]]
    elif kind == "flipped ciphertext":
        ciphertexts = [_flipped(ciphertext, data.draw(st.integers(0, len(ciphertext) - 1)), data.draw(st.integers(1, 255)))]
    elif kind == "other parameters":
        ciphertexts = data.draw(st.permutations([ciphertext, other]))
    elif kind == "count":
        ciphertexts = [ciphertext] * data.draw(st.integers(0, 18))
    raw = pb.ClassifyEncryptedRequest(public_context=contexts, ciphertexts=ciphertexts).SerializeToString()
    if kind == "tail":
        raw += data.draw(unknown_fields(3))
    method = unary(channel, "ClassifyEncrypted")
    code = await in_thread(lambda: call(TALLIED + "ClassifyEncrypted", lambda: method(raw, timeout=60)))
    assert code in ENCRYPTED_OUTCOMES, (kind, code)
    await serves_a_valid_call(channel, wdbc_cases)


@examples(20)
@given(raw=st.one_of(unknown_fields(1), st.binary(max_size=64)))
async def test_fuzz_get_encryption_layout(channel: grpc.Channel, wdbc_cases: Cases, raw: bytes) -> None:
    code = await in_thread(
        lambda: call(TALLIED + "GetEncryptionLayout", lambda: unary(channel, "GetEncryptionLayout")(raw, timeout=30))
    )
    assert code in ENCRYPTED_OUTCOMES, code
    await serves_a_valid_call(channel, wdbc_cases)


async def test_after_fuzzing_encrypted_classification_still_works(
    channel: grpc.Channel, real_encrypted: tuple[bytes, bytes, bytes]
) -> None:
    request = pb.ClassifyEncryptedRequest(public_context=real_encrypted[0], ciphertexts=[real_encrypted[1]])
    answer = await in_thread(lambda: unary(channel, "ClassifyEncrypted")(request.SerializeToString(), timeout=60))
    assert len(answer.products) == 1 and len(answer.model.sha256) == 64


# --- regressions ------------------------------------------------------------------------------------


def refused(invoke: Callable[[], object]) -> dict[str, str]:
    with pytest.raises(grpc.RpcError) as caught:
        invoke()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return field_violations(caught.value)


async def test_get_model_info_refuses_unknown_fields(channel: grpc.Channel) -> None:
    violations = await in_thread(lambda: refused(lambda: unary(channel, "GetModelInfo")(b"\x78\x01", timeout=30)))
    assert violations == {"request": "unknown field number 15: not part of this API version"}
    answer = await in_thread(lambda: unary(channel, "GetModelInfo")(b"", timeout=30))
    assert len(answer.features) == 30


async def test_unknown_feature_names_are_not_echoed(channel: grpc.Channel, wdbc_cases: Cases) -> None:
    secret = "SECRET-FEATURE-4711"
    features = dict(wdbc_cases[0][0], **{secret: 1.0})
    del features["mean_radius"]
    request = pb.ClassifyBatchRequest(cases=[pb.TumorCase(features=wdbc_cases[0][0]), pb.TumorCase(features=features)])
    with pytest.raises(grpc.RpcError) as caught:
        await in_thread(lambda: unary(channel, "ClassifyBatch")(request.SerializeToString(), timeout=30))
    violations = field_violations(caught.value)
    index = sorted(features).index(secret)
    assert violations[f"cases[1].features[{index}]"].startswith("unknown feature name")
    assert "missing: mean_radius" in violations["cases[1].features"]
    assert secret not in str(violations) and secret not in (caught.value.details() or "")


async def test_case_ids_have_a_length_limit_and_no_control_characters(channel: grpc.Channel, wdbc_cases: Cases) -> None:
    features = wdbc_cases[0][0]
    cases = [
        pb.TumorCase(case_id="c" * (MAX_CASE_ID_LENGTH + 1), features=features),
        pb.TumorCase(case_id="a\x00b", features=features),
        pb.TumorCase(case_id="fine-é-😀", features=features),
    ]
    request = pb.ClassifyBatchRequest(cases=cases).SerializeToString()
    violations = await in_thread(lambda: refused(lambda: unary(channel, "ClassifyBatch")(request, timeout=30)))
    assert violations == {
        "cases[0].case_id": f"must be at most {MAX_CASE_ID_LENGTH} characters",
        "cases[1].case_id": "must not contain control or invisible characters",
    }


async def test_values_that_overflow_the_models_float32_are_refused(channel: grpc.Channel, wdbc_cases: Cases) -> None:
    """Found by the fuzzing: 1e308 passed (no upper bound on a radius) and reached the model as infinity."""
    request = pb.ClassifyRequest(tumor_case=pb.TumorCase(features=dict(wdbc_cases[0][0], mean_radius=1e308)))
    violations = await in_thread(lambda: refused(lambda: unary(channel, "Classify")(request.SerializeToString(), timeout=30)))
    assert violations == {"tumor_case.features['mean_radius']": "impossible value: its magnitude must be at most 3.4e+38"}
