"""The metrics port of `bentoml serve-grpc`: Prometheus text on `/metrics` (where scrapers look) and on `/`.

It stands in for BentoML 1.4.39's gRPC metrics server (bentoml_cli.worker.grpc_prometheus_server),
which answers 500 on every path but `/`, and which BentoML's arbiter starts without
PROMETHEUS_MULTIPROC_DIR, the folder its API workers write their metrics to. The arbiter
runs this module instead (`serve_metrics_with_clinpred` below) with the same arguments:
the socket it bound for the metrics port, and the listen backlog.

The port is exposed as the gRPC port is: the arbiter binds it on the gRPC server's host (BentoML
would bind 0.0.0.0 whatever `--host` says), and when the gRPC server has TLS the metrics port
serves HTTPS with the same certificate, key and client CA (clients need a certificate of that
CA, as BentoML's gRPC server requires of its callers).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

METRICS_PATHS = ("/metrics", "/")
# BentoML's name for the metrics server's module, looked up by bentoml.serving when it starts the arbiter.
_BENTOML_MODULE_ATTRIBUTE = "SCRIPT_GRPC_PROMETHEUS_SERVER"
# How the arbiter hands the TLS files to the metrics server, which it starts with --fd and --backlog only:
# BentoML's own TLS settings (api_server.ssl.*), which every process it starts reads from its environment.
_BENTOML_CONFIG_OPTIONS = "BENTOML_CONFIG_OPTIONS"


@dataclass(frozen=True)
class MetricsTls:
    """TLS of the metrics port: the gRPC server's certificate and key, by the same paths (relative to the
    same working directory); with `client_ca`, scrapers must present a certificate that CA signed."""

    certfile: str
    keyfile: str
    client_ca: str | None = None

    def uvicorn_options(self) -> dict[str, Any]:
        return {
            "ssl_certfile": self.certfile,
            "ssl_keyfile": self.keyfile,
            "ssl_ca_certs": self.client_ca,
            # As BentoML's gRPC server: a client CA means client certificates are required.
            "ssl_cert_reqs": ssl.CERT_REQUIRED if self.client_ca else ssl.CERT_NONE,
            # OpenSSL's default ciphers, not uvicorn's "TLSv1".
            "ssl_ciphers": None,
        }

    def bentoml_config_options(self) -> list[str]:
        """BentoML config options (BENTOML_CONFIG_OPTIONS syntax) that name these files."""
        paths = {"certfile": self.certfile, "keyfile": self.keyfile}
        if self.client_ca is not None:
            paths["ca_certs"] = self.client_ca
        for path in paths.values():
            if '"' in path:
                raise ValueError(f"TLS file path {path!r}: BentoML's config options cannot quote a '\"'")
        # JSON strings are YAML strings: a path like "true" or "1" stays a string.
        return ["api_server.ssl.enabled=true", *(f"api_server.ssl.{key}={json.dumps(path)}" for key, path in paths.items())]

    @classmethod
    def from_bentoml_config(cls) -> MetricsTls | None:
        """The TLS BentoML's config of this process names (api_server.ssl.*); None without a certificate."""
        from bentoml._internal.configuration.containers import BentoMLContainer

        certfile, keyfile = BentoMLContainer.ssl.certfile.get(), BentoMLContainer.ssl.keyfile.get()
        if not certfile:
            return None
        if not keyfile:
            raise ValueError("BentoML's config names a TLS certificate (api_server.ssl.certfile) but no key")
        return cls(str(certfile), str(keyfile), BentoMLContainer.ssl.ca_certs.get() or None)


def grpc_server_host_and_tls() -> tuple[str, MetricsTls | None]:
    """Host and TLS of the gRPC server of this `bentoml serve-grpc`: the options of the command it is
    running (its click context), else BentoML's config, which serve_grpc_production defaults to."""
    import click
    from bentoml._internal.configuration.containers import BentoMLContainer

    context = click.get_current_context(silent=True)
    params: dict[str, Any] = dict(context.params) if context is not None else {}
    if not {"host", "ssl_certfile", "ssl_keyfile", "ssl_ca_certs"} <= params.keys():
        params = {
            "host": BentoMLContainer.grpc.host.get(),
            "ssl_certfile": BentoMLContainer.ssl.certfile.get(),
            "ssl_keyfile": BentoMLContainer.ssl.keyfile.get(),
            "ssl_ca_certs": BentoMLContainer.ssl.ca_certs.get(),
        }
    host = str(params["host"] or BentoMLContainer.grpc.host.get())
    if not params["ssl_certfile"]:
        return host, None
    if not params["ssl_keyfile"]:
        raise ValueError("the gRPC server has a TLS certificate but no key")
    return host, MetricsTls(str(params["ssl_certfile"]), str(params["ssl_keyfile"]), params["ssl_ca_certs"] or None)


class MetricsApp:
    """ASGI app: the exposition on METRICS_PATHS (GET, HEAD), 404 elsewhere."""

    def __init__(self, exposition: Callable[[], bytes], content_type: str) -> None:
        self.exposition = exposition
        self.content_type = content_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] not in METRICS_PATHS:
            status, content_type, body = 404, "text/plain; charset=utf-8", b"not found; metrics are on /metrics\n"
        elif scope["method"] not in ("GET", "HEAD"):
            status, content_type, body = 405, "text/plain; charset=utf-8", b"GET or HEAD only\n"
        else:
            status, content_type, body = 200, self.content_type, self.exposition()
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def serve_metrics_with_clinpred() -> bool:
    """Makes the `bentoml serve-grpc` of this process (its arbiter) start this module for the metrics
    port, bound on the gRPC server's host and, when the gRPC server has TLS, with the same TLS.

    BentoML reads the module name, and the metrics host, when it builds its arbiter's watchers,
    after it imported the service; so the service module calls this at import. False when BentoML
    is not serving from this process, or no longer names the module where 1.4.39 does (then, with
    TLS, it raises rather than let BentoML's own metrics server answer in plain HTTP).
    """
    serving = sys.modules.get("bentoml.serving")
    if serving is None:
        return False
    from bentoml._internal.configuration.containers import BentoMLContainer

    host, tls = grpc_server_host_and_tls()
    BentoMLContainer.grpc.metrics.host.set(host)
    if not hasattr(serving, _BENTOML_MODULE_ATTRIBUTE):
        if tls is not None:
            raise RuntimeError("this BentoML names no metrics server module: its metrics port would not use TLS")
        return False
    setattr(serving, _BENTOML_MODULE_ATTRIBUTE, __name__)
    if tls is not None:
        # Last, so that they win over any api_server.ssl.* given before (BentoML applies them in order).
        options = [os.environ.get(_BENTOML_CONFIG_OPTIONS, ""), *tls.bentoml_config_options()]
        os.environ[_BENTOML_CONFIG_OPTIONS] = " ".join(o for o in options if o)
    return True


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Prometheus metrics of the API workers of `bentoml serve-grpc`.")
    parser.add_argument("--fd", type=int, required=True, help="file descriptor of the bound metrics socket")
    parser.add_argument("--backlog", type=int, default=2048)
    args = parser.parse_args(argv)

    import uvicorn
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.context import server_context
    from bentoml._internal.log import configure_server_logging

    from clinpred.services.common.server_logs import LogSettings, configure_server_logs

    # The folder the arbiter gave its API workers (it is not in this process's environment);
    # set before prometheus_client is imported, which reads it then.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = BentoMLContainer.prometheus_multiproc_dir.get()
    server_context.service_type = "prom_server"
    configure_server_logging()
    configure_server_logs(LogSettings().log_level)
    client = BentoMLContainer.metrics_client.get()
    app = MetricsApp(client.generate_latest, client.CONTENT_TYPE_LATEST)
    tls = MetricsTls.from_bentoml_config()
    config = uvicorn.Config(
        app, backlog=args.backlog, log_config=None, lifespan="off", workers=1, **(tls.uvicorn_options() if tls else {})
    )
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=args.fd)])


if __name__ == "__main__":
    main()
