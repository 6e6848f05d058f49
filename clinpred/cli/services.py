"""The services `clinpred serve` knows, and how to start them with `bentoml serve-grpc`."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from clinpred.cli.settings import CliSettings
from clinpred.services.common.serving import MAX_MESSAGE_BYTES


@dataclass(frozen=True)
class ServiceSpec:
    pilot: str
    import_path: str
    grpc_service: str
    port: int
    metrics_port: int
    example: str


SERVICES: dict[str, ServiceSpec] = {
    "tumor": ServiceSpec(
        pilot="tumor",
        import_path="clinpred.services.tumor.service:svc",
        grpc_service="clinpred.tumor.v1.TumorClassificationService",
        port=50051,
        metrics_port=9101,
        example="clinpred call tumor classify --example",
    ),
}


def bentoml_env(settings: CliSettings, pilot: str, metrics_port: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["BENTOML_HOME"] = str(settings.bentoml_home(pilot))
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    options = [f"api_server.grpc.max_message_length={MAX_MESSAGE_BYTES}"]
    if metrics_port is not None:
        options.append(f"api_server.grpc.metrics.port={metrics_port}")
    env["BENTOML_CONFIG_OPTIONS"] = " ".join(options)
    return env


def register_models(settings: CliSettings, pilot: str) -> None:
    """Registers the pilot's packages in its BentoML home, in a child process that owns that home."""
    env = bentoml_env(settings, pilot)
    command = [sys.executable, "-m", "clinpred.cli.main", "models", "register", pilot, "--quiet"]
    subprocess.run(command, env=env, check=True)


def serve_command(spec: ServiceSpec, host: str, port: int, api_workers: int) -> list[str]:
    bentoml = Path(sys.executable).with_name("bentoml")
    return [
        str(bentoml),
        "serve-grpc",
        spec.import_path,
        "--host",
        host,
        "--port",
        str(port),
        "--api-workers",
        str(api_workers),
        "--enable-reflection",
    ]
