"""The deterioration database as operators handle it: schema versions, migrating, backing up and restoring.

The database holds two schemas: the risk store's and, where the audit trail lives beside
it (the default, `audit_database_url` unset), the audit trail's. `clinpred db` drives
these functions; the service calls `require_current_schema` at start when it must not
migrate by itself (`migrate_on_start` false: a release's migration step does it, once).

Backups: SQLite through its online backup API (a consistent copy while the service
writes, which copying the file is not in WAL mode); PostgreSQL through pg_dump's
custom format and pg_restore. Either restores only into an empty database, so a
restore never mixes two databases' rows. Database URLs never reach messages: they may
carry a password.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from clinpred.pilots.common.errors import FailedPrecondition, FieldViolation, InvalidInput, NotFound
from clinpred.pilots.common.sql_schema import Schema, SchemaState, sqlite_path
from clinpred.pilots.deterioration.store.sql_store import STORE_SCHEMA
from clinpred.services.common.audit.sql_log import AUDIT_SCHEMA
from clinpred.services.deterioration.settings import DeteriorationSettings

MIGRATE_COMMAND = "clinpred db migrate"
MIGRATE_ON_START_ENV = "CLINPRED_DETERIORATION_MIGRATE_ON_START"
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


def _invalid(field: str, description: str) -> InvalidInput:
    return InvalidInput.of([FieldViolation(field, description)])


class SchemaNotCurrent(FailedPrecondition):
    """The database's schema is older than this release's; the service does not start on it."""


def _schemas(settings: DeteriorationSettings) -> list[tuple[Schema, str]]:
    schemas = [(STORE_SCHEMA, settings.database_url)]
    if settings.audit_database_url:
        schemas.append((AUDIT_SCHEMA, settings.audit_database_url))
    return schemas


def schema_states(settings: DeteriorationSettings) -> list[SchemaState]:
    """Where the service's database stands, schema by schema. Changes nothing but yoyo's own bookkeeping tables."""
    return [schema.state(url) for schema, url in _schemas(settings)]


def migrate(settings: DeteriorationSettings) -> list[tuple[str, tuple[str, ...]]]:
    """Brings every schema to this release's newest version: (schema, migrations this call applied)."""
    return [(schema.name, schema.migrate(url)) for schema, url in _schemas(settings)]


def describe(state: SchemaState) -> str:
    """One line for people: the schema, its current and newest migration, and what is pending."""
    current = state.current or "none (empty database)"
    line = f"{state.schema}: current {current}, newest {state.newest}"
    if state.pending:
        line += f"; {len(state.pending)} pending: {', '.join(state.pending)}"
    return line


def require_current_schema(settings: DeteriorationSettings) -> None:
    """Raises SchemaNotCurrent, naming the command that migrates, unless every schema is at its newest version."""
    behind = [state for state in schema_states(settings) if not state.up_to_date]
    if behind:
        raise SchemaNotCurrent(
            "the deterioration database's schema is older than this release's ("
            + "; ".join(describe(state) for state in behind)
            + f"). Run `{MIGRATE_COMMAND}` with this release (the release's migration step), then start the service;"
            f" or set {MIGRATE_ON_START_ENV}=true to let the service migrate at start."
        )


@dataclass(frozen=True)
class Backup:
    path: Path
    kind: str  # "sqlite" or "postgresql"
    size: int


def _kind(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql"
    raise _invalid("--database", "must start with sqlite:/// or postgresql://")


def _libpq_environment(url: str) -> dict[str, str]:
    """The URL as libpq environment variables, so a password never shows in the process list."""
    from psycopg.conninfo import conninfo_to_dict

    names = {"dbname": "PGDATABASE", "application_name": "PGAPPNAME"}
    parts = conninfo_to_dict(url)
    return {names.get(key, f"PG{key.upper()}"): str(value) for key, value in parts.items() if value is not None}


def _postgres_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise FailedPrecondition(f"{name} is not installed; install PostgreSQL's client tools (Debian: postgresql-client)")
    return found


def _run_postgres_tool(command: list[str], url: str) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | _libpq_environment(url)
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # pg_dump and pg_restore report on objects and connections, never row values.
        raise FailedPrecondition(f"{Path(command[0]).name} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")


def backup(url: str, out: Path) -> Backup:
    """A consistent copy of the database at `url` in the new file `out`, taken while services may write."""
    kind = _kind(url)
    if out.exists():
        raise _invalid("--out", "already exists; a backup never overwrites a file")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkstemp(prefix=f".{out.name}-", dir=out.parent)[1])
    try:
        if kind == "sqlite":
            source_path = sqlite_path(url)
            assert source_path is not None
            if not source_path.exists():
                raise NotFound("the SQLite database file does not exist")
            source = sqlite3.connect(f"{source_path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            target = sqlite3.connect(staging)
            try:
                source.backup(target)
                # One self-contained file: no -wal beside it to lose in a copy.
                target.execute("PRAGMA journal_mode=DELETE")
            finally:
                target.close()
                source.close()
        else:
            _run_postgres_tool(
                [_postgres_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={staging}"], url
            )
        os.replace(staging, out)
    finally:
        staging.unlink(missing_ok=True)
    return Backup(out, kind, out.stat().st_size)


def _backup_kind(path: Path) -> str:
    with path.open("rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise _invalid("FILE", "is neither an SQLite database nor a pg_dump custom-format archive")


def _postgres_is_empty(url: str) -> bool:
    import psycopg

    with psycopg.connect(url, connect_timeout=10) as connection:
        row = connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone()
    return row is not None and int(row[0]) == 0


def restore(path: Path, url: str) -> None:
    """Restores the backup `path` into the empty database at `url` (of the backup's kind)."""
    kind = _kind(url)
    if not path.is_file():
        raise _invalid("FILE", "does not exist")
    if _backup_kind(path) != kind:
        raise _invalid("FILE", f"is a {_backup_kind(path)} backup; --database names a {kind} database")
    if kind == "sqlite":
        target_path = sqlite_path(url)
        assert target_path is not None
        if target_path.exists() and target_path.stat().st_size > 0:
            raise _invalid("--database", "already exists; restore into a new database file")
        target_path.parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        target = sqlite3.connect(target_path)
        try:
            checked = source.execute("PRAGMA integrity_check").fetchone()
            if checked is None or checked[0] != "ok":
                raise _invalid("FILE", "is a damaged SQLite database (integrity_check failed)")
            source.backup(target)
        finally:
            target.close()
            source.close()
        return
    if not _postgres_is_empty(url):
        raise _invalid("--database", "already holds tables; restore into a new, empty database")
    _run_postgres_tool(
        [_postgres_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
         "--dbname=" + _libpq_environment(url).get("PGDATABASE", ""), str(path)],
        url,
    )
