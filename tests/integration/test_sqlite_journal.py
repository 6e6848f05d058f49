"""Opening an SQLite file in WAL mode while another connection holds its write lock (real SQLite files)."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from clinpred.pilots.common.sqlite_journal import connect_wal


def test_switching_a_rollback_journal_file_to_wal_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x INTEGER)")
    assert writer.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    # SQLite refuses the switch at once, without its busy timeout, while another connection holds the
    # write lock: that is what several first connections switching the same file at once run into.
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    with ThreadPoolExecutor(1) as executor:
        opening = executor.submit(connect_wal, path, timeout=30, check_same_thread=False)
        done, _ = wait([opening], timeout=0.5)
        assert not done, f"the switch did not wait for the writer: {opening.exception()!r}"
        writer.execute("COMMIT")
        connection = opening.result()
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("SELECT x FROM t").fetchall() == [(1,)]
    finally:
        connection.close()
        writer.close()
