"""One description of a service, served two ways: `bentoml serve-grpc` and an in-process grpc.aio server.

Both register the same servicer and interceptors and load the model before
reporting SERVING, so integration tests exercise what production runs. Both warn
about CLINPRED_ variables nothing reads.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from clinpred.pilots.common.errors import ClinpredError
from clinpred.services.common.interceptors import server_interceptors
from clinpred.services.common.metrics_server import serve_metrics_with_clinpred
from clinpred.services.common.server_logs import LogSettings, configure_server_logs
from clinpred.services.common.settings import ServiceSettings
from clinpred.services.common.settings_reference import warn_about_unknown_variables

logger = logging.getLogger("clinpred.serving")

# Largest request accepted; batches are bounded further by each service's max_batch_size.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ServiceMount:
    """What a pilot's service consists of."""

    name: str
    service_names: tuple[str, ...]
    servicer_factory: Callable[[], Any]
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    load: Callable[[], None]
    settings: ServiceSettings | None = None

    def connection_options(self) -> tuple[tuple[str, int], ...]:
        age = self.settings.max_connection_age_seconds if self.settings else 300.0
        grace = self.settings.max_connection_age_grace_seconds if self.settings else 30.0
        return (
            ("grpc.max_connection_age_ms", int(age * 1000)),
            ("grpc.max_connection_age_grace_ms", int(grace * 1000)),
        )


def _add_bentoml_server_options(extra: tuple[tuple[str, int], ...]) -> None:
    """Adds channel options to the gRPC server `bentoml serve-grpc` builds.

    BentoML's Server has a fixed `options` property with no connection-age
    setting. Its API worker imports the service (this module) before it builds
    the Server, so extending the property here takes effect in every worker.
    """
    from bentoml._internal.server import grpc_app

    # The class __dict__ holds the property object itself; importing twice must not wrap twice.
    attributes = vars(grpc_app.Server)
    original = attributes.get("_clinpred_original_options", attributes["options"])

    def options(server: Any) -> tuple[Any, ...]:
        return (*original.fget(server), *extra)

    grpc_app.Server._clinpred_original_options = original
    grpc_app.Server.options = property(options)  # type: ignore[method-assign,assignment]


# BentoML's own gRPC server interceptors that only duplicate ours: its Prometheus interceptor counts and
# times every call as `bentoml_api_server_*`, which clinpred_grpc_requests_total and
# clinpred_grpc_request_duration_seconds already do; it cost about 0.25 ms of server CPU per call (5%).
DUPLICATE_BENTOML_INTERCEPTORS = frozenset({"PrometheusServerInterceptor"})
# Its access log (a line per call) and the OpenTelemetry interceptor whose span status it reads (without
# that one the access log fails every call): kept only with CLINPRED_ACCESS_LOG. Measured on the tumour
# service at 16 concurrent clients, the two took about 19% of the API worker's Python time per call.
ACCESS_LOG_BENTOML_INTERCEPTORS = frozenset({"AccessLogServerInterceptor", "AsyncOpenTelemetryServerInterceptor"})


def dropped_bentoml_interceptors(access_log: bool) -> frozenset[str]:
    """The names of BentoML's gRPC interceptors the served processes leave out."""
    return DUPLICATE_BENTOML_INTERCEPTORS if access_log else DUPLICATE_BENTOML_INTERCEPTORS | ACCESS_LOG_BENTOML_INTERCEPTORS


def _drop_bentoml_interceptors(dropped: frozenset[str]) -> None:
    """Leaves `dropped` of BentoML's interceptors out of the server `bentoml serve-grpc` builds (its API
    worker imports this module before it builds the Server, as for the options above)."""
    from bentoml._internal.server import grpc_app

    attributes = vars(grpc_app.Server)
    original = attributes.get("_clinpred_original_interceptors", attributes["interceptors"])

    def interceptors(server: Any) -> list[Any]:
        return [i for i in original.fget(server) if getattr(i, "__name__", "") not in dropped]

    grpc_app.Server._clinpred_original_interceptors = original
    grpc_app.Server.interceptors = property(interceptors)  # type: ignore[method-assign,assignment]


def _bentoml_process_role() -> str | None:
    """What this process is to `bentoml serve-grpc`, which imports the service module in each:
    "arbiter" (the `bentoml serve-grpc` process, which starts the others), "api worker", or
    None (a test, the CLI, anything else importing the module)."""
    from bentoml._internal.context import server_context

    if server_context.service_type == "grpc_api_server":
        return "api worker"
    # The arbiter's command (`bentoml serve-grpc ...`, also `python -m bentoml serve-grpc ...`)
    # imports bentoml.serving before it imports the service.
    return "arbiter" if "serve-grpc" in sys.argv[1:3] and "bentoml.serving" in sys.modules else None


def bento_service(mount: ServiceMount) -> Any:
    """A `bentoml.legacy.Service` for `bentoml serve-grpc`: the only BentoML API with gRPC serving."""
    import bentoml

    role = _bentoml_process_role()
    log_settings = LogSettings()
    if role is not None:
        configure_server_logs(log_settings.log_level)
    if role == "arbiter":
        # Once per `bentoml serve-grpc`, not once more in each API worker.
        warn_about_unknown_variables()
        if not serve_metrics_with_clinpred():
            logger.warning("this BentoML names no metrics server module; /metrics will answer 500 (only / works)")

    with warnings.catch_warnings():
        # Deprecated in favour of @bentoml.service, which has no gRPC serving: see ARCHITECTURE.md.
        warnings.simplefilter("ignore", DeprecationWarning)
        svc = bentoml.legacy.Service(name=f"clinpred-{mount.name}")

    @svc.on_startup
    def load_model(_context: Any) -> None:
        # Startup hooks run before BentoML marks services SERVING and starts the server.
        try:
            mount.load()
        except ClinpredError as error:
            if role == "api worker":
                # BentoML's arbiter respawns a failed worker a few times and then keeps running with none,
                # never serving. A domain error (an unknown model version, a schema behind) fails every
                # retry alike, so it ends `bentoml serve-grpc` instead and a supervisor shows this line;
                # other errors (a database not reachable yet) keep BentoML's retries.
                logger.critical("%s cannot start: %s", mount.name, error)
                os.kill(os.getppid(), signal.SIGTERM)
            raise

    # BentoML calls the "class" with no arguments; a factory closes over the loaded model.
    _add_bentoml_server_options(mount.connection_options())
    _drop_bentoml_interceptors(dropped_bentoml_interceptors(log_settings.access_log))
    svc.mount_grpc_servicer(mount.servicer_factory, mount.add_to_server, list(mount.service_names))  # type: ignore[arg-type]
    for interceptor, options in server_interceptors(mount.name, mount.settings):
        svc.add_grpc_interceptor(interceptor, **options)
    return svc


async def start_inprocess_server(
    mount: ServiceMount, host: str = "127.0.0.1", port: int = 0, credentials: grpc.ServerCredentials | None = None
) -> tuple[grpc.aio.Server, int]:
    """Starts the service in this process on a real socket (TLS with `credentials`); returns the server and its port."""
    warn_about_unknown_variables()
    server = grpc.aio.server(
        interceptors=[interceptor(**options) for interceptor, options in server_interceptors(mount.name, mount.settings)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            *mount.connection_options(),
        ],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in (*mount.service_names, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    mount.add_to_server(mount.servicer_factory(), server)
    reflection.enable_server_reflection((*mount.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    address = f"{host}:{port}"
    bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    await server.start()
    try:
        mount.load()
    except BaseException:
        # A model or database that refuses to load ends the start, and the server with it.
        await server.stop(grace=None)
        raise
    for name in (*mount.service_names, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, bound
