"""The audit trail in SQL: SQLite (a file) or PostgreSQL, in the deterioration store's database or its own.

Appends commit in groups: records appended while the previous group commits wait, and the next
group stores them all, and its writer's head, in one transaction (a commit is one flush of the
log whether it carries one record or twenty, so concurrent calls do not queue behind one flush
each). `append` returns only once its record is committed (SQLite in WAL mode with
synchronous=FULL; PostgreSQL commits synchronously by default). The head row moves only from the
sequence this writer last committed, so a lost commit answer or a second process using the same
writer can never fork a chain.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from clinpred.pilots.common.sql_schema import Schema
from clinpred.pilots.common.sqlite_journal import connect_wal
from clinpred.services.common.audit.chain import ChainHead, ChainWriter, now, seal
from clinpred.services.common.audit.errors import AuditRecordError, AuditUnavailable
from clinpred.services.common.audit.keys import AuditKeys
from clinpred.services.common.audit.records import AuditEntry, AuditRecord
from clinpred.services.common.audit.verification import StoredChains, UnreadableRecord

MIGRATIONS = Path(__file__).with_name("migrations")
AUDIT_SCHEMA = Schema("audit trail", MIGRATIONS)
_EXPORT_BATCH = 1000
# Connections a forked child inherited: never closed nor collected there, since closing one
# (libpq's terminate message, SQLite's WAL cleanup) would act on the parent's session.
_INHERITED: list[object] = []


def _micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class _HeadMoved(Exception):
    """The writer's head row is not where this process left it."""


class _Database(Protocol):
    placeholder: str
    errors: tuple[type[BaseException], ...]

    def transaction(self) -> AbstractContextManager[Any]: ...
    def reading(self, *, streaming: bool = False) -> AbstractContextManager[Any]: ...
    def reset(self) -> None: ...
    def forget(self) -> None: ...


class _Sqlite:
    placeholder = "?"
    errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            # Used under AuditSqlLog's lock only, hence shared across threads.
            self._connection = connect_wal(self.path, timeout=30, check_same_thread=False)
        return self._connection

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        cursor = self._connect().cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        else:
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    @contextmanager
    def reading(self, *, streaming: bool = False) -> Iterator[Any]:
        if not self.path.exists():
            raise AuditUnavailable(f"audit database {self.path} does not exist")
        connection = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            yield connection.cursor()
        finally:
            connection.close()

    def reset(self) -> None:
        if self._connection is not None:
            with suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None

    def forget(self) -> None:
        _INHERITED.append(self._connection)
        self._connection = None


class _Postgres:
    placeholder = "%s"

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.errors: tuple[type[BaseException], ...] = (psycopg.Error, OSError)
        self._connection: Any = None

    def _connect(self) -> Any:
        import psycopg

        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self.url, autocommit=False, connect_timeout=10)
        return self._connection

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        connection = self._connect()
        with connection.transaction(), connection.cursor() as cursor:
            yield cursor

    @contextmanager
    def reading(self, *, streaming: bool = False) -> Iterator[Any]:
        import psycopg

        try:
            connection = psycopg.connect(self.url, autocommit=False, connect_timeout=10)
        except psycopg.Error as error:
            raise AuditUnavailable(f"audit database unreachable: {type(error).__name__}: {error}") from None
        try:
            # A named (server-side) cursor streams an export instead of loading it whole.
            with connection.cursor(name="audit_export") if streaming else connection.cursor() as cursor:
                yield cursor
        finally:
            connection.close()

    def reset(self) -> None:
        if self._connection is not None:
            with suppress(Exception):  # the connection is being discarded either way
                self._connection.close()
            self._connection = None

    def forget(self) -> None:
        _INHERITED.append(self._connection)
        self._connection = None


def _database(url: str) -> _Database:
    if url.startswith("sqlite:///"):
        return _Sqlite(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        return _Postgres(url)
    raise ValueError("audit database URL must start with sqlite:/// or postgresql://")


def migrate(url: str) -> None:
    """Creates or updates the audit tables (yoyo, locked so replicas starting together do not race)."""
    _database(url)  # refuses a URL of another kind of database
    AUDIT_SCHEMA.migrate(url)


class _Pending:
    """An entry waiting for its group's commit, and what the commit gave it."""

    __slots__ = ("entry", "failure", "record")

    def __init__(self, entry: AuditEntry) -> None:
        self.entry = entry
        self.record: AuditRecord | None = None
        self.failure: AuditUnavailable | None = None


class AuditSqlLog:
    """An `AuditTrail` in a database; thread-safe (groups commit one at a time), one writer per process."""

    def __init__(self, url: str, keys: AuditKeys) -> None:
        self._database = _database(url)
        self._keys = keys
        self._chain = ChainWriter(keys)
        # Held by the thread committing a group; `_queue` is guarded by `_queue_lock` alone.
        self._lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._pid = os.getpid()
        self._failures: tuple[type[BaseException], ...] = (*self._database.errors, _HeadMoved)
        try:
            migrate(url)
        except Exception as error:  # any reason the tables cannot be reached means no audit
            raise AuditUnavailable(f"audit database cannot be prepared: {type(error).__name__}: {error}") from None

    @property
    def writer_id(self) -> str | None:
        return self._chain.writer_id

    def _sql(self, text: str) -> str:
        return text.replace("?", self._database.placeholder)

    def _renew_after_fork(self) -> None:
        if self._pid != os.getpid():
            # A forked child: the parent's queued entries, locks and connection are not this process's.
            self._lock, self._queue_lock, self._queue = threading.Lock(), threading.Lock(), []
            self._database.forget()
            self._pid = os.getpid()

    def append(self, entry: AuditEntry) -> AuditRecord:
        self._renew_after_fork()
        pending = _Pending(entry)
        with self._queue_lock:
            self._queue.append(pending)
        with self._lock:
            # A group that committed while this thread waited for the lock may have carried this entry.
            if pending.record is None and pending.failure is None:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                try:
                    self._commit(group)
                except BaseException:
                    # The others of the group must not wait for a record that will never come.
                    unwritten = AuditUnavailable("audit record could not be stored")
                    for other in group:
                        if other.record is None and other.failure is None:
                            other.failure = unwritten
                    raise
        if pending.failure is not None:
            raise pending.failure
        if pending.record is None:
            raise AuditUnavailable("audit record could not be stored")
        return pending.record

    def append_group(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        """Stores the entries in order in one transaction: all or none."""
        if not entries:
            return []
        self._renew_after_fork()
        group = [_Pending(entry) for entry in entries]
        with self._lock:
            self._commit(group)
        records = []
        for pending in group:
            if pending.failure is not None:
                raise pending.failure
            assert pending.record is not None
            records.append(pending.record)
        return records

    def _commit(self, group: list[_Pending]) -> None:
        """Seals the group's entries in order after the head and stores them in one transaction."""
        current = self._chain.current()
        head = current or self._chain.start()
        records = []
        for pending in group:
            record = seal(self._keys, pending.entry, head, now())
            records.append(record)
            head = ChainHead(record.writer_id, record.sequence, record.hash)
        last = records[-1]
        try:
            with self._database.transaction() as cursor:
                if current is None:
                    cursor.execute(
                        self._sql("INSERT INTO audit_heads (writer_id, sequence, hash) VALUES (?, ?, ?)"),
                        (last.writer_id, last.sequence, last.hash),
                    )
                else:
                    cursor.execute(
                        self._sql("UPDATE audit_heads SET sequence = ?, hash = ? WHERE writer_id = ? AND sequence = ?"),
                        (last.sequence, last.hash, last.writer_id, current.sequence),
                    )
                    if cursor.rowcount != 1:
                        raise _HeadMoved
                insert = self._sql(
                    "INSERT INTO audit_records (writer_id, sequence, recorded_at_us, tenant, record) VALUES (?, ?, ?, ?, ?)"
                )
                rows = [
                    (r.writer_id, r.sequence, _micros(r.recorded_at), p.entry.tenant, r.to_json().decode("ascii"))
                    for r, p in zip(records, group, strict=True)
                ]
                # A group of one (an idle server) skips the batch protocol psycopg's executemany sets up.
                if len(rows) == 1:
                    cursor.execute(insert, rows[0])
                else:
                    cursor.executemany(insert, rows)
        except self._failures as error:
            self._chain.failed()
            self._database.reset()
            # The class name only: a database's message may quote the row.
            failure = AuditUnavailable(f"audit record could not be stored in the database: {type(error).__name__}")
            for pending in group:
                pending.failure = failure
            return
        self._chain.advanced(last)
        for record, pending in zip(records, group, strict=True):
            pending.record = record

    def close(self) -> None:
        with self._lock:
            self._database.reset()
            self._chain.failed()


def _query(database: _Database, text: str) -> str:
    return text.replace("?", database.placeholder)


def read_database(url: str) -> StoredChains:
    """Every writer's records in sequence order, heads and unreadable rows, for `verify`. Changes nothing."""
    database = _database(url)
    records: dict[str, list[AuditRecord]] = {}
    heads: dict[str, ChainHead] = {}
    unreadable: list[UnreadableRecord] = []
    try:
        with database.reading() as cursor:
            cursor.execute("SELECT writer_id, sequence, hash FROM audit_heads")
            for writer_id, sequence, hash_ in cursor.fetchall():
                heads[writer_id] = ChainHead(writer_id, int(sequence), hash_)
            cursor.execute("SELECT writer_id, sequence, record FROM audit_records ORDER BY writer_id, sequence")
            for writer_id, sequence, text in cursor:
                stored = records.setdefault(writer_id, [])
                try:
                    stored.append(AuditRecord.from_json(text))
                except AuditRecordError as error:
                    unreadable.append(UnreadableRecord(writer_id, f"row sequence {sequence}", error.message))
    except database.errors as error:
        raise AuditUnavailable(f"audit database cannot be read: {type(error).__name__}: {error}") from None
    return StoredChains(records, heads, unreadable)


def iter_database(url: str, since: datetime | None = None, until: datetime | None = None) -> Iterator[AuditRecord]:
    """Readable records recorded in [since, until), oldest first; streams. Unreadable rows are skipped."""
    database = _database(url)
    conditions, parameters = [], []
    if since is not None:
        conditions.append("recorded_at_us >= ?")
        parameters.append(_micros(since))
    if until is not None:
        conditions.append("recorded_at_us < ?")
        parameters.append(_micros(until))
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = _query(database, f"SELECT record FROM audit_records{where} ORDER BY recorded_at_us, writer_id, sequence")
    try:
        with database.reading(streaming=True) as cursor:
            cursor.execute(sql, parameters)
            while rows := cursor.fetchmany(_EXPORT_BATCH):
                for (text,) in rows:
                    try:
                        yield AuditRecord.from_json(text)
                    except AuditRecordError:
                        continue
    except database.errors as error:
        raise AuditUnavailable(f"audit database cannot be read: {type(error).__name__}: {error}") from None
