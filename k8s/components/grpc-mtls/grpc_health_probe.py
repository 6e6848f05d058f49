"""Kubernetes exec probe: grpc.health.v1 Check over mutual TLS, on this pod's own port.

The kubelet's native gRPC probe cannot speak TLS, so once a service serves only
mutual TLS its probes run this script inside the container instead. It checks
the server certificate against ca.crt under GRPC_PROBE_TLS_SERVER_NAME, and
presents client.crt/client.key from the same folder when the Secret has them,
else the pod's own tls.crt/tls.key (which then must allow client auth: no
extendedKeyUsage, or one that includes clientAuth).

Environment (set on the container):
  GRPC_PROBE_PORT             the gRPC port, e.g. 50051 (required)
  GRPC_PROBE_SERVICE          health service name checked by default, e.g.
                              clinpred.tumor.v1.TumorClassificationService
  GRPC_PROBE_TLS_DIR          folder with tls.crt, tls.key, ca.crt (default /etc/clinpred/tls)
  GRPC_PROBE_TLS_SERVER_NAME  a DNS name in the server certificate (required)
Arguments:
  --overall                   check the whole server (service "") instead
  --timeout SECONDS           per-call deadline (default 3)
Exit status: 0 when SERVING, 1 otherwise (the reason goes to stderr, which the
kubelet records in the pod's events).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overall", action="store_true")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)

    port = os.environ.get("GRPC_PROBE_PORT", "")
    server_name = os.environ.get("GRPC_PROBE_TLS_SERVER_NAME", "")
    tls_dir = Path(os.environ.get("GRPC_PROBE_TLS_DIR", "/etc/clinpred/tls"))
    service = "" if args.overall else os.environ.get("GRPC_PROBE_SERVICE", "")
    if not port.isdigit() or not server_name:
        print("probe: set GRPC_PROBE_PORT and GRPC_PROBE_TLS_SERVER_NAME", file=sys.stderr)
        return 1
    own = not ((tls_dir / "client.crt").is_file() and (tls_dir / "client.key").is_file())
    stem = "tls" if own else "client"
    try:
        root = (tls_dir / "ca.crt").read_bytes()
        key = (tls_dir / f"{stem}.key").read_bytes()
        chain = (tls_dir / f"{stem}.crt").read_bytes()
    except OSError as error:
        print(f"probe: cannot read TLS files: {error}", file=sys.stderr)
        return 1

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    credentials = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
    options = [("grpc.ssl_target_name_override", server_name), ("grpc.enable_retries", 0)]
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=args.timeout
            )
        except grpc.RpcError as error:
            print(f"probe: {error.code().name}: {error.details()}", file=sys.stderr)  # type: ignore[attr-defined]
            if own:
                print(
                    "probe: (used tls.crt as client certificate: it needs clientAuth, or add client.crt/client.key)",
                    file=sys.stderr,
                )
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        print(f"probe: {service or '(server)'} is {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
