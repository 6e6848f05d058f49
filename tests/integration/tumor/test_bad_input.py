"""Bad input gets INVALID_ARGUMENT naming the field and reason, and the server keeps serving."""

from __future__ import annotations

import math

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from tests.integration.tumor.conftest import MAX_BATCH
from tests.support import field_violations

Stub = tumor_pb2_grpc.TumorClassificationServiceStub
Cases = list[tuple[dict[str, float], str]]


def classify(features: dict[str, float]) -> tumor_pb2.ClassifyRequest:
    return tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(case_id="x", features=features))


async def rejected(call: object) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return field_violations(caught.value)


async def still_serving(stub: Stub, cases: Cases) -> None:
    answer = await stub.Classify(classify(cases[0][0]))
    assert answer.classification.label in ("benign", "malignant")


async def test_a_missing_feature_is_named(tumor_stub: Stub, wdbc_cases: Cases) -> None:
    features = dict(wdbc_cases[0][0])
    del features["worst_area"]
    violations = await rejected(tumor_stub.Classify(classify(features)))
    assert "expected 30 features, got 29" in violations["tumor_case.features"]
    assert "worst_area" in violations["tumor_case.features"]
    await still_serving(tumor_stub, wdbc_cases)


async def test_an_unknown_feature_is_named_by_index_never_echoed(tumor_stub: Stub, wdbc_cases: Cases) -> None:
    features = dict(wdbc_cases[0][0], tumour_colour=3.0)
    violations = await rejected(tumor_stub.Classify(classify(features)))
    index = sorted(features).index("tumour_colour")
    assert "unknown feature name" in violations[f"tumor_case.features[{index}]"]
    assert "tumour_colour" not in str(violations)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
async def test_non_finite_values_are_rejected(tumor_stub: Stub, wdbc_cases: Cases, value: float) -> None:
    features = dict(wdbc_cases[0][0], mean_texture=value)
    violations = await rejected(tumor_stub.Classify(classify(features)))
    assert "finite" in violations["tumor_case.features['mean_texture']"]
    await still_serving(tumor_stub, wdbc_cases)


async def test_an_impossible_negative_radius_is_rejected(tumor_stub: Stub, wdbc_cases: Cases) -> None:
    features = dict(wdbc_cases[0][0], mean_radius=-4.0)
    violations = await rejected(tumor_stub.Classify(classify(features)))
    description = violations["tumor_case.features['mean_radius']"]
    assert "impossible" in description and ">= 0" in description
    assert "-4" not in description  # never echo the submitted value


async def test_a_missing_case_is_rejected(tumor_stub: Stub) -> None:
    violations = await rejected(tumor_stub.Classify(tumor_pb2.ClassifyRequest()))
    assert violations == {"tumor_case": "is required"}


async def test_an_empty_batch_is_rejected(tumor_stub: Stub) -> None:
    violations = await rejected(tumor_stub.ClassifyBatch(tumor_pb2.ClassifyBatchRequest()))
    assert "at least one" in violations["cases"]


async def test_an_oversized_batch_is_rejected(tumor_stub: Stub, wdbc_cases: Cases) -> None:
    cases = [tumor_pb2.TumorCase(features=wdbc_cases[0][0])] * (MAX_BATCH + 1)
    violations = await rejected(tumor_stub.ClassifyBatch(tumor_pb2.ClassifyBatchRequest(cases=cases)))
    assert f"at most {MAX_BATCH}" in violations["cases"]
    await still_serving(tumor_stub, wdbc_cases)


async def test_a_batch_names_every_bad_case_and_classifies_none(tumor_stub: Stub, wdbc_cases: Cases) -> None:
    good = wdbc_cases[0][0]
    cases = [
        tumor_pb2.TumorCase(features=good),
        tumor_pb2.TumorCase(features=dict(good, mean_area=-1.0)),
        tumor_pb2.TumorCase(features=good),
        tumor_pb2.TumorCase(features=dict(good, worst_symmetry=math.nan)),
    ]
    violations = await rejected(tumor_stub.ClassifyBatch(tumor_pb2.ClassifyBatchRequest(cases=cases)))
    assert set(violations) == {"cases[1].features['mean_area']", "cases[3].features['worst_symmetry']"}


async def test_unknown_fields_in_a_stream_end_it_with_the_item_named(tumor_stub: Stub, wdbc_cases: Cases) -> None:
    valid = tumor_pb2.ClassifyStreamRequest(tumor_case=tumor_pb2.TumorCase(case_id="ok", features=wdbc_cases[0][0]))
    # Field 15 does not exist in ClassifyStreamRequest: a client of another API version.
    foreign = tumor_pb2.ClassifyStreamRequest.FromString(valid.SerializeToString() + b"\x78\x01")

    async def items():  # type: ignore[no-untyped-def]
        yield valid
        yield foreign

    answers = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for response in tumor_stub.ClassifyStream(items()):
            answers.append(response.classification.case_id)
    assert answers == ["ok"]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(caught.value)
    assert "unknown field number 15" in violations["stream[1]"]
    await still_serving(tumor_stub, wdbc_cases)


feature_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    names=st.lists(st.text(min_size=0, max_size=30), max_size=40),
    case_id=st.text(max_size=50),
)
async def test_random_messages_never_get_internal(
    tumor_stub: Stub, wdbc_cases: Cases, data: st.DataObject, names: list[str], case_id: str
) -> None:
    schema_names = list(wdbc_cases[0][0])
    keys = data.draw(st.lists(st.sampled_from(schema_names), max_size=35)) + names
    features = {k: data.draw(feature_values) for k in keys}
    message = tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(case_id=case_id, features=features))
    try:
        answer = await tumor_stub.Classify(message)
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
        assert field_violations(error)
    else:
        assert answer.classification.label in ("benign", "malignant")
    await still_serving(tumor_stub, wdbc_cases)


async def test_bytes_that_are_no_message_are_invalid_argument(tumor_target: str, tumor_stub: Stub, wdbc_cases: Cases) -> None:
    async with grpc.aio.insecure_channel(tumor_target) as channel:
        raw = channel.unary_unary("/clinpred.tumor.v1.TumorClassificationService/Classify")
        violations = await rejected(raw(b"\xff\xff\xff\x01not protobuf"))
        assert "not a valid protobuf message" in violations["request"]

        stream = channel.stream_stream("/clinpred.tumor.v1.TumorClassificationService/ClassifyStream")
        valid = tumor_pb2.ClassifyStreamRequest(tumor_case=tumor_pb2.TumorCase(features=wdbc_cases[0][0]))

        async def items():  # type: ignore[no-untyped-def]
            yield valid.SerializeToString()
            yield b"\xff\xff\xff\x01"

        answers = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for response in stream(items()):
                answers.append(response)
        assert len(answers) == 1
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "stream[1]" in field_violations(caught.value)
    await still_serving(tumor_stub, wdbc_cases)


async def test_a_batch_of_bad_cases_gets_its_violations_within_the_default_metadata_limit(
    tumor_stub: Stub, wdbc_cases: Cases
) -> None:
    """Every case NaN in every feature: thousands of violations, yet a default client reads the answer
    (INVALID_ARGUMENT, not RESOURCE_EXHAUSTED for an oversized trailer), with the count of all of them."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    nan_case = {name: math.nan for name in wdbc_cases[0][0]}
    request = tumor_pb2.ClassifyBatchRequest(
        cases=[tumor_pb2.TumorCase(case_id=f"c{i}", features=nan_case) for i in range(MAX_BATCH)]
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tumor_stub.ClassifyBatch(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    for detail in status.details:
        detail.Unpack(info) if detail.Is(info.DESCRIPTOR) else detail.Unpack(bad_request)
    total, shown = int(info.metadata["violations"]), int(info.metadata["violations_shown"])
    assert total == MAX_BATCH * len(nan_case)
    assert 0 < shown == len(bad_request.field_violations) < total
    assert bad_request.field_violations[0].field.startswith("cases[0].")
    assert len(status.SerializeToString()) < 8 * 1024
    await still_serving(tumor_stub, wdbc_cases)
