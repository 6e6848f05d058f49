"""The image's health check command against a real gRPC server on a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from clinpred.services.common.health_probe import main
from tests.support import free_port

SERVED = "clinpred.tumor.v1.TumorClassificationService"


@pytest.fixture(scope="module")
def health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port, servicer
    server.stop(None)


def _probe(monkeypatch: pytest.MonkeyPatch, port: int, service: str) -> int:
    monkeypatch.setenv("GRPC_PROBE_PORT", str(port))
    monkeypatch.setenv("GRPC_PROBE_SERVICE", service)
    return main(["--timeout", "2"])


def test_serving_is_healthy_and_anything_else_is_not(
    health_server: tuple[int, health.HealthServicer], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port, servicer = health_server
    servicer.set(SERVED, health_pb2.HealthCheckResponse.SERVING)
    assert _probe(monkeypatch, port, SERVED) == 0
    servicer.set(SERVED, health_pb2.HealthCheckResponse.NOT_SERVING)
    assert _probe(monkeypatch, port, SERVED) == 1
    assert "NOT_SERVING" in capsys.readouterr().err
    assert _probe(monkeypatch, port, "clinpred.genomics.v1.GenomicRiskService") == 1
    assert "NOT_FOUND" in capsys.readouterr().err


def test_no_server_and_no_port_are_unhealthy(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _probe(monkeypatch, free_port(), SERVED) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err
    monkeypatch.delenv("GRPC_PROBE_PORT")
    assert main([]) == 1
    assert "GRPC_PROBE_PORT" in capsys.readouterr().err


def test_overall_checks_the_whole_server_not_the_named_service(
    health_server: tuple[int, health.HealthServicer], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A liveness probe: the process answers, even while the model is not loaded (service NOT_SERVING).
    port, servicer = health_server
    servicer.set(SERVED, health_pb2.HealthCheckResponse.NOT_SERVING)
    monkeypatch.setenv("GRPC_PROBE_PORT", str(port))
    monkeypatch.setenv("GRPC_PROBE_SERVICE", SERVED)
    assert main(["--overall", "--timeout", "2"]) == 0
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        assert main(["--overall", "--timeout", "2"]) == 1
        assert "(server) is NOT_SERVING" in capsys.readouterr().err
    finally:
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
