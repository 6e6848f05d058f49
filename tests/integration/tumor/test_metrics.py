"""Calls are counted by method and status code, and stages are timed."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from prometheus_client import REGISTRY

from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def eventually(name: str, expected: float, **labels: str) -> float:
    """The server records a failed call after the client already has its status; allow it a moment
    (up to 5 s: a loaded 2-core CI machine can take a while to run the server's done callback)."""
    for _ in range(250):
        if sample(name, **labels) == expected:
            break
        await asyncio.sleep(0.02)
    return sample(name, **labels)


async def test_calls_are_counted_by_method_and_code(
    tumor_stub: tumor_pb2_grpc.TumorClassificationServiceStub, wdbc_cases: list[tuple[dict[str, float], str]]
) -> None:
    ok_before = sample("clinpred_grpc_requests_total", service="tumor", method="Classify", code="OK")
    bad_before = sample("clinpred_grpc_requests_total", service="tumor", method="Classify", code="INVALID_ARGUMENT")
    explain_before = sample("clinpred_stage_duration_seconds_count", service="tumor", stage="explain")
    features = wdbc_cases[3][0]
    for _ in range(3):
        await tumor_stub.Classify(tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(features=features)))
    with pytest.raises(grpc.aio.AioRpcError):
        await tumor_stub.Classify(tumor_pb2.ClassifyRequest())
    assert sample("clinpred_grpc_requests_total", service="tumor", method="Classify", code="OK") == ok_before + 3
    failed = await eventually(
        "clinpred_grpc_requests_total", bad_before + 1, service="tumor", method="Classify", code="INVALID_ARGUMENT"
    )
    assert failed == bad_before + 1
    assert sample("clinpred_stage_duration_seconds_count", service="tumor", stage="explain") == explain_before + 3
    for stage in ("decode", "predict", "encode"):
        assert sample("clinpred_stage_duration_seconds_count", service="tumor", stage=stage) > 0


STAGES = ("decode", "predict", "explain", "encode")


def stage_counts() -> dict[str, float]:
    return {s: sample("clinpred_stage_duration_seconds_count", service="tumor", stage=s) for s in STAGES}


def added(before: dict[str, float]) -> dict[str, float]:
    after = stage_counts()
    return {s: after[s] - before[s] for s in STAGES}


async def test_each_stage_is_timed_once_per_call_and_once_per_stream_message(
    tumor_stub: tumor_pb2_grpc.TumorClassificationServiceStub, wdbc_cases: list[tuple[dict[str, float], str]]
) -> None:
    # The server records every stage before it sends the answer, so the counts are final when it arrives.
    case = tumor_pb2.TumorCase(case_id="m", features=wdbc_cases[5][0])
    before = stage_counts()
    await tumor_stub.Classify(tumor_pb2.ClassifyRequest(tumor_case=case))
    assert added(before) == dict.fromkeys(STAGES, 1.0)

    # A batch large enough to run off the event loop is still one call: each stage once, not once per case.
    before = stage_counts()
    answer = await tumor_stub.ClassifyBatch(tumor_pb2.ClassifyBatchRequest(cases=[case] * 20))
    assert len(answer.classifications) == 20
    assert added(before) == dict.fromkeys(STAGES, 1.0)

    async def two_messages():  # type: ignore[no-untyped-def]
        for _ in range(2):
            yield tumor_pb2.ClassifyStreamRequest(tumor_case=case)

    before = stage_counts()
    answers = [r async for r in tumor_stub.ClassifyStream(two_messages())]
    assert len(answers) == 2
    assert added(before) == dict.fromkeys(STAGES, 2.0)

    # GetModelInfo decodes and encodes but neither predicts nor explains.
    before = stage_counts()
    await tumor_stub.GetModelInfo(tumor_pb2.GetModelInfoRequest())
    assert added(before) == {"decode": 1.0, "predict": 0.0, "explain": 0.0, "encode": 1.0}


def call_counts(method: str) -> dict[str, float]:
    codes = ("OK", "CANCELLED", "DEADLINE_EXCEEDED", "UNKNOWN")
    return {c: sample("clinpred_grpc_requests_total", service="tumor", method=method, code=c) for c in codes}


async def test_a_stream_the_client_cancels_is_counted_as_cancelled(
    tumor_target: str, wdbc_cases: list[tuple[dict[str, float], str]]
) -> None:
    """The client stops reading, so the server blocks writing an answer; then the client cancels."""
    cases = [
        tumor_pb2.ClassifyStreamRequest(tumor_case=tumor_pb2.TumorCase(case_id=f"s{i}", features=wdbc_cases[i % 50][0]))
        for i in range(400)
    ]
    before = call_counts("ClassifyStream")
    # Without BDP probing the flow-control window stays at 64 KiB: about 30 unread answers fill it.
    async with grpc.aio.insecure_channel(tumor_target, options=[("grpc.http2.bdp_probe", 0)]) as channel:
        call = tumor_pb2_grpc.TumorClassificationServiceStub(channel).ClassifyStream(iter(cases))
        await call.read()
        decoded, previous = stage_counts()["decode"], -1.0
        while decoded != previous:  # until the server stops taking cases: it waits to write
            await asyncio.sleep(0.2)
            decoded, previous = stage_counts()["decode"], decoded
        call.cancel()
        cancelled = await eventually(
            "clinpred_grpc_requests_total", before["CANCELLED"] + 1, service="tumor", method="ClassifyStream", code="CANCELLED"
        )
    assert cancelled == before["CANCELLED"] + 1
    after = call_counts("ClassifyStream")
    assert (after["UNKNOWN"], after["OK"]) == (before["UNKNOWN"], before["OK"])


async def test_a_stream_past_its_deadline_is_counted_as_deadline_exceeded(
    tumor_target: str, wdbc_cases: list[tuple[dict[str, float], str]]
) -> None:
    """The client sends one case and then neither more nor the end of its stream: the deadline ends the call."""

    async def one_case_then_silence():  # type: ignore[no-untyped-def]
        yield tumor_pb2.ClassifyStreamRequest(tumor_case=tumor_pb2.TumorCase(case_id="d", features=wdbc_cases[0][0]))
        await asyncio.sleep(30)

    before = call_counts("ClassifyStream")
    async with grpc.aio.insecure_channel(tumor_target) as channel:
        call = tumor_pb2_grpc.TumorClassificationServiceStub(channel).ClassifyStream(one_case_then_silence(), timeout=1.0)
        assert (await call.read()).classification.case_id == "d"
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call.read()
    assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    exceeded = await eventually(
        "clinpred_grpc_requests_total",
        before["DEADLINE_EXCEEDED"] + 1,
        service="tumor",
        method="ClassifyStream",
        code="DEADLINE_EXCEEDED",
    )
    assert exceeded == before["DEADLINE_EXCEEDED"] + 1
    after = call_counts("ClassifyStream")
    assert (after["UNKNOWN"], after["OK"]) == (before["UNKNOWN"], before["OK"])
