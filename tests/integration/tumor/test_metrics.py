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
    """The server records a failed call after the client already has its status; allow it a moment."""
    for _ in range(50):
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
