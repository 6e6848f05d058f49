"""Options and output shared by the pilots' commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message

from clinpred.cli.services import TlsDir
from clinpred.services.common.channel import ClientTls

TlsOption = Annotated[
    Path | None,
    typer.Option(help="Mutual TLS: folder with ca.crt, server.crt, server.key, client.crt, client.key."),
]


def fail(message: str) -> typer.Exit:
    """Prints `message` to standard error; raise the result to exit with status 1."""
    typer.echo(message, err=True)
    return typer.Exit(1)


def tls_folder(tls_dir: Path | None, *needed: str) -> TlsDir | None:
    if tls_dir is None:
        return None
    folder = TlsDir(tls_dir)
    try:
        folder.check(*needed)
    except FileNotFoundError as error:
        raise typer.BadParameter(str(error)) from None
    return folder


def client_tls(tls_dir: Path | None) -> ClientTls | None:
    folder = tls_folder(tls_dir, "ca.crt", "client.crt", "client.key")
    return folder.client() if folder else None


def print_message(message: Message) -> None:
    typer.echo(MessageToJson(message))
