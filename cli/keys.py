"""`clinpred keys init|rotate|list DIR`: the sealing keys a service opens sealed requests with.

DIR holds one file per key (`<key id>.json`, 0600: it holds the private key); see
`clinpred.services.common.sealing_keys`. `list --json` prints the public configurations only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from clinpred.cli.errors import ExitCode
from clinpred.cli.options import JsonOption, fail, print_json

if TYPE_CHECKING:
    from clinpred.services.common.sealing_keys import SealingKey

keys_app = typer.Typer(help="Sealing keys (HPKE) of sealed requests: make, rotate, list.", no_args_is_help=True)

FolderArgument = Annotated[Path, typer.Argument(metavar="DIR", help="The keyring folder (one file per key).")]
GRACE_ENV = "CLINPRED_SEALED_KEY_GRACE_SECONDS"


def _summary(key: SealingKey, current: str | None) -> str:
    until = key.not_after.isoformat() if key.not_after else "-"
    mark = "current" if key.key_id == current else ""
    return f"{key.key_id}  {key.kem}/{key.kdf}/{key.aead}  from {key.not_before.isoformat()}  until {until}  {mark}".rstrip()


@keys_app.command("init")
def keys_init(folder: FolderArgument, as_json: JsonOption = False) -> None:
    """A new keyring folder with one key, valid from now. Refuses a folder that already holds keys.

    --json: the key's public configuration {"key_id", "kem", "kdf", "aead", "public_key" (base64), "not_before",
    "not_after"}.
    """
    from clinpred.services.common.sealing_keys import KeyringError, init_keyring

    try:
        key = init_keyring(folder, datetime.now(UTC))
    except KeyringError as error:
        raise fail(str(error), ExitCode.FAILED_PRECONDITION) from None
    if as_json:
        print_json(key.as_json())
        return
    typer.echo(f"wrote {folder / (key.key_id + '.json')}: key id {key.key_id}")


@keys_app.command("rotate")
def keys_rotate(
    folder: FolderArgument,
    grace_seconds: Annotated[
        float,
        typer.Option(
            "--grace-seconds",
            envvar=GRACE_ENV,
            min=0,
            help="How long the keys in use so far still open requests; after that they are refused.",
        ),
    ] = 86400.0,
    as_json: JsonOption = False,
) -> None:
    """A new current key; the older keys open requests for --grace-seconds more, then are refused.

    Services re-read the folder within a second of a change: copy it to every replica (its Secret).
    --json: the new key's public configuration, as `init` prints it.
    """
    from clinpred.services.common.sealing_keys import KeyringError, rotate_keyring

    try:
        key = rotate_keyring(folder, datetime.now(UTC), timedelta(seconds=grace_seconds))
    except KeyringError as error:
        raise fail(str(error), ExitCode.FAILED_PRECONDITION) from None
    if as_json:
        print_json(key.as_json())
        return
    typer.echo(f"wrote {folder / (key.key_id + '.json')}: key id {key.key_id} is current")


@keys_app.command("list")
def keys_list(folder: FolderArgument, as_json: JsonOption = False) -> None:
    """The keys' public configurations, oldest first, and which is current.

    --json: {"current_key_id": ID | null, "keys": [{"key_id", "kem", "kdf", "aead", "public_key" (base64),
    "not_before", "not_after"}, ...]}.
    """
    from clinpred.pilots.common.errors import FailedPrecondition
    from clinpred.services.common.sealing_keys import Keyring, KeyringError

    try:
        keyring = Keyring.load(folder)
    except KeyringError as error:
        raise fail(str(error), ExitCode.FAILED_PRECONDITION) from None
    try:
        current: str | None = keyring.current(datetime.now(UTC)).key_id
    except FailedPrecondition:
        current = None
    configurations = keyring.configurations()
    if as_json:
        print_json({"current_key_id": current, "keys": [key.as_json() for key in configurations]})
        return
    for key in configurations:
        typer.echo(_summary(key, current))
