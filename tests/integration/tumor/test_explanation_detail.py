"""Callers choose how much explanation answers carry; full is the default and carries the packed SHAP vector."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from tests.support import field_violations

Stub = tumor_pb2_grpc.TumorClassificationServiceStub
Cases = list[tuple[dict[str, float], str]]
FULL, TOP, NONE = (
    tumor_pb2.EXPLANATION_DETAIL_FULL,
    tumor_pb2.EXPLANATION_DETAIL_TOP_REASONS,
    tumor_pb2.EXPLANATION_DETAIL_NONE,
)


def case(features: dict[str, float], case_id: str = "c") -> tumor_pb2.TumorCase:
    return tumor_pb2.TumorCase(case_id=case_id, features=features)


async def test_full_is_the_default_and_packs_shap_values_in_the_schema_feature_order(
    tumor_stub: Stub, wdbc_cases: Cases
) -> None:
    features = [f.name for f in (await tumor_stub.GetModelInfo(tumor_pb2.GetModelInfoRequest())).features]
    unset = (await tumor_stub.Classify(tumor_pb2.ClassifyRequest(tumor_case=case(wdbc_cases[5][0])))).classification
    full = (await tumor_stub.Classify(tumor_pb2.ClassifyRequest(tumor_case=case(wdbc_cases[5][0]), detail=FULL))).classification
    assert unset == full
    explanation = full.explanation
    assert [c.feature for c in explanation.contributions] == features
    assert list(explanation.shap_values) == [c.shap_value for c in explanation.contributions]
    assert [c.value for c in explanation.contributions] == [wdbc_cases[5][0][name] for name in features]
    assert explanation.base_value + sum(explanation.shap_values) == pytest.approx(explanation.margin, abs=1e-9)


async def test_top_reasons_and_none_leave_out_what_was_not_asked_for(tumor_stub: Stub, wdbc_cases: Cases) -> None:
    features = wdbc_cases[0][0]
    answers = {
        detail: (await tumor_stub.Classify(tumor_pb2.ClassifyRequest(tumor_case=case(features), detail=detail))).classification
        for detail in (FULL, TOP, NONE)
    }
    full, top, none = answers[FULL], answers[TOP], answers[NONE]
    assert not top.explanation.contributions and not top.explanation.shap_values
    assert list(top.explanation.top_reasons) == list(full.explanation.top_reasons)
    assert top.explanation.margin == full.explanation.margin
    assert not none.HasField("explanation")
    for answer in (top, none):  # the rest of the answer does not depend on the detail
        assert answer.probabilities == full.probabilities and answer.confidence == full.confidence
        assert answer.label == full.label and answer.model == full.model


async def test_a_batch_and_each_stream_message_take_their_own_detail(tumor_stub: Stub, wdbc_cases: Cases) -> None:
    batch = await tumor_stub.ClassifyBatch(
        tumor_pb2.ClassifyBatchRequest(cases=[case(f, str(i)) for i, (f, _) in enumerate(wdbc_cases[:4])], detail=TOP)
    )
    assert all(c.explanation.top_reasons and not c.explanation.contributions for c in batch.classifications)

    async def messages() -> AsyncIterator[tumor_pb2.ClassifyStreamRequest]:
        for i, detail in enumerate((NONE, FULL, TOP)):
            yield tumor_pb2.ClassifyStreamRequest(tumor_case=case(wdbc_cases[i][0], str(i)), detail=detail)

    streamed = [m.classification async for m in tumor_stub.ClassifyStream(messages())]
    assert [a.HasField("explanation") for a in streamed] == [False, True, True]
    assert len(streamed[1].explanation.shap_values) == 30 and not streamed[2].explanation.shap_values


async def test_an_unknown_detail_is_invalid_argument_naming_the_field(tumor_stub: Stub, wdbc_cases: Cases) -> None:
    unknown = 7  # a later API version's level: refused, not silently answered in full
    with pytest.raises(grpc.aio.AioRpcError) as single:
        await tumor_stub.Classify(tumor_pb2.ClassifyRequest(tumor_case=case(wdbc_cases[0][0]), detail=unknown))  # type: ignore[arg-type]
    assert single.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "explanation detail" in field_violations(single.value)["detail"]
    with pytest.raises(grpc.aio.AioRpcError) as batch:
        await tumor_stub.ClassifyBatch(tumor_pb2.ClassifyBatchRequest(cases=[case({})], detail=unknown))  # type: ignore[arg-type]
    assert {"detail", "cases[0].features"} <= set(field_violations(batch.value))

    async def messages() -> AsyncIterator[tumor_pb2.ClassifyStreamRequest]:
        yield tumor_pb2.ClassifyStreamRequest(tumor_case=case(wdbc_cases[0][0]), detail=unknown)  # type: ignore[arg-type]

    with pytest.raises(grpc.aio.AioRpcError) as streamed:
        async for _ in tumor_stub.ClassifyStream(messages()):
            pass
    assert "stream[0].detail" in field_violations(streamed.value)
