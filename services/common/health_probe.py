"""The image's health check: grpc.health.v1 Check on this container's own gRPC port.

    python -m clinpred.services.common.health_probe [--tls-dir DIR] [--server-name NAME] [--overall] [--timeout S]

The port and the health service name are the container's GRPC_PROBE_PORT and
GRPC_PROBE_SERVICE (set by each Bento's docker.env, and by the Kubernetes
manifests for their probes); `--overall` checks the whole server (service "")
instead, as a liveness probe does. When DIR holds ca.crt the check speaks mutual
TLS, presenting DIR's client.crt/client.key, else its tls.crt/tls.key (the
server's own, which then must allow client auth), and checks the server's
certificate for NAME (default GRPC_PROBE_TLS_SERVER_NAME, else localhost);
without ca.crt it speaks plaintext (development mode). Exit status 0 when
SERVING, 1 otherwise, with the reason on standard error (which the kubelet
records in the pod's events).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

_OWN_CERTIFICATE_HINT = "(the server's tls.crt was the client certificate: it needs clientAuth, or add client.crt/client.key)"


def _client_stem(folder: Path) -> str:
    return "client" if (folder / "client.crt").is_file() and (folder / "client.key").is_file() else "tls"


def _credentials(folder: Path, stem: str) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=(folder / "ca.crt").read_bytes(),
        private_key=(folder / f"{stem}.key").read_bytes(),
        certificate_chain=(folder / f"{stem}.crt").read_bytes(),
    )


def check(port: int, service: str, tls_dir: Path | None, server_name: str, timeout: float) -> str | None:
    """None when the server reports SERVING for `service`, else why not."""
    target = f"127.0.0.1:{port}"
    # A probe answers now or fails: no transparent retries past its own deadline.
    options: list[tuple[str, str | int]] = [("grpc.enable_retries", 0)]
    hint = ""
    if tls_dir is not None and (tls_dir / "ca.crt").is_file():
        stem = _client_stem(tls_dir)
        hint = f" {_OWN_CERTIFICATE_HINT}" if stem == "tls" else ""
        try:
            credentials = _credentials(tls_dir, stem)
        except OSError as error:
            return f"cannot read the TLS files of {tls_dir}: {error.strerror}"
        options.append(("grpc.ssl_target_name_override", server_name))
        channel = grpc.secure_channel(target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    with channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as error:
            return f"{target}: {error.code().name}{hint}"
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        return f"{target}: {service or '(server)'} is {health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tls-dir", type=Path, default=None, help="folder of ca.crt and a client certificate")
    parser.add_argument(
        "--server-name",
        default=os.environ.get("GRPC_PROBE_TLS_SERVER_NAME") or "localhost",
        help="a DNS name of the server's certificate (default GRPC_PROBE_TLS_SERVER_NAME, else localhost)",
    )
    parser.add_argument("--overall", action="store_true", help='check the whole server (service ""), not GRPC_PROBE_SERVICE')
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    port = os.environ.get("GRPC_PROBE_PORT", "")
    if not port.isdigit():
        print("health probe: GRPC_PROBE_PORT must be the gRPC port", file=sys.stderr)
        return 1
    service = "" if args.overall else os.environ.get("GRPC_PROBE_SERVICE", "")
    problem = check(int(port), service, args.tls_dir, args.server_name, args.timeout)
    if problem is not None:
        print(f"health probe: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
