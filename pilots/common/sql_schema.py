"""Versioned SQL schemas (yoyo migrations): where a database stands, and bringing it to the newest version.

A schema is a folder of numbered migrations. Migrating takes yoyo's lock (a row in
`yoyo_lock`), so several processes migrating one database at once apply each migration
once: the others wait for the lock and then find nothing left to apply. The database
URLs are the services' own, `sqlite:///PATH` or `postgresql://...`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# How long a migration waits for another process's lock; a first migration takes well under a second.
LOCK_TIMEOUT_SECONDS = 120.0


def yoyo_url(url: str) -> str:
    """yoyo's name for a database URL: psycopg 3 is `postgresql+psycopg`."""
    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    if scheme == "sqlite":
        return url
    raise ValueError("database URL must start with sqlite:/// or postgresql://")


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL, None for another database."""
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


@dataclass(frozen=True)
class SchemaState:
    """Which migrations of one schema a database has, and which this release would still apply."""

    schema: str
    applied: tuple[str, ...]
    pending: tuple[str, ...]

    @property
    def current(self) -> str | None:
        return self.applied[-1] if self.applied else None

    @property
    def newest(self) -> str:
        return (self.applied + self.pending)[-1]

    @property
    def up_to_date(self) -> bool:
        return not self.pending


@dataclass(frozen=True)
class Schema:
    """A named schema and its migrations folder."""

    name: str
    migrations: Path

    def _migrations(self) -> Any:
        from yoyo import read_migrations

        return read_migrations(str(self.migrations))

    @contextmanager
    def _backend(self, url: str) -> Iterator[Any]:
        from yoyo import get_backend

        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        backend = get_backend(yoyo_url(url))
        try:
            yield backend
        finally:
            backend.connection.close()

    def state(self, url: str) -> SchemaState:
        """Where `url` stands. An SQLite file that does not exist yet has every migration pending (and stays absent)."""
        migrations = self._migrations()
        path = sqlite_path(url)
        if path is not None and not path.exists():
            return SchemaState(self.name, (), tuple(m.id for m in migrations))
        with self._backend(url) as backend:
            applied_hashes = set(backend.get_applied_migration_hashes())
        return SchemaState(
            self.name,
            applied=tuple(m.id for m in migrations if m.hash in applied_hashes),
            pending=tuple(m.id for m in migrations if m.hash not in applied_hashes),
        )

    def migrate(self, url: str) -> tuple[str, ...]:
        """Applies what is pending under yoyo's lock; returns the ids this call applied (none if another process did)."""
        migrations = self._migrations()
        with self._backend(url) as backend, backend.lock(timeout=LOCK_TIMEOUT_SECONDS):
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
            return tuple(m.id for m in pending)
