"""Opening an SQLite file in WAL mode, which the risk store and the audit trail both write in.

WAL mode is kept in the file, but a file starts in rollback-journal mode (yoyo creates it so,
and a restored backup is one self-contained file). The first connections of several threads or
processes then all switch it at once, and SQLite answers all but one with SQLITE_BUSY at once,
without waiting its busy timeout: two connections each holding a shared lock and wanting the
exclusive one would otherwise wait for each other forever. Once one switch has gone through, the
others find the file in WAL mode and need no lock, so retrying them until the timeout is safe.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

_RETRY_PAUSE_SECONDS = 0.005


def connect_wal(path: Path, *, timeout: float, check_same_thread: bool) -> sqlite3.Connection:
    """A connection in autocommit (explicit BEGIN) on `path` in WAL mode with synchronous=FULL."""
    connection = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=check_same_thread)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
                time.sleep(_RETRY_PAUSE_SECONDS)
        connection.execute("PRAGMA synchronous=FULL")
    except BaseException:
        connection.close()
        raise
    return connection
