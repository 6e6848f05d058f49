"""Real audit trails: a directory, an SQLite file and a fresh PostgreSQL database, each with ways to damage it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from clinpred.services.common.audit import (
    AuditFileLog,
    AuditKeys,
    AuditSqlLog,
    AuditTrail,
    StoredChains,
    read_database,
    read_directory,
)
from tests.integration.deterioration.conftest import _drop_tables, postgres_url  # noqa: F401
from tests.unit.services.audit.sample_entries import sample_keys


@pytest.fixture
def keys() -> AuditKeys:
    return sample_keys()


@dataclass
class Trail:
    """One audit trail under test: open a log on it, read it back, and damage it as an attacker or a crash would."""

    kind: str  # files, sqlite, postgresql
    location: str  # the directory, or the database URL
    open: Callable[[AuditKeys], AuditTrail]

    def read(self) -> StoredChains:
        return read_directory(Path(self.location)) if self.kind == "files" else read_database(self.location)

    def cli_source(self) -> list[str]:
        return ["--dir", self.location] if self.kind == "files" else ["--database", self.location]

    # Damage. Records are addressed by writer and sequence, as verification names them.

    def _lines(self, writer_id: str) -> tuple[Path, list[str]]:
        path = Path(self.location) / f"{writer_id}.jsonl"
        return path, path.read_text().splitlines(keepends=True)

    def _index(self, lines: list[str], sequence: int) -> int:
        return next(i for i, line in enumerate(lines) if json.loads(line)["sequence"] == sequence)

    def _sql(self, statement: str, parameters: tuple[object, ...]) -> None:
        if self.kind == "sqlite":
            with sqlite3.connect(self.location.removeprefix("sqlite:///")) as connection:
                connection.execute(statement, parameters)
        else:
            with psycopg.connect(self.location, autocommit=True) as connection:
                connection.execute(statement.replace("?", "%s"), parameters)

    def _stored(self, writer_id: str, sequence: int) -> str:
        return next(r for r in self.read().records_by_writer[writer_id] if r.sequence == sequence).to_json().decode()

    def remove(self, writer_id: str, sequence: int) -> None:
        if self.kind == "files":
            path, lines = self._lines(writer_id)
            del lines[self._index(lines, sequence)]
            path.write_text("".join(lines))
        else:
            self._sql("DELETE FROM audit_records WHERE writer_id = ? AND sequence = ?", (writer_id, sequence))

    def swap(self, writer_id: str, first: int, second: int) -> None:
        if self.kind == "files":
            path, lines = self._lines(writer_id)
            a, b = self._index(lines, first), self._index(lines, second)
            lines[a], lines[b] = lines[b], lines[a]
            path.write_text("".join(lines))
        else:
            one, other = self._stored(writer_id, first), self._stored(writer_id, second)
            self._sql("UPDATE audit_records SET record = ? WHERE writer_id = ? AND sequence = ?", (other, writer_id, first))
            self._sql("UPDATE audit_records SET record = ? WHERE writer_id = ? AND sequence = ?", (one, writer_id, second))

    def edit(self, writer_id: str, sequence: int, old: str, new: str) -> None:
        if self.kind == "files":
            path, lines = self._lines(writer_id)
            index = self._index(lines, sequence)
            assert old in lines[index]
            lines[index] = lines[index].replace(old, new)
            path.write_text("".join(lines))
        else:
            text = self._stored(writer_id, sequence)
            assert old in text
            self._sql(
                "UPDATE audit_records SET record = ? WHERE writer_id = ? AND sequence = ?",
                (text.replace(old, new), writer_id, sequence),
            )

    def cut_tail(self, writer_id: str, keep: int) -> None:
        if self.kind == "files":
            path, lines = self._lines(writer_id)
            path.write_text("".join(lines[:keep]))
        else:
            self._sql("DELETE FROM audit_records WHERE writer_id = ? AND sequence > ?", (writer_id, keep))


@pytest.fixture(params=["files", "sqlite", "postgresql"])
def trail(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Trail]:
    yield from _trail_of_kind(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_trail(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Trail]:
    yield from _trail_of_kind(request.param, request, tmp_path)


def _trail_of_kind(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Trail]:
    if kind == "files":
        directory = str(tmp_path / "audit")
        yield Trail("files", directory, lambda keys: AuditFileLog(Path(directory), keys))
        return
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
        yield Trail("sqlite", url, lambda keys: AuditSqlLog(url, keys))
        return
    url = request.getfixturevalue("postgres_url")
    yield Trail("postgresql", url, lambda keys: AuditSqlLog(url, keys))
    _drop_tables(url)
