"""Client channels to clinpred services, plain or (mutual) TLS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Clients balance per call across the replicas behind a headless Service.
_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


@dataclass(frozen=True)
class ClientTls:
    """Trust anchors for the server, and this client's certificate for mutual TLS."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None

    @classmethod
    def from_folder(cls, folder: Path | str) -> ClientTls:
        """ca.crt, client.crt and client.key of a folder `clinpred tls init` wrote (`make run` writes var/tls)."""
        path = Path(folder)
        return cls(path / "ca.crt", path / "client.crt", path / "client.key")

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.cert is None) != (self.key is None):
            raise ValueError("a client certificate needs its key, and a key its certificate")
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes(),
            private_key=self.key.read_bytes() if self.key else None,
            certificate_chain=self.cert.read_bytes() if self.cert else None,
        )


def open_channel(target: str, tls: ClientTls | None = None) -> grpc.Channel:
    options = [("grpc.service_config", _SERVICE_CONFIG)]
    if tls is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, tls.credentials(), options=options)


def is_serving(target: str, service: str = "", timeout: float = 2.0, tls: ClientTls | None = None) -> bool:
    """True when the server at `target` reports SERVING for `service` on grpc.health.v1."""
    with open_channel(target, tls) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)
