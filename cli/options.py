"""Options and output that mean the same in every command.

- `--target host:port`: the service to call (default: where `clinpred serve` starts it).
- `--tls-dir DIR`: mutual TLS with the files `clinpred tls init` writes; default `<state dir>/tls`, the
  folder `clinpred serve` makes on first use (`var/tls` of the checkout).
- `--insecure-development`: plaintext, for a server started with `clinpred serve --insecure-development`.
- `--timeout SECONDS`: the deadline of each call.
- `--sealed`: the call travels sealed (HPKE) to the service's key and its answer comes back sealed.
- `--json`: for a call, the API's response message as proto3 JSON (`MessageToJson`); streams print one
  message per line (JSON Lines). For a local command, the JSON object its help describes.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from clinpred.cli.errors import ExitCode
from clinpred.cli.services import SERVICES, TlsDir
from clinpred.pilots.common.errors import FieldViolation, InvalidInput

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from clinpred.pilots.common.model_package import ModelPackage
    from clinpred.services.common.channel import ClientTls

TlsOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-dir",
        help="Mutual TLS with the files of this folder (ca.crt, server.crt/.key, client.crt/.key, as `clinpred tls init`"
        " writes them). Default: <state dir>/tls (var/tls of the checkout), which `clinpred serve` makes on first use.",
        show_default=False,
    ),
]
InsecureOption = Annotated[
    bool,
    typer.Option(
        "--insecure-development",
        help="Development only: plaintext, no certificates, one tenant with every scope. Never with patient data.",
    ),
]
SealedOption = Annotated[
    bool,
    typer.Option(
        "--sealed",
        help="Seal the request (HPKE) to the service's public key and open its sealed answer here: a proxy or an"
        " ingress between you and the service sees neither the method nor its data. Unary calls only.",
    ),
]
CLIENT_FILES = ("ca.crt", "client.crt", "client.key")
TargetOption = Annotated[str, typer.Option("--target", help="host:port of the service.")]
TimeoutOption = Annotated[float, typer.Option("--timeout", min=0.001, help="Deadline of each call, in seconds.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the answer as JSON (see `clinpred --help`).")]


def input_file(name: str, help: str) -> Any:
    """The option of a file the command reads with `read_text`; "-" reads standard input."""
    # Not exists=True: typer 0.29 then refuses "-" for a Path even with allow_dash; `read_text` checks instead.
    return typer.Option(name, help=help, dir_okay=False)


def default_target(pilot: str) -> str:
    return f"127.0.0.1:{SERVICES[pilot].port}"


def fail(message: str, code: ExitCode = ExitCode.ERROR) -> typer.Exit:
    """Prints `message` to standard error; raise the result to exit with `code`."""
    typer.echo(message, err=True)
    return typer.Exit(code)


def tls_folder(tls_dir: Path, *needed: str) -> TlsDir:
    """The folder given as --tls-dir, with the files `needed`; a missing one is a usage error."""
    folder = TlsDir(tls_dir)
    try:
        folder.check(*needed)
    except FileNotFoundError as error:
        raise typer.BadParameter(str(error), param_hint="--tls-dir") from None
    return folder


def default_tls_folder(*needed: str) -> TlsDir:
    """The state dir's TLS folder, with the files `needed`; exits (failed precondition) when they are missing."""
    from clinpred.cli.settings import CliSettings

    path = CliSettings().tls_dir
    if not path.is_dir():
        raise fail(
            f"no TLS folder at {path}: start the services with `clinpred serve` (it makes one there) or run"
            f" `clinpred tls init {path}`; --tls-dir names another folder, --insecure-development calls a plaintext"
            " development server",
            ExitCode.FAILED_PRECONDITION,
        )
    folder = TlsDir(path)
    try:
        folder.check(*needed)
    except FileNotFoundError as error:
        hint = f"`clinpred tls init {path}` writes a new folder, CLINPRED_STATE_DIR moves it"
        raise fail(f"{error}; {hint}", ExitCode.FAILED_PRECONDITION) from None
    return folder


def client_tls(tls_dir: Path | None, insecure_development: bool = False) -> ClientTls | None:
    """The client side of mutual TLS: `tls_dir`, else the default folder; None (plaintext) only when asked."""
    if insecure_development:
        if tls_dir is not None:
            raise typer.BadParameter("give either --tls-dir or --insecure-development", param_hint="--insecure-development")
        return None
    folder = tls_folder(tls_dir, *CLIENT_FILES) if tls_dir is not None else default_tls_folder(*CLIENT_FILES)
    return folder.client()


def print_message(message: Message, *, one_line: bool = False) -> None:
    """A response message as proto3 JSON: indented, or on one line for a stream (JSON Lines)."""
    from google.protobuf import json_format

    typer.echo(json_format.MessageToJson(message, indent=None if one_line else 2))
    if one_line:
        sys.stdout.flush()


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


def print_json_list(key: str, items: Iterable[Any]) -> None:
    """`print_json({key: list(items)})`, the same text, written one item at a time: a cohort's answers are
    never held as one string."""
    out = sys.stdout
    out.write(f"{{\n  {json.dumps(key)}: [")
    separator = "\n"
    for item in items:
        out.write(separator + "    " + json.dumps(item, indent=2).replace("\n", "\n    "))
        separator = ",\n"
    out.write("\n  ]\n}\n" if separator != "\n" else "]\n}\n")
    out.flush()


def read_text(source: Path, option: str) -> str:
    """The text of the file given as `option` ("-": standard input); a missing file is a usage error."""
    if str(source) == "-":
        return sys.stdin.read()
    if not source.is_file():
        raise typer.BadParameter(f"file {str(source)!r} does not exist.", param_hint=option)
    try:
        return source.read_text()
    except UnicodeDecodeError:
        raise InvalidInput.of([FieldViolation(option, "is not UTF-8 text")]) from None


def read_json(source: Path, option: str) -> Any:
    """A JSON file given as `option`; a file that is not JSON is invalid input, named by option and line."""
    text = read_text(source, option)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput.of([FieldViolation(option, f"is not JSON (line {error.lineno}, column {error.colno})")]) from None


M = TypeVar("M", bound="Message")


def parse_message(value: Any, message_type: type[M], field: str) -> M:
    """A proto3 JSON object as `message_type`; every unknown key is named, values are never echoed."""
    from google.protobuf import json_format

    if not isinstance(value, dict):
        raise InvalidInput.of([FieldViolation(field, f"must be a JSON object ({message_type.DESCRIPTOR.name})")])
    descriptor = message_type.DESCRIPTOR
    known = {f.name for f in descriptor.fields} | {f.json_name for f in descriptor.fields}
    unknown = [FieldViolation(f"{field}.{key}", "is not a field of " + descriptor.name) for key in value if key not in known]
    if unknown:
        raise InvalidInput.of(unknown)
    try:
        return json_format.ParseDict(value, message_type())
    except json_format.ParseError:
        # ParseError's text quotes the offending value, which may be patient data: name the type only.
        raise InvalidInput.of(
            [FieldViolation(field, f"has a value of the wrong type for {descriptor.full_name} (see its .proto)")]
        ) from None


def print_training_result(pilot: str, package: ModelPackage, headline: dict[str, float], registered: bool, as_json: bool) -> None:
    """What every `clinpred train PILOT` prints: the package, its headline metrics, and whether it was registered."""
    identity = package.identity
    if as_json:
        print_json({
            "package": {"pilot": pilot, "name": identity.name, "version": identity.version, "sha256": identity.sha256,
                        "path": str(package.path)},
            "metrics": headline,
            "registered": registered,
        })
        return
    typer.echo(f"model package {package.path} (sha256 {identity.sha256})")
    width = max((len(k) for k in headline), default=0)
    for key in sorted(headline):
        typer.echo(f"  {key:<{width}}  {figure(headline[key])}")
    if registered:
        typer.echo(f"registered in the BentoML model store of the {pilot} service")


def print_metrics(metrics: Mapping[str, float]) -> None:
    """A model's held-out metrics (a proto map of name -> number), one per line, finite ones only."""
    shown = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
    if not shown:
        return
    typer.echo("metrics:")
    width = max(len(k) for k in shown)
    for key in sorted(shown):
        typer.echo(f"  {key:<{width}}  {figure(shown[key])}")


def figure(value: float) -> str:
    """A metric for reading: counts as integers, rates and scores to four decimals."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.4f}"
