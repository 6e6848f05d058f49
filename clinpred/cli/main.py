"""`clinpred`: one entry point for people and scripts.

    clinpred serve [tumor|all] [--port N]      start services with `bentoml serve-grpc`
    clinpred train tumor [--data FILE.csv]     train a model package
    clinpred models list | register PILOT      model packages and the BentoML model store
    clinpred call tumor classify|info          call a running service
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from clinpred.cli.services import SERVICES, ServiceSpec, TlsDir, bentoml_env, register_models, serve_command
from clinpred.cli.settings import CliSettings

app = typer.Typer(help="clinpred: clinical prediction services over gRPC.", no_args_is_help=True)
tls_app = typer.Typer(help="Certificates for mutual TLS.", no_args_is_help=True)
models_app = typer.Typer(help="Model packages and the BentoML model store.", no_args_is_help=True)
call_app = typer.Typer(help="Call a running service.", no_args_is_help=True)
tumor_call = typer.Typer(help="Call the tumour classification service.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(tls_app, name="tls")
app.add_typer(call_app, name="call")
call_app.add_typer(tumor_call, name="tumor")


class ServeTarget(StrEnum):
    tumor = "tumor"
    all = "all"


class TrainPilot(StrEnum):
    tumor = "tumor"


class Algorithm(StrEnum):
    xgboost = "xgboost"
    lightgbm = "lightgbm"


def fail(message: str) -> typer.Exit:
    """Prints `message` to standard error; raise the result to exit with status 1."""
    typer.echo(message, err=True)
    return typer.Exit(1)


TlsOption = Annotated[
    Path | None,
    typer.Option(help="Mutual TLS: folder with ca.crt, server.crt, server.key, client.crt, client.key."),
]


def _tls(tls_dir: Path | None, *needed: str) -> TlsDir | None:
    if tls_dir is None:
        return None
    folder = TlsDir(tls_dir)
    try:
        folder.check(*needed)
    except FileNotFoundError as error:
        raise typer.BadParameter(str(error)) from None
    return folder


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


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@app.command()
def serve(
    service: Annotated[ServeTarget, typer.Argument(help="Which service, or all of them.")] = ServeTarget.all,
    port: Annotated[int | None, typer.Option(help="gRPC port (with `all`: of the first service; the others follow).")] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    api_workers: Annotated[int, typer.Option(help="API worker processes per service.")] = 1,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port (with `all`: of the first service).")] = None,
    startup_timeout: Annotated[float, typer.Option(help="Seconds to wait for SERVING.")] = 120.0,
    tls_dir: TlsOption = None,
) -> None:
    """Start services with `bentoml serve-grpc` in the foreground; Ctrl-C stops them."""
    settings = CliSettings()
    tls = _tls(tls_dir, "ca.crt", "server.crt", "server.key", "client.crt", "client.key")
    specs = list(SERVICES.values()) if service is ServeTarget.all else [SERVICES[service.value]]
    processes: list[subprocess.Popen[bytes]] = []
    lines = []
    try:
        for offset, spec in enumerate(specs):
            grpc_port = (port + offset) if port is not None else spec.port
            prom_port = (metrics_port + offset) if metrics_port is not None else spec.metrics_port
            register_models(settings, spec.pilot)
            process = subprocess.Popen(
                serve_command(spec, host, grpc_port, api_workers, tls.server() if tls else None),
                env=bentoml_env(settings, spec.pilot, prom_port),
                start_new_session=True,
            )
            processes.append(process)
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            _wait_until_serving(spec, f"{shown}:{grpc_port}", process, startup_timeout, tls)
            example = spec.example + ("" if grpc_port == spec.port else f" --target {shown}:{grpc_port}")
            example += f" --tls-dir {tls_dir}" if tls_dir else ""
            scheme, note = ("grpcs", " (mutual TLS)") if tls else ("grpc", "")
            lines.append(
                f"  {spec.pilot:<14} {scheme}://{shown}:{grpc_port}{note}   metrics http://{shown}:{prom_port}/\n"
                f"  {'':<14} try: {example}"
            )
        typer.echo("\nclinpred is serving (Ctrl-C stops):\n" + "\n".join(lines) + "\n", err=False)
        sys.stdout.flush()
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        stopped = [s.pilot for s, p in zip(specs, processes) if p.poll() is not None]
        raise fail(f"service stopped unexpectedly: {', '.join(stopped)}")
    except KeyboardInterrupt:
        typer.echo("stopping")
    finally:
        _stop(processes)


@app.command()
def train(
    pilot: Annotated[TrainPilot, typer.Argument(help="Which pilot's model.")],
    data: Annotated[Path | None, typer.Option(help="Your own CSV of tumour features (default: WDBC from scikit-learn).")] = None,
    label_column: Annotated[str, typer.Option(help="Label column of --data.")] = "label",
    algorithm: Annotated[Algorithm, typer.Option(help="Gradient-boosting library.")] = Algorithm.xgboost,
    name: Annotated[str | None, typer.Option(help="Model name (default: <data>-<algorithm>).")] = None,
    version: Annotated[str | None, typer.Option(help="Package version (default: next minor).")] = None,
    register: Annotated[bool, typer.Option(help="Register the package in the BentoML model store.")] = True,
) -> None:
    """Train a model package under models/<pilot>/<name>/<version>/."""
    from clinpred.pilots.tumor.data import load_tumor_csv, load_wdbc
    from clinpred.pilots.tumor.training import train_tumor

    settings = CliSettings()
    dataset = load_wdbc() if data is None else load_tumor_csv(data, label_column=label_column)
    report = train_tumor(
        dataset,
        algorithm=algorithm.value,
        models_root=settings.models_root,
        version=version,
        name=name,
        progress=True,
    )
    package = report.package
    typer.echo(f"model package {package.path} (sha256 {package.identity.sha256})")
    typer.echo(json.dumps(report.metrics, indent=2, sort_keys=True))
    if register:
        register_models(settings, pilot.value)
        typer.echo(f"registered in the BentoML model store of {pilot.value}")


@models_app.command("list")
def models_list() -> None:
    """Model packages under models/, with version and SHA-256."""
    from clinpred.pilots.common.model_package import list_packages

    settings = CliSettings()
    for package in list_packages(settings.models_root):
        identity = package.identity
        typer.echo(f"{package.pilot:<14} {identity.name:<24} {identity.version:<8} {identity.sha256}")


@models_app.command("register")
def models_register(
    pilot: Annotated[str, typer.Argument(help="Pilot whose packages to register.")],
    quiet: Annotated[bool, typer.Option(help="Print nothing on success.")] = False,
) -> None:
    """Register the pilot's packages in the BentoML model store (BENTOML_HOME, else the pilot's own home)."""
    settings = CliSettings()
    os.environ.setdefault("BENTOML_HOME", str(settings.bentoml_home(pilot)))
    from clinpred.services.common.model_store import register_packages

    tags = register_packages(settings.models_root, pilot)
    if not tags:
        raise fail(f"no {pilot} model package under {settings.models_root}; run `clinpred train {pilot}`")
    if not quiet:
        for tag in tags:
            typer.echo(f"{tag} in {os.environ['BENTOML_HOME']}")


@tls_app.command("init")
def tls_init(
    folder: Annotated[Path, typer.Argument(help="Where to write ca.crt, server.crt/key, client.crt/key.")],
    host: Annotated[list[str], typer.Option(help="Names the server certificate is valid for.")] = ["localhost", "127.0.0.1"],  # noqa: B006
    days: Annotated[int, typer.Option(help="Validity in days.")] = 365,
) -> None:
    """A private CA with one server and one client certificate, for trying mutual TLS.

    Production deployments use certificates from the hospital's own PKI.
    """
    from clinpred.cli.certificates import write_mutual_tls_folder

    write_mutual_tls_folder(folder, hosts=host, days=days)
    typer.echo(f"wrote ca.crt, server.crt, server.key, client.crt, client.key to {folder}")


def _print_message(message: object) -> None:
    from google.protobuf.json_format import MessageToJson

    typer.echo(MessageToJson(message))  # type: ignore[arg-type]


@tumor_call.command("classify")
def call_tumor_classify(
    target: Annotated[str, typer.Option(help="host:port of the service.")] = "127.0.0.1:50051",
    features: Annotated[Path | None, typer.Option(help="JSON file of {feature: value}; - reads standard input.")] = None,
    example: Annotated[bool, typer.Option(help="Send a real WDBC case (malignant) instead.")] = False,
    case_id: Annotated[str, typer.Option(help="Your case id, echoed back.")] = "example-1",
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer as JSON.")] = False,
    tls_dir: TlsOption = None,
) -> None:
    """Classify one case."""
    from clinpred.services.tumor.client import TumorClient

    tls = _tls(tls_dir, "ca.crt", "client.crt", "client.key")
    with TumorClient(target, tls=tls.client() if tls else None) as client:
        if example:
            values = _wdbc_example([f.name for f in client.model_info().features])
        elif features is not None:
            text = sys.stdin.read() if str(features) == "-" else features.read_text()
            values = {str(k): float(v) for k, v in json.loads(text).items()}
        else:
            raise typer.BadParameter("give --features FILE.json or --example")
        answer = client.classify(values, case_id=case_id)
    if as_json:
        _print_message(answer)
        return
    probability = answer.positive_probability
    typer.echo(f"case {answer.case_id}: {answer.label} (P(malignant) = {probability:.3f})")
    typer.echo(f"confidence: {answer.confidence.statement}")
    for reason in answer.explanation.top_reasons:
        typer.echo(f"  - {reason.text}")
    if answer.out_of_range:
        typer.echo("outside the training range: " + ", ".join(f.feature for f in answer.out_of_range))
    typer.echo(f"model: {answer.model.name} {answer.model.version} sha256 {answer.model.sha256}")


def _wdbc_example(feature_names: list[str]) -> dict[str, float]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    row = data.data[list(data.target).index(0)]  # the first malignant case
    if len(feature_names) != len(row):
        raise typer.BadParameter("--example needs a model trained on WDBC; use --features")
    return {name: float(value) for name, value in zip(feature_names, row)}


@tumor_call.command("info")
def call_tumor_info(
    target: Annotated[str, typer.Option(help="host:port of the service.")] = "127.0.0.1:50051",
    tls_dir: TlsOption = None,
) -> None:
    """The serving model: identity, schema, metrics."""
    from clinpred.services.tumor.client import TumorClient

    tls = _tls(tls_dir, "ca.crt", "client.crt", "client.key")
    with TumorClient(target, tls=tls.client() if tls else None) as client:
        _print_message(client.model_info())


if __name__ == "__main__":
    app()
