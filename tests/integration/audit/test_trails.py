"""The audit trail on real files, SQLite and PostgreSQL: intact chains verify, each kind of damage is found."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from clinpred.services.common.audit import AuditKeys, AuditRecord, AuditTrail, ProblemKind, VerificationReport, verify
from clinpred.services.common.audit.sql_log import AuditSqlLog
from tests.conftest import REPO
from tests.integration.audit.conftest import Trail
from tests.unit.services.audit.sample_entries import MARKER_PATIENT_ID, sample_entry


def _report(trail: Trail, keys: AuditKeys) -> VerificationReport:
    stored = trail.read()
    return verify(stored.records_by_writer, stored.heads, keys, stored.unreadable)


def _problems(trail: Trail, keys: AuditKeys) -> list[tuple[ProblemKind, str, int | None]]:
    return [(p.kind, p.writer_id, p.sequence) for p in _report(trail, keys).problems]


def _filled(trail: Trail, keys: AuditKeys, count: int = 5) -> tuple[str, list[AuditRecord]]:
    log = trail.open(keys)
    records = [log.append(sample_entry(keys, request_id=f"req-{n}")) for n in range(count)]
    log.close()
    return records[0].writer_id, records


def test_appended_records_read_back_and_verify_intact(trail: Trail, keys: AuditKeys) -> None:
    writer, records = _filled(trail, keys)
    assert [r.sequence for r in records] == [1, 2, 3, 4, 5]
    assert records[0].previous_hash == keys.genesis_hash(writer)
    assert all(b.previous_hash == a.hash for a, b in itertools.pairwise(records))
    stored = trail.read()
    assert stored.records_by_writer == {writer: records}
    assert stored.heads[writer].sequence == 5 and stored.heads[writer].hash == records[-1].hash
    report = _report(trail, keys)
    assert report.intact and (report.writers, report.records) == (1, 5)


def test_a_removed_record_is_found(trail: Trail, keys: AuditKeys) -> None:
    writer, _ = _filled(trail, keys)
    trail.remove(writer, 3)
    assert _problems(trail, keys) == [(ProblemKind.REMOVED, writer, 3)]


def test_reordered_records_are_found(trail: Trail, keys: AuditKeys) -> None:
    writer, _ = _filled(trail, keys)
    trail.swap(writer, 2, 3)
    assert _problems(trail, keys) == [(ProblemKind.REORDERED, writer, 2)]


def test_an_edited_record_is_found(trail: Trail, keys: AuditKeys) -> None:
    writer, _ = _filled(trail, keys)
    trail.edit(writer, 4, '"outcome":"OK"', '"outcome":"NOT_FOUND"')
    assert _problems(trail, keys) == [(ProblemKind.EDITED, writer, 4)]


def test_a_cut_tail_is_found_against_the_head(trail: Trail, keys: AuditKeys) -> None:
    writer, _ = _filled(trail, keys)
    trail.cut_tail(writer, keep=3)
    report = _report(trail, keys)
    assert [(p.kind, p.sequence) for p in report.problems] == [(ProblemKind.TRUNCATED, 4)]
    assert "chain ends at 3, its head at 5" in report.problems[0].detail


def test_a_new_log_is_a_new_writer_and_old_chains_stay_intact(trail: Trail, keys: AuditKeys) -> None:
    first, _ = _filled(trail, keys, 3)
    second, records = _filled(trail, keys, 2)
    assert first != second and records[0].sequence == 1
    report = _report(trail, keys)
    assert report.intact and (report.writers, report.records) == (2, 5)


def test_threads_appending_to_one_log_make_one_gapless_chain(trail: Trail, keys: AuditKeys) -> None:
    log = trail.open(keys)
    appended: list[AuditRecord] = []
    lock = threading.Lock()

    def work(number: int) -> None:
        for item in range(15):
            record = log.append(sample_entry(keys, request_id=f"thread-{number}-{item}"))
            with lock:
                appended.append(record)

    with ThreadPoolExecutor(4) as executor:
        working = [executor.submit(work, n) for n in range(4)]
    log.close()
    for future in working:
        future.result()  # an append's failure fails the test with its own error
    assert sorted(r.sequence for r in appended) == list(range(1, 61))
    report = _report(trail, keys)
    assert report.intact and (report.writers, report.records) == (1, 60)


def test_appends_waiting_on_a_commit_are_stored_together_in_the_next_transaction(
    sql_trail: Trail, keys: AuditKeys
) -> None:
    trail = sql_trail
    log = trail.open(keys)
    assert isinstance(log, AuditSqlLog)
    first = log.append(sample_entry(keys, request_id="before"))
    transactions = 0
    database = log._database
    real_transaction = database.transaction

    def counted() -> AbstractContextManager[Any]:
        nonlocal transactions
        transactions += 1
        return real_transaction()

    database.transaction = counted  # type: ignore[method-assign]
    appended: list[AuditRecord] = []
    # As if a commit were under way: the appends that arrive meanwhile queue for the next one.
    with log._lock:
        threads = [
            threading.Thread(target=lambda n=n: appended.append(log.append(sample_entry(keys, request_id=f"waiting-{n}"))))
            for n in range(8)
        ]
        for thread in threads:
            thread.start()
        while len(log._queue) < len(threads):
            time.sleep(0.001)
    for thread in threads:
        thread.join()
    log.close()
    assert transactions == 1
    assert sorted(r.sequence for r in appended) == list(range(2, 10))
    assert {r.writer_id for r in appended} == {first.writer_id}
    report = _report(trail, keys)
    assert report.intact and (report.writers, report.records) == (1, 9)


def test_several_logs_appending_at_once_from_threads_each_keep_their_own_chain(trail: Trail, keys: AuditKeys) -> None:
    trail.open(keys).close()
    logs = [trail.open(keys) for _ in range(3)]
    # The logs' first appends also open their first connections at once, which switch a new SQLite file to WAL.
    def work(log: AuditTrail) -> None:
        for _ in range(20):
            log.append(sample_entry(keys))

    with ThreadPoolExecutor(len(logs)) as executor:
        appending = [executor.submit(work, log) for log in logs]
    try:
        for future in appending:
            future.result()  # an append's failure fails the test with its own error
    finally:
        for log in logs:
            log.close()
    report = _report(trail, keys)
    assert report.intact and (report.writers, report.records) == (3, 60)


def test_processes_appending_to_one_trail_each_keep_their_own_chain(trail: Trail, keys: AuditKeys) -> None:
    source = ["--dir", trail.location] if trail.kind == "files" else ["--database", trail.location]
    trail.open(keys).close()  # create the folder or tables once, as a service's start does
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.audit.appender", *source, "--count", "40"],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    report = _report(trail, keys)
    assert report.intact and (report.writers, report.records) == (3, 120)


def _append_in_child(log: object, keys: AuditKeys, count: int) -> None:
    for number in range(count):
        log.append(sample_entry(keys, request_id=f"child-{number}"))  # type: ignore[attr-defined]


def test_a_forked_child_never_continues_its_parents_chain(trail: Trail, keys: AuditKeys) -> None:
    log = trail.open(keys)
    parent = log.append(sample_entry(keys))
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_append_in_child, args=(log, keys, 10)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    assert [c.exitcode for c in children] == [0, 0]
    after = log.append(sample_entry(keys))
    log.close()
    assert (after.writer_id, after.sequence) == (parent.writer_id, 2)
    report = _report(trail, keys)
    assert report.intact and (report.writers, report.records) == (3, 22)


def test_no_raw_patient_id_is_stored(trail: Trail, keys: AuditKeys) -> None:
    _filled(trail, keys, 3)
    stored = trail.read()
    assert all(MARKER_PATIENT_ID not in r.to_json().decode() for rs in stored.records_by_writer.values() for r in rs)
    if trail.kind != "postgresql":
        files = [p for p in Path(trail.location.removeprefix("sqlite:///")).parent.rglob("*") if p.is_file()]
        assert files and all(b"MARKER" not in p.read_bytes() for p in files)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_audit_tables_live_beside_the_deterioration_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, keys: AuditKeys
) -> None:
    from clinpred.pilots.deterioration.store import open_store
    from clinpred.services.common.audit import AuditSqlLog, read_database
    from tests.integration.deterioration.conftest import _drop_tables

    url = f"sqlite:///{tmp_path / 'risk.db'}" if kind == "sqlite" else request.getfixturevalue("postgres_url")
    try:
        log = AuditSqlLog(url, keys)  # audit first, store second ...
        store = open_store(url)
        record = log.append(sample_entry(keys))
        store.close()
        log.close()
        again = AuditSqlLog(url, keys)  # ... and both again: each applies only what is missing
        open_store(url).close()
        again.append(sample_entry(keys))
        again.close()
        stored = read_database(url)
        assert [r.sequence for r in stored.records_by_writer[record.writer_id]] == [1]
        assert verify(stored.records_by_writer, stored.heads, keys).intact
        assert _applied_migrations(url) == ["0001.initial-schema", "0002.sealed-requests-seen", "audit-0001.audit-trail"]
    finally:
        if kind == "postgresql":
            _drop_tables(url)


def _applied_migrations(url: str) -> list[str]:
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            return sorted(row[0] for row in connection.execute("SELECT migration_id FROM _yoyo_migration"))
    import psycopg

    with psycopg.connect(url) as connection:
        return sorted(row[0] for row in connection.execute("SELECT migration_id FROM _yoyo_migration"))


def test_a_torn_last_line_and_a_writer_without_head_are_found_in_files(tmp_path: Path, keys: AuditKeys) -> None:
    from clinpred.services.common.audit import AuditFileLog, read_records

    folder = tmp_path / "audit"
    log = AuditFileLog(folder, keys)
    record = log.append(sample_entry(keys))
    log.close()
    path = folder / f"{record.writer_id}.jsonl"
    with open(path, "ab") as file:  # a write cut short by a crash
        file.write(record.to_json()[:40])
    stranger = "e" * 32
    (folder / f"{stranger}.jsonl").write_bytes(path.read_bytes().splitlines(keepends=True)[0])
    stored = read_records(directory=folder)
    report = verify(stored.records_by_writer, stored.heads, keys, stored.unreadable)
    assert [(p.kind, p.writer_id) for p in report.problems] == [
        (ProblemKind.TORN, record.writer_id),
        (ProblemKind.UNKNOWN_WRITER, stranger),
        (ProblemKind.EDITED, stranger),  # the copy claims another writer
        (ProblemKind.EDITED, stranger),  # and so does not link to the stranger's genesis
    ]
    assert report.problems[0].detail == "line 2: the last line has no end"
