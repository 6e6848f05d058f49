"""Reading either kind of trail: a directory of `AuditFileLog` files or an `AuditSqlLog` database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from clinpred.services.common.audit.file_log import iter_directory, read_directory
from clinpred.services.common.audit.records import AuditRecord
from clinpred.services.common.audit.sql_log import iter_database, read_database
from clinpred.services.common.audit.verification import StoredChains


def _one_source(directory: Path | None, database: str | None) -> None:
    if (directory is None) == (database is None):
        raise ValueError("give exactly one of directory or database")


def read_records(*, directory: Path | None = None, database: str | None = None) -> StoredChains:
    """All writers' records, heads and unreadable entries, for `verify`."""
    _one_source(directory, database)
    return read_directory(directory) if directory is not None else read_database(str(database))


def iter_records(
    *, directory: Path | None = None, database: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> Iterator[AuditRecord]:
    """Readable records recorded in [since, until), streamed (see `iter_directory`, `iter_database` for the order)."""
    _one_source(directory, database)
    return iter_directory(directory, since, until) if directory is not None else iter_database(str(database), since, until)
