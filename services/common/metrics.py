"""Prometheus metrics of every service.

prometheus_client is imported lazily: `bentoml serve-grpc` sets
PROMETHEUS_MULTIPROC_DIR for its API workers, and the client must see it at
import, so that several workers write one aggregated view, which the metrics
port serves on /metrics and / (clinpred.services.common.metrics_server). Labels are method names, status
code names and stage names only: never anything from a request.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

# Sub-millisecond buckets: a tumour classification takes about a millisecond.
LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@cache
def _metrics() -> dict[str, Any]:
    from prometheus_client import Counter, Histogram

    return {
        "requests": Counter(
            "clinpred_grpc_requests",
            "gRPC calls handled, by method and status code",
            ["service", "method", "code"],
        ),
        "latency": Histogram(
            "clinpred_grpc_request_duration_seconds",
            "Time to handle a gRPC call (a stream: its whole life)",
            ["service", "method"],
            buckets=LATENCY_BUCKETS,
        ),
        "stage": Histogram(
            "clinpred_stage_duration_seconds",
            "Time spent per processing stage (decode, queue, predict, explain, encode), once per call: a call"
            " classified in a batch with others records the batch's predict and explain times",
            ["service", "stage"],
            buckets=LATENCY_BUCKETS,
        ),
    }


def observe_call(service: str, method: str, code: str, seconds: float) -> None:
    metrics = _metrics()
    metrics["requests"].labels(service, method, code).inc()
    metrics["latency"].labels(service, method).observe(seconds)


@contextmanager
def stage(service: str, name: str) -> Iterator[None]:
    """Times one processing stage of a request."""
    start = time.perf_counter()
    try:
        yield
    finally:
        _metrics()["stage"].labels(service, name).observe(time.perf_counter() - start)


def observe_stage(service: str, name: str, seconds: float, calls: int = 1) -> None:
    """Records a stage that took `seconds` for each of `calls` calls (a batch's stage is each of its calls')."""
    histogram = _metrics()["stage"].labels(service, name)
    for _ in range(calls):
        histogram.observe(seconds)
