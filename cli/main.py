"""`clinpred`: one entry point for people and scripts.

    clinpred serve [PILOT|all] [--port N]     start services with `bentoml serve-grpc`
    clinpred train PILOT [...]                train a model package
    clinpred call PILOT ...                   call a running service
    clinpred genomics score|example-vcf       polygenic scores offline
    clinpred tumor example-csv FILE           WDBC cases as a CSV to try things with
    clinpred models list | register PILOT     model packages and the BentoML model store
    clinpred tls init DIR                     a private CA and certificates for trying mutual TLS
    clinpred tls client|revoke DIR ...        client certificates with an identity, and revoking them
    clinpred audit keygen|verify|export       the audit trail: key, integrity check, FHIR AuditEvents
    clinpred keys init|rotate|list DIR        sealing keys (HPKE) of sealed requests
    clinpred bento build [SERVICE|all]        Bentos (and their images' Dockerfiles) of the services

Failures map to the exit codes of `clinpred.cli.errors.ExitCode`, listed by `clinpred --help`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

import clinpred
from clinpred.cli import audit, deterioration, genomics, keys, tumor
from clinpred.cli.bento import bento_app
from clinpred.cli.errors import DEBUG_ENV, ExitCode, ReportingGroup, exit_codes_help
from clinpred.cli.options import JsonOption, TlsOption, default_tls_folder, fail, print_json, tls_folder
from clinpred.cli.services import (
    SERVICES,
    ServiceSpec,
    TlsDir,
    bentoml_env,
    register_models,
    serve_command,
)
from clinpred.pilots.common.errors import FieldViolation, InvalidInput

if TYPE_CHECKING:
    from clinpred.cli.certificates import IssuedCertificate
    from clinpred.cli.settings import CliSettings

JSON_HELP = (
    "--json prints, for a `call`, the API's response message as proto3 JSON (google.protobuf.json_format."
    "MessageToJson; a stream prints one message per line); for a local command, the JSON object its --help describes."
)

# Local variables stay out of tracebacks: they may hold patient data.
app = typer.Typer(
    cls=ReportingGroup,
    help="clinpred: clinical prediction services over gRPC.",
    epilog=f"{JSON_HELP}\n\n{exit_codes_help()}",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
train_app = typer.Typer(help="Train a model package under models/<pilot>/<name>/<version>/.", no_args_is_help=True)
call_app = typer.Typer(help="Call a running service.", no_args_is_help=True)
models_app = typer.Typer(help="Model packages and the BentoML model store.", no_args_is_help=True)
tls_app = typer.Typer(help="Certificates for mutual TLS.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(call_app, name="call")
app.add_typer(models_app, name="models")
app.add_typer(tls_app, name="tls")

simulate_app = typer.Typer(help="Simulate cohorts for training and testing.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")

# Each pilot adds its commands here.
train_app.command("tumor")(tumor.train)
call_app.add_typer(tumor.call_app, name="tumor")
app.add_typer(tumor.tumor_app, name="tumor")
train_app.command("genomics")(genomics.train)
call_app.add_typer(genomics.call_app, name="genomics")
app.add_typer(genomics.genomics_app, name="genomics")
train_app.command("deterioration")(deterioration.train)
simulate_app.command("deterioration")(deterioration.simulate)
call_app.add_typer(deterioration.call_app, name="deterioration")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(bento_app, name="bento")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"clinpred {clinpred.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", envvar=DEBUG_ENV, help="On failure, print the traceback too.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """clinpred: clinical prediction services over gRPC."""
    ctx.meta["clinpred.debug"] = debug


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"



ServeTarget = StrEnum("ServeTarget", [*SERVICES, "all"])  # type: ignore[misc]


def _wait_until_serving(
    spec: ServiceSpec, target: str, process: subprocess.Popen[bytes], timeout: float, tls: TlsDir | None
) -> None:
    from clinpred.services.common.channel import is_serving

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise fail(f"{spec.pilot} stopped while starting (exit code {process.returncode}); see its log above")
        if is_serving(target, spec.grpc_service, timeout=1.0, tls=tls.client() if tls else None):
            return
        time.sleep(0.5)
    raise fail(f"{spec.pilot} did not report SERVING within {timeout:.0f} s")


def _port_is_free(host: str, port: int) -> bool:
    # BentoML binds with SO_REUSEPORT, so a second server on a busy port would
    # silently share it with the first; probe without that option instead.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each `bentoml serve-grpc`, SIGKILL after 15 s; then to whatever of theirs is left.

    BentoML's arbiter starts its API workers and metrics server in process groups of their own, so
    a killed arbiter would leave them serving (and holding the ports) without this last step."""
    import psutil

    descendants: list[psutil.Process] = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            descendants.extend(psutil.Process(process.pid).children(recursive=True))
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    _, alive = psutil.wait_procs(descendants, timeout=5)
    for leftover in alive:
        with contextlib.suppress(psutil.Error):
            leftover.kill()


DEVELOPMENT_WARNING = """\
WARNING ========================================================================
WARNING  --insecure-development: serving PLAINTEXT in DEVELOPMENT MODE.
WARNING  No TLS and no client certificates: whoever reaches these ports is the
WARNING  development tenant with every scope, and anyone on the way can read and
WARNING  change the traffic. Never serve patient data like this.
WARNING  Without the flag `clinpred serve` serves mutual TLS (default folder
WARNING  <state dir>/tls, made on first use; or --tls-dir DIR).
WARNING ========================================================================"""
WILDCARD_HOSTS = ("0.0.0.0", "::")
CERTIFICATE_HOSTS = ["localhost", "127.0.0.1"]
SERVER_FILES = ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")


def _serving_tls(settings: CliSettings, tls_dir: Path | None, host: str) -> TlsDir:
    """The folder given, else the state dir's, which is made (a new private CA) on first use."""
    if tls_dir is not None:
        return tls_folder(tls_dir, *SERVER_FILES)
    path = settings.tls_dir
    if not path.exists():
        from clinpred.cli.certificates import write_mutual_tls_folder

        hosts = CERTIFICATE_HOSTS + ([host] if host not in (*WILDCARD_HOSTS, *CERTIFICATE_HOSTS) else [])
        issued = write_mutual_tls_folder(path, hosts=hosts)
        typer.echo(
            f"made {path}/ for mutual TLS: a private CA, a server certificate for {', '.join(hosts)} and, for trying"
            f" the examples, client.crt ({issued.spiffe_id}, every scope in policy.toml)"
        )
    return default_tls_folder(*SERVER_FILES)


def _example(spec: ServiceSpec, target: str, tls_dir: Path | None, settings: CliSettings, insecure: bool) -> str:
    """The `try:` command of the banner, with only the options that differ from `clinpred call`'s defaults."""
    example = spec.example + ("" if target == f"127.0.0.1:{spec.port}" else f" --target {target}")
    if tls_dir is not None and tls_dir.resolve() != settings.tls_dir.resolve():
        example += f" --tls-dir {shlex.quote(str(tls_dir))}"
    return example + (" --insecure-development" if insecure else "")


@app.command()
def serve(
    service: Annotated[ServeTarget, typer.Argument(help="Which service, or all of them.")] = "all",  # type: ignore[assignment]
    port: Annotated[int | None, typer.Option(help="gRPC port (with `all`: of the first service; the others follow).")] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    api_workers: Annotated[int, typer.Option(help="API worker processes per service.")] = 1,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port (with `all`: of the first service).")] = None,
    startup_timeout: Annotated[float, typer.Option(help="Seconds to wait for SERVING.")] = 120.0,
    log_level: Annotated[
        LogLevel, typer.Option(help="Least severe log records shown; health checks are logged only at debug.")
    ] = LogLevel.info,
    tls_dir: TlsOption = None,
    insecure_development: Annotated[
        bool,
        typer.Option(
            "--insecure-development",
            help="Serve plaintext in development mode: no certificates, every caller the development tenant with"
            " every scope. Never with patient data.",
        ),
    ] = False,
) -> None:
    """Start services with `bentoml serve-grpc` in the foreground; Ctrl-C (or SIGTERM) stops them.

    Mutual TLS with the certificates of --tls-dir, by default of <state dir>/tls (var/tls), which is made on
    first use: a private CA, a server certificate and a client certificate for trying the examples.
    """
    from clinpred.cli.settings import CliSettings

    settings = CliSettings()
    tls: TlsDir | None = None
    if insecure_development:
        if tls_dir is not None:
            raise typer.BadParameter("give either --tls-dir or --insecure-development", param_hint="--insecure-development")
        typer.echo(DEVELOPMENT_WARNING, err=True)
    else:
        tls = _serving_tls(settings, tls_dir, host)
    specs = list(SERVICES.values()) if service == "all" else [SERVICES[str(service)]]
    from clinpred.services.common.server_logs import checked_log_level

    server_log_level = checked_log_level(log_level.value)
    processes: list[subprocess.Popen[bytes]] = []
    lines = []
    # Stop the services on SIGTERM too (kill, systemd, a test harness), not only on Ctrl-C.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        for offset, spec in enumerate(specs):
            grpc_port = (port + offset) if port is not None else spec.port
            prom_port = (metrics_port + offset) if metrics_port is not None else spec.metrics_port
            for kind, number in (("gRPC", grpc_port), ("metrics", prom_port)):
                if not _port_is_free(host, number):
                    raise fail(
                        f"{spec.pilot}: {kind} port {number} on {host} is already in use; choose another",
                        ExitCode.FAILED_PRECONDITION,
                    )
            register_models(settings, spec.pilot)
            process = subprocess.Popen(
                serve_command(spec, host, grpc_port, api_workers, tls.server() if tls else None, log_level=server_log_level),
                env=bentoml_env(settings, spec.pilot, prom_port, log_level=server_log_level, tls=tls),
                cwd=tls.working_dir if tls else None,
                start_new_session=True,
            )
            processes.append(process)
            shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
            _wait_until_serving(spec, f"{shown}:{grpc_port}", process, startup_timeout, tls)
            example = _example(spec, f"{shown}:{grpc_port}", tls_dir, settings, insecure_development)
            scheme, note = ("grpcs", " (mutual TLS)") if tls else ("grpc", " (PLAINTEXT, development mode)")
            # The metrics port has the gRPC port's host and TLS (services/common/metrics_server.py).
            metrics_scheme = "https" if tls else "http"
            lines.append(
                f"  {spec.pilot:<14} {scheme}://{shown}:{grpc_port}{note}"
                f"   metrics {metrics_scheme}://{shown}:{prom_port}/metrics\n"
                f"  {'':<14} try: {example}"
            )
        typer.echo("\nclinpred is serving (Ctrl-C stops):\n" + "\n".join(lines) + "\n", err=False)
        sys.stdout.flush()
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        stopped = [s.pilot for s, p in zip(specs, processes) if p.poll() is not None]
        raise fail(f"service stopped unexpectedly: {', '.join(stopped)}")
    except KeyboardInterrupt:
        typer.echo("stopping", err=True)
    finally:
        _stop(processes)


@models_app.command("list")
def models_list(as_json: JsonOption = False) -> None:
    """Model packages under models/ (CLINPRED_MODELS_ROOT): pilot, name, version, SHA-256.

    --json: {"models_root": PATH, "packages": [{"pilot", "name", "version", "sha256", "path"}]}, oldest version first.
    """
    from clinpred.cli.settings import CliSettings
    from clinpred.pilots.common.model_package import list_packages

    settings = CliSettings()
    packages = list_packages(settings.models_root)
    if as_json:
        print_json({
            "models_root": str(settings.models_root),
            "packages": [
                {"pilot": p.pilot, "name": p.identity.name, "version": p.identity.version, "sha256": p.identity.sha256,
                 "path": str(p.path)}
                for p in packages
            ],
        })
        return
    if not packages:
        typer.echo(f"no model packages under {settings.models_root}; `clinpred train PILOT` makes one", err=True)
    for package in packages:
        identity = package.identity
        typer.echo(f"{package.pilot:<14} {identity.name:<24} {identity.version:<8} {identity.sha256}")


@models_app.command("register")
def models_register(
    pilot: Annotated[str, typer.Argument(help="Pilot whose packages to register.")],
    quiet: Annotated[bool, typer.Option(help="Print nothing on success.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Register the pilot's packages in the BentoML model store (BENTOML_HOME, else the pilot's own home).

    --json: {"bentoml_home": PATH, "tags": ["name:version", ...]}.
    """
    from clinpred.cli.settings import CliSettings

    settings = CliSettings()
    os.environ.setdefault("BENTOML_HOME", str(settings.bentoml_home(pilot)))
    from clinpred.services.common.model_store import register_packages

    tags = register_packages(settings.models_root, pilot)
    if not tags:
        raise fail(f"no {pilot} model package under {settings.models_root}; run `clinpred train {pilot}`", ExitCode.NOT_FOUND)
    if as_json:
        print_json({"bentoml_home": os.environ["BENTOML_HOME"], "tags": [str(tag) for tag in tags]})
    elif not quiet:
        for tag in tags:
            typer.echo(f"{tag} in {os.environ['BENTOML_HOME']}")


TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant of the client identity ([a-z0-9][a-z0-9._-]{0,62}).")]


def _checked_names(**names: str) -> None:
    from clinpred.services.common.identity import NAME_RULE, is_identity_name

    bad = [FieldViolation(f"--{option}", f"must match {NAME_RULE}") for option, name in names.items()
           if not is_identity_name(name)]
    if bad:
        raise InvalidInput.of(bad)


def _issued_json(issued: IssuedCertificate) -> dict[str, str]:
    return {
        "certificate": str(issued.certificate),
        "key": str(issued.key),
        "spiffe_id": issued.spiffe_id,
        "serial": f"{issued.serial_number:x}",
        "not_after": issued.not_valid_after.isoformat(),
    }


@tls_app.command("init")
def tls_init(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Where to write the CA, server and client certificates.")],
    host: Annotated[list[str], typer.Option(help="Names the server certificate is valid for.")] = ["localhost", "127.0.0.1"],  # noqa: B006
    days: Annotated[int, typer.Option(min=1, help="Validity in days.")] = 365,
    trust_domain: Annotated[
        str, typer.Option(help="Trust domain of the client identities (spiffe://<trust domain>/...).")
    ] = "clinpred.local",  # identity.DEFAULT_TRUST_DOMAIN, without importing it for every command
    tenant: TenantOption = "demo",
    client: Annotated[str, typer.Option("--client", help="Name of the default client (client.crt).")] = "cli",
    as_json: JsonOption = False,
) -> None:
    """A private CA (ca.crt, ca.key), a server certificate and one client certificate, for trying mutual TLS.

    client.crt names spiffe://<trust domain>/tenant/<tenant>/client/<client>; the folder also holds
    `trust-domain` (one line), `crl.pem` (the CA's revocation list, empty at first) and `policy.toml`
    (an access policy granting that client every scope; `clinpred serve --tls-dir` applies it).
    Production deployments use certificates from the hospital's own PKI.
    --json: {"folder": PATH, "files": [NAME, ...], "hosts": [...], "days": N, "trust_domain": D,
    "client": {"certificate", "key", "spiffe_id", "serial", "not_after"}}.
    """
    from clinpred.cli.certificates import FOLDER_FILES, write_mutual_tls_folder
    from clinpred.services.common.identity import checked_trust_domain

    _checked_names(tenant=tenant, client=client)
    try:
        checked_trust_domain(trust_domain)
    except ValueError as error:
        raise InvalidInput.of([FieldViolation("--trust-domain", str(error))]) from None
    issued = write_mutual_tls_folder(folder, hosts=host, days=days, trust_domain=trust_domain, tenant=tenant, client=client)
    if as_json:
        print_json({"folder": str(folder), "files": list(FOLDER_FILES), "hosts": host, "days": days,
                    "trust_domain": trust_domain, "client": _issued_json(issued)})
        return
    typer.echo(f"wrote {', '.join(FOLDER_FILES)} to {folder}")
    typer.echo(f"client.crt is {issued.spiffe_id}")


@tls_app.command("client")
def tls_client(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="A folder `clinpred tls init` wrote (its CA signs).")],
    tenant: TenantOption,
    name: Annotated[str, typer.Option("--name", help="Client name ([a-z0-9][a-z0-9._-]{0,62}).")],
    days: Annotated[int, typer.Option(min=1, help="Validity in days.")] = 365,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write PREFIX.crt and PREFIX.key (default DIR/clients/TENANT/NAME).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A client certificate for spiffe://<trust domain>/tenant/<tenant>/client/<name>, signed by the folder's CA.

    --json: {"certificate": PATH, "key": PATH, "spiffe_id": URI, "serial": HEX, "not_after": ISO-8601}.
    """
    from clinpred.cli.certificates import CertificateAuthorityError, issue_client_certificate

    _checked_names(tenant=tenant, name=name)
    try:
        issued = issue_client_certificate(folder, tenant, name, days=days, out=out)
    except CertificateAuthorityError as error:
        raise typer.BadParameter(str(error), param_hint="DIR") from None
    if as_json:
        print_json(_issued_json(issued))
        return
    typer.echo(f"wrote {issued.certificate} and {issued.key}: {issued.spiffe_id}")


@tls_app.command("revoke")
def tls_revoke(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="A folder `clinpred tls init` wrote.")],
    certificate: Annotated[
        Path, typer.Argument(metavar="CERT_FILE", help="The certificate to revoke (PEM or DER), issued by DIR's CA.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Adds the certificate's serial number to DIR/crl.pem (created if missing), signed by the CA.

    Revoking a certificate twice changes nothing.
    --json: {"crl": PATH, "serial": HEX, "newly_revoked": BOOL, "revoked_count": N}.
    """
    from clinpred.cli.certificates import CertificateAuthorityError, revoke_certificate

    if not certificate.is_file():
        raise typer.BadParameter(f"file {str(certificate)!r} does not exist.", param_hint="CERT_FILE")
    try:
        revocation = revoke_certificate(folder, certificate)
    except CertificateAuthorityError as error:
        raise InvalidInput.of([FieldViolation("CERT_FILE", str(error))]) from None
    if as_json:
        print_json({"crl": str(revocation.crl), "serial": f"{revocation.serial_number:x}",
                    "newly_revoked": revocation.newly_revoked, "revoked_count": revocation.revoked_count})
        return
    state = "revoked" if revocation.newly_revoked else "was already revoked"
    typer.echo(f"serial {revocation.serial_number:x} {state}; {revocation.crl} lists {revocation.revoked_count}")


def run() -> None:
    """The console script `clinpred`."""
    app(prog_name="clinpred")


if __name__ == "__main__":
    run()
