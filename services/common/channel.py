"""Client channels to clinpred services."""

from __future__ import annotations

import json

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Clients balance per call across the replicas behind a headless Service.
_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def open_channel(target: str) -> grpc.Channel:
    return grpc.insecure_channel(target, options=[("grpc.service_config", _SERVICE_CONFIG)])


def is_serving(target: str, service: str = "", timeout: float = 2.0) -> bool:
    """True when the server at `target` reports SERVING for `service` on grpc.health.v1."""
    with grpc.insecure_channel(target) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)
