"""`clinpred db migrate|status|backup|restore`: the deterioration service's database, as operators handle it.

Every command works on `--database URL` (`sqlite:///path` or `postgresql://...`), by default the
database the service would use (CLINPRED_DETERIORATION_DATABASE_URL, or its file in CLINPRED_SECRETS_DIR).
The audit trail is in that database unless CLINPRED_DETERIORATION_AUDIT_DATABASE_URL names another:
`migrate` and `status` cover both, `backup` and `restore` the one database given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from clinpred.cli.errors import ExitCode
from clinpred.cli.options import JsonOption, fail, print_json

if TYPE_CHECKING:
    from clinpred.services.deterioration.settings import DeteriorationSettings

db_app = typer.Typer(
    help="The deterioration database: schema migrations, their status, backup and restore.", no_args_is_help=True
)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="sqlite:///path or postgresql://user@host:port/db. Default: the deterioration service's database"
        " (CLINPRED_DETERIORATION_DATABASE_URL).",
        show_default=False,
    ),
]


def _settings(database: str | None) -> DeteriorationSettings:
    from clinpred.services.deterioration.settings import DeteriorationSettings

    if database is None:
        return DeteriorationSettings()
    return DeteriorationSettings(database_url=database)


def _shown(url: str) -> str:
    """The URL without its password, for output."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@db_app.command("migrate")
def migrate_command(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Bring the database's schemas (risk store, audit trail) to this release's newest version.

    Safe to run from several processes at once: yoyo's lock lets one apply each migration and the
    others find it applied. Run it once per release, before the new release's services start (they
    refuse to start on an older schema when CLINPRED_DETERIORATION_MIGRATE_ON_START is false).
    --json: {"database": URL, "applied": {SCHEMA: [MIGRATION, ...]}, "schemas": [as `db status`]}.

    Exit codes: 0 migrated (or nothing to do); 1 a migration failed (its transaction is rolled back).
    """
    from clinpred.services.deterioration.database import describe, migrate, schema_states

    settings = _settings(database)
    applied = migrate(settings)
    states = schema_states(settings)
    if as_json:
        schemas = [_state_json(s) for s in states]
        print_json({"database": _shown(settings.database_url), "applied": dict(applied), "schemas": schemas})
        return
    for schema, migrations in applied:
        typer.echo(f"{schema}: applied {', '.join(migrations)}" if migrations else f"{schema}: nothing to apply")
    for state in states:
        typer.echo(describe(state))


def _state_json(state: object) -> dict[str, object]:
    from clinpred.pilots.common.sql_schema import SchemaState

    assert isinstance(state, SchemaState)
    return {
        "schema": state.schema,
        "current": state.current,
        "newest": state.newest,
        "pending": list(state.pending),
        "up_to_date": state.up_to_date,
    }


@db_app.command("status")
def status_command(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Each schema's current and newest migration, and what `clinpred db migrate` would apply.

    --json: {"database": URL, "up_to_date": BOOL,
    "schemas": [{"schema", "current", "newest", "pending": [...], "up_to_date": BOOL}]}.

    Exit codes: 0 every schema is current; 7 (failed precondition) a schema is behind: run `clinpred db migrate`.
    """
    from clinpred.services.deterioration.database import describe, schema_states

    settings = _settings(database)
    states = schema_states(settings)
    current = all(s.up_to_date for s in states)
    if as_json:
        schemas = [_state_json(s) for s in states]
        print_json({"database": _shown(settings.database_url), "up_to_date": current, "schemas": schemas})
    else:
        for state in states:
            typer.echo(describe(state))
    if not current:
        raise fail("the schema is behind this release: run `clinpred db migrate`", ExitCode.FAILED_PRECONDITION)


@db_app.command("backup")
def backup_command(
    out: Annotated[Path, typer.Option("--out", help="The backup file to write (never overwritten).")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """A consistent backup of the database, taken while the services run: its patients, observations,
    scores and, where it lives there, the audit trail.

    SQLite: a copy through SQLite's online backup API (one file, no WAL beside it). PostgreSQL: pg_dump's
    custom format (needs PostgreSQL's client tools). Restore it with `clinpred db restore`.
    --json: {"database": URL, "backup": PATH, "kind": "sqlite"|"postgresql", "bytes": N}.

    Exit codes: 0 written; 3 --out exists; 4 no such SQLite file; 7 pg_dump failed or is missing.
    """
    from clinpred.services.deterioration.database import backup

    settings = _settings(database)
    made = backup(settings.database_url, out)
    if as_json:
        print_json({"database": _shown(settings.database_url), "backup": str(made.path), "kind": made.kind, "bytes": made.size})
        return
    typer.echo(f"backed up {_shown(settings.database_url)} to {made.path} ({made.kind}, {made.size} bytes)")


@db_app.command("restore")
def restore_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A backup `clinpred db backup` wrote.")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup into a new, empty database of its kind (a missing SQLite file, an empty PostgreSQL database).

    Refuses a database that already holds data, so a restore never mixes two databases. Then prints
    `db status`: a backup of an older release is brought up to date with `clinpred db migrate`.
    --json: {"database": URL, "restored": PATH, "up_to_date": BOOL, "schemas": [as `db status`]}.

    Exit codes: 0 restored; 3 not a backup, of the other kind, or the database is not empty; 7 pg_restore failed.
    """
    from clinpred.services.deterioration.database import describe, restore, schema_states

    settings = _settings(database)
    restore(file, settings.database_url)
    states = schema_states(settings)
    if as_json:
        print_json({"database": _shown(settings.database_url), "restored": str(file),
                    "up_to_date": all(s.up_to_date for s in states), "schemas": [_state_json(s) for s in states]})
        return
    typer.echo(f"restored {file} into {_shown(settings.database_url)}")
    for state in states:
        typer.echo(describe(state))
