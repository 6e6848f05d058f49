"""Concurrent Classify calls are answered in shared batches, each exactly as if it were alone, and per call.

Two real servers on real sockets: the session's (batching on, the default) and one with
CLINPRED_TUMOR_BATCH_WINDOW_MS=0 (every call alone), serving the same package.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from prometheus_client import REGISTRY

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.model_store import register_package
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.tumor.service import tumor_mount
from clinpred.services.tumor.servicer import TumorServicer
from clinpred.services.tumor.settings import TumorSettings
from tests.integration.tumor.conftest import MAX_BATCH
from tests.support import field_violations

Stub = tumor_pb2_grpc.TumorClassificationServiceStub
Cases = list[tuple[dict[str, float], str]]
CONCURRENT = 64
# Every call of a test comes from one tenant, at once: the tenant limits must not be what is tested.
UNLIMITED = {"max_calls_in_progress_per_tenant": 256, "rate_per_second": 1e6, "rate_burst": 100_000}


def request(features: dict[str, float], case_id: str, detail: int = 0) -> tumor_pb2.ClassifyRequest:
    return tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(case_id=case_id, features=features), detail=detail)  # type: ignore[arg-type]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(scope="module")
async def batched(tumor_package: ModelPackage) -> AsyncIterator[tuple[Stub, TumorServicer]]:
    register_package(tumor_package)
    mount = tumor_mount(TumorSettings(max_batch_size=MAX_BATCH, batch_window_ms=5.0, **UNLIMITED))
    server, port = await start_inprocess_server(mount)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Stub(channel), mount.servicer_factory()
    await server.stop(grace=None)


@pytest.fixture(scope="module")
async def alone(tumor_package: ModelPackage) -> AsyncIterator[Stub]:
    register_package(tumor_package)
    mount = tumor_mount(TumorSettings(max_batch_size=MAX_BATCH, batch_window_ms=0.0, **UNLIMITED))
    assert mount.servicer_factory().batcher is None
    server, port = await start_inprocess_server(mount)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Stub(channel)
    await server.stop(grace=None)


async def test_concurrent_calls_share_batches_and_each_gets_its_own_answer(
    batched: tuple[Stub, TumorServicer], alone: Stub, wdbc_cases: Cases
) -> None:
    stub, servicer = batched
    assert servicer.batcher is not None
    details = [tumor_pb2.EXPLANATION_DETAIL_FULL, tumor_pb2.EXPLANATION_DETAIL_TOP_REASONS, tumor_pb2.EXPLANATION_DETAIL_NONE]
    requests = [request(wdbc_cases[i][0], f"case-{i}", details[i % 3]) for i in range(CONCURRENT)]
    calls_before, batches_before = servicer.batcher.calls_run, servicer.batcher.batches_run
    ok_before = sample("clinpred_grpc_requests_total", service="tumor", method="Classify", code="OK")
    predict_before = sample("clinpred_stage_duration_seconds_count", service="tumor", stage="predict")
    answers = await asyncio.gather(*(stub.Classify(r) for r in requests))
    assert servicer.batcher.calls_run - calls_before == CONCURRENT
    # Fewer batches than calls: some were classified together (how many together depends on timing).
    assert servicer.batcher.batches_run - batches_before < CONCURRENT
    # Metrics count each call once, and each call's predict stage once, however it was batched.
    assert sample("clinpred_grpc_requests_total", service="tumor", method="Classify", code="OK") == ok_before + CONCURRENT
    assert sample("clinpred_stage_duration_seconds_count", service="tumor", stage="predict") == predict_before + CONCURRENT
    expected = [await alone.Classify(r) for r in requests]
    for answer, single, sent in zip(answers, expected, requests, strict=True):
        assert answer.classification.case_id == sent.tumor_case.case_id
        assert answer == single
    assert [a.classification.HasField("explanation") for a in answers] == [i % 3 != 2 for i in range(CONCURRENT)]


async def test_a_bad_call_among_good_ones_fails_alone(batched: tuple[Stub, TumorServicer], wdbc_cases: Cases) -> None:
    stub, _ = batched
    bad_features = dict(wdbc_cases[0][0], mean_radius=-1.0)
    requests = [request(wdbc_cases[i][0], f"good-{i}") for i in range(15)]
    requests.insert(7, request(bad_features, "bad"))
    requests.insert(3, request(wdbc_cases[1][0], "unknown-detail", detail=42))
    outcomes = await asyncio.gather(*(stub.Classify(r) for r in requests), return_exceptions=True)
    failed = {r.tumor_case.case_id: o for r, o in zip(requests, outcomes, strict=True) if isinstance(o, BaseException)}
    assert set(failed) == {"bad", "unknown-detail"}
    for error in failed.values():
        assert isinstance(error, grpc.aio.AioRpcError)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tumor_case.features['mean_radius']" in field_violations(failed["bad"])  # type: ignore[arg-type]
    assert "detail" in field_violations(failed["unknown-detail"])  # type: ignore[arg-type]
    good = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(good) == 15 and all(o.classification.label for o in good)


async def test_a_caller_that_cancels_does_not_break_the_batch(batched: tuple[Stub, TumorServicer], wdbc_cases: Cases) -> None:
    stub, servicer = batched
    assert servicer.batcher is not None
    calls = [stub.Classify(request(wdbc_cases[i][0], f"c-{i}")) for i in range(32)]
    cancelled = calls[5::8]
    for call in cancelled:
        call.cancel()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for call, outcome in zip(calls, outcomes, strict=True):
        if call in cancelled:
            assert isinstance(outcome, asyncio.CancelledError)
        else:
            assert not isinstance(outcome, BaseException), outcome
    # And the server keeps serving.
    after = await stub.Classify(request(wdbc_cases[0][0], "after"))
    assert after.classification.case_id == "after"
