"""The metrics port of `bentoml serve-grpc`: Prometheus text on `/metrics` (where scrapers look) and on `/`.

It stands in for BentoML 1.4.39's gRPC metrics server (bentoml_cli.worker.grpc_prometheus_server),
which answers 500 on every path but `/`, and which BentoML's arbiter starts without
PROMETHEUS_MULTIPROC_DIR, the folder its API workers write their metrics to. The arbiter
runs this module instead (`serve_metrics_with_clinpred` below) with the same arguments:
the socket it bound for the metrics port, and the listen backlog.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

METRICS_PATHS = ("/metrics", "/")
# BentoML's name for the metrics server's module, looked up by bentoml.serving when it starts the arbiter.
_BENTOML_MODULE_ATTRIBUTE = "SCRIPT_GRPC_PROMETHEUS_SERVER"


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
    """Makes the `bentoml serve-grpc` of this process (its arbiter) start this module for the metrics port.

    BentoML reads the module name when it builds its arbiter's watchers, after it imported
    the service; so the service module calls this at import. False when BentoML is not
    serving from this process, or no longer names the module where 1.4.39 does.
    """
    serving = sys.modules.get("bentoml.serving")
    if serving is None or not hasattr(serving, _BENTOML_MODULE_ATTRIBUTE):
        return False
    setattr(serving, _BENTOML_MODULE_ATTRIBUTE, __name__)
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
    config = uvicorn.Config(app, backlog=args.backlog, log_config=None, lifespan="off", workers=1)
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=args.fd)])


if __name__ == "__main__":
    main()
