"""The services `clinpred serve` knows, and how to start them with `bentoml serve-grpc`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clinpred.cli.settings import CliSettings
    from clinpred.services.common.channel import ClientTls


@dataclass(frozen=True)
class ServiceSpec:
    pilot: str
    import_path: str
    grpc_service: str
    port: int
    metrics_port: int
    example: str
    # Environment variable naming the service's database, given a default under the state dir.
    database_env: str | None = None


SERVICES: dict[str, ServiceSpec] = {
    "tumor": ServiceSpec(
        pilot="tumor",
        import_path="clinpred.services.tumor.service:svc",
        grpc_service="clinpred.tumor.v1.TumorClassificationService",
        port=50051,
        metrics_port=9101,
        example="clinpred call tumor classify --example",
    ),
    "deterioration": ServiceSpec(
        pilot="deterioration",
        import_path="clinpred.services.deterioration.service:svc",
        grpc_service="clinpred.deterioration.v1.DeteriorationService",
        port=50052,
        metrics_port=9102,
        example="clinpred call deterioration example",
        database_env="CLINPRED_DETERIORATION_DATABASE_URL",
    ),
    "genomics": ServiceSpec(
        pilot="genomics",
        import_path="clinpred.services.genomics.service:svc",
        grpc_service="clinpred.genomics.v1.GenomicRiskService",
        port=50053,
        metrics_port=9103,
        example="clinpred call genomics assess --example --age 52 --sex female",
    ),
}


def bentoml_env(
    settings: CliSettings,
    pilot: str,
    metrics_port: int | None = None,
    *,
    log_level: str = "info",
    tls: TlsDir | None = None,
) -> dict[str, str]:
    """The environment of `bentoml serve-grpc` for `pilot`; its processes log at `log_level`.

    Without `tls` the service runs in development mode (plaintext, one tenant). With it, the
    folder's trust domain, revocation list and trial policy apply unless the environment names others.
    """
    env = dict(os.environ)
    prefix = f"CLINPRED_{pilot.upper()}_"
    # The audit trail of a local run: under the state dir, keyed by a secret made on first use.
    audit = settings.state_dir / "audit"
    if prefix + "AUDIT_KEY_FILE" not in env:
        key = audit / "audit.key"
        if not key.exists():
            from clinpred.services.common.audit import write_key_file

            audit.mkdir(parents=True, exist_ok=True)
            write_key_file(key)
        env[prefix + "AUDIT_KEY_FILE"] = str(key)
    env.setdefault(prefix + "AUDIT_DIR", str(audit))
    # Sealed calls work out of the box: one keyring per service under the state dir, made on first use.
    if prefix + "SEALING_KEYS_DIR" not in env:
        keys = settings.state_dir / "sealing-keys" / pilot
        if not any(keys.glob("*.json")):
            from datetime import UTC, datetime

            from clinpred.services.common.sealing_keys import init_keyring

            init_keyring(keys, datetime.now(UTC))
        env[prefix + "SEALING_KEYS_DIR"] = str(keys)
    env[prefix + "DEVELOPMENT_PLAINTEXT"] = "false" if tls else "true"
    if tls is not None:
        folder = tls.path.resolve()
        for name, file in (("POLICY_FILE", "policy.toml"), ("CRL_FILE", "crl.pem"), ("CA_FILE", "ca.crt")):
            if (folder / file).is_file():
                env.setdefault(prefix + name, str(folder / file))
        if (folder / "trust-domain").is_file():
            env.setdefault(prefix + "TRUST_DOMAIN", (folder / "trust-domain").read_text().strip())
    spec = SERVICES.get(pilot)
    if spec is not None and spec.database_env:
        database = settings.state_dir / pilot / "risk.db"
        database.parent.mkdir(parents=True, exist_ok=True)
        env.setdefault(spec.database_env, f"sqlite:///{database}")
    env["BENTOML_HOME"] = str(settings.bentoml_home(pilot))
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    # Every process of `bentoml serve-grpc` applies it when it imports the service or starts
    # the metrics server (clinpred.services.common.server_logs); BentoML has no such level.
    from clinpred.services.common.server_logs import checked_log_level
    from clinpred.services.common.serving import MAX_MESSAGE_BYTES

    env["CLINPRED_LOG_LEVEL"] = checked_log_level(log_level)
    options = [f"api_server.grpc.max_message_length={MAX_MESSAGE_BYTES}"]
    if metrics_port is not None:
        options.append(f"api_server.grpc.metrics.port={metrics_port}")
    env["BENTOML_CONFIG_OPTIONS"] = " ".join(options)
    return env


def warn_about_unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """Prints a warning, on stderr, for each CLINPRED_ variable of `environ` (default: this process's)
    that nothing reads, with the closest known name; names only, never values. Returns the lines."""
    from clinpred.services.common.settings_reference import unknown_variable_messages

    lines = [f"warning: {message}" for message in unknown_variable_messages(environ)]
    for line in lines:
        print(line, file=sys.stderr)
    return lines


def register_models(settings: CliSettings, pilot: str) -> None:
    """Registers the pilot's packages in its BentoML home, in a child process that owns that home."""
    env = bentoml_env(settings, pilot)
    command = [sys.executable, "-m", "clinpred.cli.main", "models", "register", pilot, "--quiet"]
    subprocess.run(command, env=env, check=True)


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate and key; with `client_ca`, clients must present a certificate it signed."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def args(self) -> list[str]:
        args = ["--ssl-certfile", str(self.cert), "--ssl-keyfile", str(self.key)]
        if self.client_ca is not None:
            args += ["--ssl-ca-certs", str(self.client_ca)]
        return args


@dataclass(frozen=True)
class TlsDir:
    """A folder of PEM files for mutual TLS: ca.crt, server.crt, server.key, client.crt, client.key."""

    path: Path

    @property
    def working_dir(self) -> Path:
        """Where `bentoml serve-grpc` must run: it opens TLS files only by paths relative to its
        working directory, and never under hidden folders (bentoml.grpc.utils.load_from_file)."""
        return self.path.resolve().parent

    def server(self) -> ServerTls:
        relative = Path(self.path.resolve().name)
        return ServerTls(relative / "server.crt", relative / "server.key", relative / "ca.crt")

    def client(self) -> ClientTls:
        from clinpred.services.common.channel import ClientTls

        return ClientTls.from_folder(self.path)

    def check(self, *names: str) -> None:
        missing = [n for n in names if not (self.path / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{self.path} lacks {', '.join(missing)}")
        hidden = [part for part in self.path.resolve().parts if part.startswith(".")]
        if hidden:
            raise FileNotFoundError(f"{self.path}: BentoML refuses TLS files under hidden folders ({hidden[0]})")


def serve_command(
    spec: ServiceSpec, host: str, port: int, api_workers: int, tls: ServerTls | None = None, *, log_level: str = "info"
) -> list[str]:
    """The `bentoml serve-grpc` command line.

    `log_level` is only checked here: it reaches the served processes through their
    environment (bentoml_env), which every one of them inherits, while BentoML's
    options know only --verbose (DEBUG, gRPC core tracing too) and --quiet (ERROR).
    """
    from clinpred.services.common.server_logs import checked_log_level

    checked_log_level(log_level)
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
        *(tls.args() if tls else []),
    ]
