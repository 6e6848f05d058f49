"""A file parsed into a value and parsed again when it changes: policies, revocation lists, key sets.

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


def signature_of(status: os.stat_result) -> Signature:
    return (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


class WatchedFile(Generic[T]):
    """`parse` turns the file's bytes into the value, raising one of `rejects` (ValueError by default) for a
    file it cannot use. At construction an unreadable file raises OSError and an unusable one its own error,
    so a service never starts without the file; `summary` adds a few words to the reload message."""

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
        if not check_interval_seconds >= 0:
            raise ValueError("check_interval_seconds must be >= 0")
        self.path = path
        self._parse = parse
        self._what = what
        self._logger = logger
        self._rejects = rejects
        self._summary = summary
        self._interval = check_interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._value, self._seen = self._read()
        self.last_error: str | None = None
        self._next_check = clock() + check_interval_seconds

    def _read(self) -> tuple[T, Signature | None]:
        """The value of the file and the signature of exactly the version read."""
        with self.path.open("rb") as file:
            signature = signature_of(os.fstat(file.fileno()))
            data = file.read()
        return self._parse(data), signature

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
        try:
            seen: Signature | None = signature_of(os.stat(self.path))
        except OSError as error:
            self._reject(None, f"cannot be read: {error.strerror or error}")
            return
        if seen == self._seen:
            return
        try:
            value, signature = self._read()
        except OSError as error:
            self._reject(seen, f"cannot be read: {error.strerror or error}")
            return
        except self._rejects as error:
            self._reject(seen, str(error))
            return
        self._value, self._seen = value, signature
        self.last_error = None
        self._logger.info("%s %s reloaded%s", self._what, self.path, self._summary(value))

    def _reject(self, seen: Signature | None, reason: str) -> None:
        if seen is None and self._seen is None:
            return  # still missing: said once already
        self._seen = seen
        self.last_error = reason
        self._logger.warning("%s %s not reloaded, the last good one stays in force: %s", self._what, self.path, reason)
