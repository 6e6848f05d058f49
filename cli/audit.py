"""`clinpred audit keygen|verify|export`: the audit trail's key, its integrity, and FHIR AuditEvents.

Every command reads one trail: `--dir DIR` (the JSON Lines files of `AuditFileLog`) or
`--database URL` (`sqlite:///path` or `postgresql://...`, the tables of `AuditSqlLog`), with
the key file the services seal records with (`--key-file`). Nothing here changes a trail.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from clinpred.cli.errors import ExitCode
from clinpred.cli.options import JsonOption, fail, print_json

if TYPE_CHECKING:
    from clinpred.services.common.audit import AuditKeys, AuditRecord

audit_app = typer.Typer(help="The audit trail: key files, integrity checks, FHIR AuditEvent export.", no_args_is_help=True)

DirOption = Annotated[Path | None, typer.Option("--dir", help="Audit directory (AuditFileLog).", file_okay=False)]
DatabaseOption = Annotated[
    str | None, typer.Option("--database", help="Audit database: sqlite:///path or postgresql://user@host:port/db.")
]
KeyFileOption = Annotated[Path, typer.Option("--key-file", help="The audit key file the records were sealed with.")]

BROKEN_CODE = ExitCode.FAILED_PRECONDITION


def _check_source(directory: Path | None, database: str | None) -> str:
    """The trail's name as printed; a usage error unless exactly one of --dir and --database is given."""
    if (directory is None) == (database is None):
        raise typer.BadParameter("give exactly one of --dir or --database", param_hint="--dir/--database")
    return str(directory if directory is not None else database)


def _keys(key_file: Path) -> AuditKeys:
    from clinpred.services.common.audit import AuditKeys

    return AuditKeys.from_file(key_file)


def _instant(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("not an ISO 8601 time such as 2026-11-01T00:00:00Z", param_hint=option) from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give the time zone, e.g. 2026-11-01T00:00:00Z or +01:00", param_hint=option)
    return moment


@audit_app.command("keygen")
def keygen(file: Annotated[Path, typer.Argument(help="Where to write the new key file (mode 0600; never overwritten).")]) -> None:
    """A new random audit key file (64 bytes, mode 0600). Keep it secret and keep it: verifying needs it.

    Exit codes: 0 written; 7 the file exists or cannot be created.
    """
    from clinpred.services.common.audit import write_key_file

    write_key_file(file)
    typer.echo(f"wrote a new audit key to {file} (mode 0600)")


@audit_app.command("verify")
def verify_command(
    key_file: KeyFileOption,
    directory: DirOption = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check every writer's hash chain: edited, removed, reordered, duplicated or truncated records, torn lines, unknown writers.

    Prints a summary (writers, records, problems), then one line per problem
    ("KIND: writer ID sequence N: DETAIL").
    --json: {"source": PATH|URL, "writers": N, "records": N, "intact": BOOL,
    "problems": [{"kind", "writer_id", "sequence", "detail"}]}.

    Exit codes: 0 intact; 7 (failed check) at least one problem; 5 the trail cannot be read; 7 a bad key file.
    """
    from clinpred.services.common.audit import ProblemKind, read_records, verify

    where = _check_source(directory, database)
    keys = _keys(key_file)
    stored = read_records(directory=directory, database=database)
    report = verify(stored.records_by_writer, stored.heads, keys, stored.unreadable)
    edited = sum(1 for p in report.problems if p.kind is ProblemKind.EDITED)
    if as_json:
        print_json(
            {
                "source": str(where),
                "writers": report.writers,
                "records": report.records,
                "intact": report.intact,
                "problems": [
                    {"kind": p.kind.value, "writer_id": p.writer_id, "sequence": p.sequence, "detail": p.detail}
                    for p in report.problems
                ],
            }
        )
    else:
        typer.echo(f"audit trail {where}: {report.summary()}")
        for problem in report.problems:
            typer.echo(problem.line())
        if report.records and edited >= report.records:
            typer.echo("every record fails its hash: is --key-file the key these records were sealed with?", err=True)
    if not report.intact:
        raise typer.Exit(BROKEN_CODE)


@audit_app.command("export")
def export_command(
    key_file: KeyFileOption,
    since: Annotated[str, typer.Option("--since", help="First time to export (ISO 8601 with zone), inclusive.")],
    directory: DirOption = None,
    database: DatabaseOption = None,
    until: Annotated[str | None, typer.Option("--until", help="End (ISO 8601 with zone), exclusive.")] = None,
    fhir: Annotated[bool, typer.Option("--fhir", help="As FHIR R4 AuditEvent resources (IHE BALP); required.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="NDJSON file to write (default: standard output).")] = None,
) -> None:
    """Records in [--since, --until) as NDJSON, one FHIR R4 AuditEvent (IHE BALP) per line.

    A database exports oldest first; a directory writer by writer. Each record's hash is checked
    with the key: a record that fails is left out and counted on standard error
    (`clinpred audit verify` names it). --out is written whole or not at all. Progress is shown
    on standard error when it is a terminal.

    Exit codes: 0 exported; 7 some records failed their hash (the rest were exported); 5 the trail cannot be read.
    """
    from tqdm import tqdm

    from clinpred.services.common.audit import iter_records
    from clinpred.services.common.audit.fhir import audit_event

    if not fhir:
        raise typer.BadParameter("only FHIR AuditEvent export exists: add --fhir", param_hint="--fhir")
    _check_source(directory, database)
    start, end = _instant(since, "--since"), _instant(until, "--until")
    keys = _keys(key_file)
    records = iter_records(directory=directory, database=database, since=start, until=end)
    temporary = out.with_name(f".{out.name}.partial") if out is not None else None
    stream = open(temporary, "w", encoding="utf-8") if temporary is not None else sys.stdout  # noqa: SIM115
    exported = failed = 0
    try:
        progress = tqdm(records, unit=" records", file=sys.stderr, disable=not sys.stderr.isatty())
        for record in progress:
            if not _sealed(keys, record):
                failed += 1
                continue
            stream.write(json.dumps(audit_event(record), separators=(",", ":"), ensure_ascii=False) + "\n")
            exported += 1
        stream.flush()
        if temporary is not None and out is not None:
            os.fsync(stream.fileno())
            stream.close()
            os.replace(temporary, out)
    finally:
        if temporary is not None:
            stream.close()
            temporary.unlink(missing_ok=True)
    destination = f" to {out}" if out is not None else ""
    typer.echo(f"exported {exported} AuditEvent(s){destination}", err=True)
    if failed:
        raise fail(f"{failed} record(s) failed their hash and were left out; `clinpred audit verify` names them", BROKEN_CODE)


def _sealed(keys: AuditKeys, record: AuditRecord) -> bool:
    return keys.chain_hash(record.previous_hash, record.unsealed_fields()) == record.hash
