"""`clinpred train tumor` and `clinpred call tumor classify|batch|stream|info`."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from clinpred.cli.options import (
    InsecureOption,
    JsonOption,
    SealedOption,
    TargetOption,
    TimeoutOption,
    TlsOption,
    client_tls,
    default_target,
    input_file,
    print_json,
    print_message,
    print_metrics,
    print_training_result,
    read_json,
    read_text,
)
from clinpred.cli.services import register_models
from clinpred.pilots.common.errors import FieldViolation, InvalidInput, ViolationCollector

if TYPE_CHECKING:
    from clinpred.services.api.tumor.v1 import tumor_pb2
    from clinpred.services.tumor.client import TumorClient

call_app = typer.Typer(help="Call the tumour classification service.", no_args_is_help=True)
tumor_app = typer.Typer(help="Tumour cases offline: an example CSV to try training and the service with.", no_args_is_help=True)
DEFAULT_TARGET = default_target("tumor")
DEFAULT_TIMEOUT = 10.0
CASE_ID_COLUMN = "case_id"
CsvOption = Annotated[
    Path,
    input_file(
        "--csv",
        "CSV with a header row of feature names and an optional case_id column; one case per row; "
        "an empty cell is a missing feature; - reads standard input.",
    ),
]


class Algorithm(StrEnum):
    xgboost = "xgboost"
    lightgbm = "lightgbm"
    logistic = "logistic"


def train(
    data: Annotated[Path | None, typer.Option(help="Your own CSV of tumour features (default: WDBC from scikit-learn).")] = None,
    label_column: Annotated[str, typer.Option(help="Label column of --data.")] = "diagnosis",
    algorithm: Annotated[
        Algorithm, typer.Option(help="Gradient-boosting library, or logistic: standardised L2 logistic regression.")
    ] = Algorithm.xgboost,
    name: Annotated[str | None, typer.Option(help="Model name (default: <data>-<algorithm>).")] = None,
    version: Annotated[
        str | None, typer.Option("--package-version", help="Version of the new package (default: the next minor).")
    ] = None,
    register: Annotated[bool, typer.Option(help="Register the package in the BentoML model store.")] = True,
    nested_seeds: Annotated[
        int,
        typer.Option(
            min=0,
            help="Split seeds of the nested 10-fold comparison with a logistic regression (binary XGBoost; about 10 s"
            " each on two cores; 0: none).",
        ),
    ] = 5,
    as_json: JsonOption = False,
) -> None:
    """Train a tumour classifier: 10-fold CV, calibration, conformal sets, ONNX export; nested CV vs logistic regression.

    Progress goes to standard error. --json: {"package": {"pilot", "name", "version", "sha256", "path"},
    "metrics": {NAME: NUMBER} (the headline figures of metrics.json), "registered": BOOL}.
    """
    from clinpred.cli.settings import CliSettings
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
        nested_seeds=nested_seeds,
    )
    headline = {k: v for k, v in report.metrics.items() if isinstance(v, float)}
    if register:
        register_models(settings, "tumor")
    print_training_result("tumor", report.package, headline, register, as_json)


@tumor_app.command("example-csv")
def example_csv(
    output: Annotated[Path, typer.Argument(help="Where to write the CSV.", dir_okay=False)],
    cases: Annotated[int | None, typer.Option(help="Number of cases (default: all 569), in WDBC's order.", min=1)] = None,
    label: Annotated[
        bool, typer.Option(help="Add the diagnosis column (for `train tumor --data`); --no-label for `call tumor batch|stream`.")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Write WDBC cases as a CSV (case_id, the 30 features, diagnosis): the format `--csv` and `train --data` read.

    --json: {"path": PATH, "cases": N, "features": N, "label_column": "diagnosis" or null}.
    """
    from clinpred.pilots.tumor.data import load_wdbc

    dataset = load_wdbc()
    names = [spec.name for spec in dataset.features]
    rows = range(len(dataset.y) if cases is None else min(cases, len(dataset.y)))
    with output.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([CASE_ID_COLUMN, *names, *(["diagnosis"] if label else [])])
        for row in rows:
            values = [repr(float(value)) for value in dataset.x[row]]
            diagnosis = [dataset.classes[int(dataset.y[row])]] if label else []
            writer.writerow([f"wdbc-{row + 1}", *values, *diagnosis])
    if as_json:
        label_column = "diagnosis" if label else None
        print_json({"path": str(output), "cases": len(rows), "features": len(names), "label_column": label_column})
    else:
        typer.echo(f"{output}: {len(rows)} cases, {len(names)} features" + (", label column diagnosis" if label else ""))


def _client(target: str, timeout: float, tls_dir: Path | None, insecure_development: bool, sealed: bool) -> TumorClient:
    from clinpred.services.tumor.client import TumorClient

    return TumorClient(target, timeout=timeout, tls=client_tls(tls_dir, insecure_development), sealed=sealed)


@call_app.command("classify")
def classify(
    features: Annotated[
        Path | None, input_file("--features", "JSON file of {feature: value}; - reads standard input.")
    ] = None,
    example: Annotated[bool, typer.Option(help="Send a real WDBC case (malignant) instead.")] = False,
    case_id: Annotated[str, typer.Option(help="Your case id, echoed back.")] = "example-1",
    encrypted: Annotated[
        bool,
        typer.Option(
            help="Encrypt the case here (CKKS, ClassifyEncrypted): the service sees neither the features nor the answer, "
            "which is decrypted and finished here from the layout it publishes. Same output as without."
        ),
    ] = False,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """Classify one case (Classify; ClassifyEncrypted with --encrypted). --json: the ClassifyResponse."""
    from clinpred.services.api.tumor.v1 import tumor_pb2

    if example == (features is not None):
        raise typer.BadParameter("give either --features FILE.json or --example", param_hint="--features")
    values = _features_from_json(features) if features is not None else None
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        if values is None:
            values = _wdbc_example([f.name for f in client.model_info().features])
        answer = client.classify_encrypted(values, case_id=case_id) if encrypted else client.classify(values, case_id=case_id)
    if as_json:
        print_message(tumor_pb2.ClassifyResponse(classification=answer))
        return
    typer.echo(f"case {answer.case_id}: {answer.label} ({_probability(answer)})")
    typer.echo(f"confidence: {answer.confidence.statement}")
    for reason in answer.explanation.top_reasons:
        typer.echo(f"  - {reason.text}")
    if answer.out_of_range:
        typer.echo("outside the training range: " + ", ".join(f.feature for f in answer.out_of_range))
    typer.echo(f"model: {answer.model.name} {answer.model.version} sha256 {answer.model.sha256}")


def _probability(answer: tumor_pb2.Classification) -> str:
    positive = answer.explanation.explained_class
    return f"P({positive}) = {answer.positive_probability:.3f}" if positive else f"P = {answer.positive_probability:.3f}"


def _features_from_json(source: Path) -> dict[str, float]:
    value = read_json(source, "--features")
    if not isinstance(value, dict):
        raise InvalidInput.of([FieldViolation("--features", "must be a JSON object of {feature: number}")])
    problems = ViolationCollector()
    for key, number in value.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            problems.add(f"--features.{key}", "is not a number")
    problems.raise_if_any()
    return {str(k): float(v) for k, v in value.items()}


def _wdbc_example(feature_names: list[str]) -> dict[str, float]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    row = data.data[list(data.target).index(0)]  # the first malignant case
    if len(feature_names) != len(row):
        raise typer.BadParameter("--example needs a model trained on WDBC; use --features", param_hint="--example")
    return {name: float(value) for name, value in zip(feature_names, row)}


@dataclass(frozen=True)
class CsvCase:
    line: int  # in the file, counting the header as line 1
    case_id: str
    features: dict[str, float]


def read_cases_csv(source: Path) -> list[CsvCase]:
    """Every row of a cases CSV; every cell that is not a number is named (file:line:column), never echoed."""
    name = "<stdin>" if str(source) == "-" else source.name
    text = read_text(source, "--csv")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise InvalidInput.of([FieldViolation("--csv", "has no header row of feature names")])
    columns = [cell.strip() for cell in header]
    problems = ViolationCollector()
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    for column in duplicated:
        problems.add(f"{name}:1:{column}", "appears more than once in the header")
    problems.raise_if_any()
    cases: list[CsvCase] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            problems.add(f"{name}:{line}", f"has {len(row)} cells, the header {len(columns)}")
            continue
        case_id = str(len(cases) + 1)
        features: dict[str, float] = {}
        for column, cell in zip(columns, row):
            cell = cell.strip()
            if column == CASE_ID_COLUMN:
                case_id = cell or case_id
            elif cell:
                try:
                    features[column] = float(cell)
                except ValueError:
                    problems.add(f"{name}:{line}:{column}", "is not a number")
        cases.append(CsvCase(line, case_id, features))
    if not cases and not problems:
        problems.add("--csv", "has no rows after the header")
    problems.raise_if_any()
    return cases


def _table_row(answer: tumor_pb2.Classification) -> str:
    prediction_set = "{" + ", ".join(answer.confidence.prediction_set) + "}"
    flags = f"\toutside training range: {', '.join(f.feature for f in answer.out_of_range)}" if answer.out_of_range else ""
    return f"{answer.case_id}\t{answer.label}\t{answer.positive_probability:.3f}\t{prediction_set}{flags}"


TABLE_HEADER = "case_id\tlabel\tp_positive\tprediction_set"


@call_app.command("batch")
def batch(
    cases_csv: CsvOption,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """Classify every row of a CSV in one call (ClassifyBatch). --json: the ClassifyBatchResponse.

    At most the service's max_batch_size rows (`clinpred call tumor info`); `stream` takes any number.
    In the service's errors, cases[0] is the first row after the header.
    """
    import grpc

    from clinpred.services.api.tumor.v1 import tumor_pb2

    cases = read_cases_csv(cases_csv)
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        try:
            answers = client.classify_batch((c.case_id, c.features) for c in cases)
        except grpc.RpcError as error:
            error.add_note("cases[i] is data row i+1 of the CSV: file line i+2")
            raise
    if as_json:
        print_message(tumor_pb2.ClassifyBatchResponse(classifications=answers))
        return
    _print_table(answers)


def _print_table(answers: Iterable[tumor_pb2.Classification]) -> None:
    typer.echo(TABLE_HEADER)
    for answer in answers:
        typer.echo(_table_row(answer))
        sys.stdout.flush()


@call_app.command("stream")
def stream(
    cases_csv: CsvOption,
    target: TargetOption = DEFAULT_TARGET,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """Send each row of a CSV as one message (ClassifyStream) and print each answer as it arrives.

    --json: one ClassifyStreamResponse per line (JSON Lines). The CSV is checked whole before anything is sent.
    """
    from clinpred.services.api.tumor.v1 import tumor_pb2

    cases = read_cases_csv(cases_csv)
    with _client(target, DEFAULT_TIMEOUT, tls_dir, insecure_development, sealed) as client:
        answers = client.classify_stream((c.case_id, c.features) for c in cases)
        if as_json:
            for answer in answers:
                print_message(tumor_pb2.ClassifyStreamResponse(classification=answer), one_line=True)
        else:
            _print_table(answers)


@call_app.command("info")
def info(
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """The serving model: identity, classes, features, metrics (GetModelInfo). --json: the GetModelInfoResponse."""
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        answer = client.model_info()
    if as_json:
        print_message(answer)
        return
    typer.echo(f"model: {answer.model.name} {answer.model.version} sha256 {answer.model.sha256}")
    typer.echo(f"classes: {', '.join(answer.classes)} (positive: {answer.positive_class})")
    typer.echo(f"conformal coverage {answer.conformal_coverage:.0%}; at most {answer.max_batch_size} cases per batch")
    if answer.conformal_class_coverage:
        measured = ", ".join(f"{c} {v:.1%}" for c, v in sorted(answer.conformal_class_coverage.items()))
        typer.echo(f"conformal coverage per class on held-out folds: {measured}")
    if answer.training_prevalence:
        typer.echo(
            f"{answer.positive_class} share: {answer.clinical_prevalence:.1%} in this deployment's answers "
            f"({answer.training_prevalence:.1%} in the training data)"
        )
    print_metrics(answer.metrics)
    typer.echo(f"features ({len(answer.features)}), with their training range:")
    width = max((len(f.name) for f in answer.features), default=0)
    for feature in answer.features:
        unit = f" {feature.unit}" if feature.unit else ""
        typer.echo(f"  {feature.name:<{width}}  {feature.training_min:g} .. {feature.training_max:g}{unit}")
