"""`clinpred train tumor` and `clinpred call tumor ...`."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from clinpred.cli.options import TlsOption, client_tls, print_message
from clinpred.cli.services import register_models
from clinpred.cli.settings import CliSettings

call_app = typer.Typer(help="Call the tumour classification service.", no_args_is_help=True)
DEFAULT_TARGET = "127.0.0.1:50051"


class Algorithm(StrEnum):
    xgboost = "xgboost"
    lightgbm = "lightgbm"


def train(
    data: Annotated[Path | None, typer.Option(help="Your own CSV of tumour features (default: WDBC from scikit-learn).")] = None,
    label_column: Annotated[str, typer.Option(help="Label column of --data.")] = "diagnosis",
    algorithm: Annotated[Algorithm, typer.Option(help="Gradient-boosting library.")] = Algorithm.xgboost,
    name: Annotated[str | None, typer.Option(help="Model name (default: <data>-<algorithm>).")] = None,
    version: Annotated[str | None, typer.Option(help="Package version (default: next minor).")] = None,
    register: Annotated[bool, typer.Option(help="Register the package in the BentoML model store.")] = True,
) -> None:
    """Train a tumour classifier: stratified 10-fold CV, calibration, conformal sets, ONNX export."""
    from clinpred.pilots.tumor.data import load_tumor_csv, load_wdbc
    from clinpred.pilots.tumor.training import train_tumor

    settings = CliSettings()
    dataset = load_wdbc() if data is None else load_tumor_csv(data, label_column=label_column)
    report = train_tumor(
        dataset, algorithm=algorithm.value, models_root=settings.models_root, version=version, name=name, progress=True
    )
    package = report.package
    typer.echo(f"model package {package.path} (sha256 {package.identity.sha256})")
    headline = {k: v for k, v in report.metrics.items() if isinstance(v, float)}
    typer.echo(json.dumps(headline, indent=2, sort_keys=True))
    if register:
        register_models(settings, "tumor")
        typer.echo("registered in the BentoML model store of the tumor service")


@call_app.command("classify")
def classify(
    target: Annotated[str, typer.Option(help="host:port of the service.")] = DEFAULT_TARGET,
    features: Annotated[Path | None, typer.Option(help="JSON file of {feature: value}; - reads standard input.")] = None,
    example: Annotated[bool, typer.Option(help="Send a real WDBC case (malignant) instead.")] = False,
    case_id: Annotated[str, typer.Option(help="Your case id, echoed back.")] = "example-1",
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer as JSON.")] = False,
    tls_dir: TlsOption = None,
) -> None:
    """Classify one case."""
    from clinpred.services.tumor.client import TumorClient

    with TumorClient(target, tls=client_tls(tls_dir)) as client:
        if example:
            values = _wdbc_example([f.name for f in client.model_info().features])
        elif features is not None:
            text = sys.stdin.read() if str(features) == "-" else features.read_text()
            values = {str(k): float(v) for k, v in json.loads(text).items()}
        else:
            raise typer.BadParameter("give --features FILE.json or --example")
        answer = client.classify(values, case_id=case_id)
    if as_json:
        print_message(answer)
        return
    typer.echo(f"case {answer.case_id}: {answer.label} (P(malignant) = {answer.positive_probability:.3f})")
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


@call_app.command("info")
def info(
    target: Annotated[str, typer.Option(help="host:port of the service.")] = DEFAULT_TARGET,
    tls_dir: TlsOption = None,
) -> None:
    """The serving model: identity, schema, metrics."""
    from clinpred.services.tumor.client import TumorClient

    with TumorClient(target, tls=client_tls(tls_dir)) as client:
        print_message(client.model_info())
