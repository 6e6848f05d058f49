"""A file (or folder) read into a value and read again when it changes: policies, revocation lists, key sets.

Each of those is edited while the service runs (a ConfigMap update, a new CRL, a key rotation), so the
request path asks `current()` on every call: it looks at the file at most once per interval, never waits
for another thread that is already looking, and keeps the last good value when a new version is missing
or does not parse (one warning per broken version; the next good one is logged at INFO). A change is seen
by inode, size, mtime or ctime, so an atomic replace or a Kubernetes ConfigMap's symlink swap counts.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
Signature = tuple[int, int, int, int]
# What tells a change: a file's signature, or for a folder one per file.
Version = tuple[object, ...]


def signature_of(status: os.stat_result) -> Signature:
    return (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


class Watched(Generic[T]):
    """A value `load`ed from something on disk whose `version()` tells when it changed (None: unreadable).

    `load` returns the value and the version it read, so a change during the read is looked at again;
    it raises OSError or one of `rejects` for something it cannot use, and at construction those errors
    propagate, so a service never starts without the file; `summary` adds a few words to the reload message."""

    def __init__(
        self,
        version: Callable[[], Version | None],
        load: Callable[[], tuple[T, Version | None]],
        *,
        what: str,
        logger: logging.Logger,
        rejects: tuple[type[Exception], ...] = (ValueError,),
        summary: Callable[[T], str] = lambda _value: "",
        check_interval_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not check_interval_seconds >= 0:
            raise ValueError("check_interval_seconds must be >= 0")
        self._version = version
        self._load = load
        self._what = what
        self._logger = logger
        self._rejects = rejects
        self._summary = summary
        self._interval = check_interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._value, self._seen = load()
        self.last_error: str | None = None
        self._next_check = clock() + check_interval_seconds

    def current(self) -> T:
        """The value in force, after looking for a new version at most once per interval."""
        now = self._clock()
        # Another thread already looking is as good as looking: never wait on a request path.
        if now >= self._next_check and self._lock.acquire(blocking=False):
            try:
                if now >= self._next_check:
                    self._next_check = now + self._interval
                    self._look()
            finally:
                self._lock.release()
        return self._value

    def _look(self) -> None:
        seen = self._version()
        if seen is None:
            self._reject(None, "cannot be read")
            return
        if seen == self._seen:
            return
        try:
            value, signature = self._load()
        except OSError as error:
            self._reject(seen, f"cannot be read: {error.strerror or error}")
            return
        except self._rejects as error:
            self._reject(seen, str(error))
            return
        self._value, self._seen = value, signature
        self.last_error = None
        self._logger.info("%s reloaded%s", self._what, self._summary(value))

    def _reject(self, seen: Version | None, reason: str) -> None:
        if seen is None and self._seen is None:
            return  # still unreadable: said once already
        self._seen = seen
        self.last_error = reason
        self._logger.warning("%s not reloaded, the last good one stays in force: %s", self._what, reason)


class WatchedFile(Watched[T]):
    """One file: `parse` turns its bytes into the value, raising one of `rejects` for a file it cannot use."""

    def __init__(
        self,
        path: Path,
        parse: Callable[[bytes], T],
        *,
        what: str,
        logger: logging.Logger,
        rejects: tuple[type[Exception], ...] = (ValueError,),
        summary: Callable[[T], str] = lambda _value: "",
        check_interval_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._parse = parse
        super().__init__(
            self._stat,
            self._read,
            what=f"{what} {path}",
            logger=logger,
            rejects=rejects,
            summary=summary,
            check_interval_seconds=check_interval_seconds,
            clock=clock,
        )

    def _stat(self) -> Version | None:
        try:
            return signature_of(os.stat(self.path))
        except OSError:
            return None

    def _read(self) -> tuple[T, Version | None]:
        with self.path.open("rb") as file:
            signature = signature_of(os.fstat(file.fileno()))
            data = file.read()
        return self._parse(data), signature
