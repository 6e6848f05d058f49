"""A record that cannot be stored raises AuditUnavailable, so the call fails UNAVAILABLE instead of going unrecorded."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import psycopg
import pytest

from clinpred.services.common.audit import AuditKeys, AuditSqlLog, AuditUnavailable, read_database, verify
from tests.conftest import REPO
from tests.integration.deterioration.conftest import ADMIN_URL
from tests.unit.services.audit.sample_entries import sample_entry


def _run_unprivileged(script: str) -> subprocess.CompletedProcess[str]:
    """Runs `script` so that file permissions bind: root's permission override dropped (setpriv) when root."""
    command = [sys.executable, "-c", textwrap.dedent(script)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "running as root: util-linux setpriv is needed to drop CAP_DAC_OVERRIDE for this test"
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    return subprocess.run(
        command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120, check=False
    )


PRELUDE = """
    import sys
    from pathlib import Path
    from clinpred.services.common.audit import AuditFileLog, AuditUnavailable, read_directory, verify
    from tests.unit.services.audit.sample_entries import sample_entry, sample_keys
    keys = sample_keys()
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else None
"""


def test_a_read_only_directory_makes_appends_unavailable(tmp_path: Path) -> None:
    folder = tmp_path / "audit"
    folder.mkdir()
    result = _run_unprivileged(
        PRELUDE
        + f"""
    import os
    folder = Path({str(folder)!r})
    log = AuditFileLog(folder, keys)
    first = log.append(sample_entry(keys))
    os.chmod(folder, 0o500)
    try:
        log.append(sample_entry(keys))
    except AuditUnavailable as error:
        print("UNAVAILABLE", error.status, error.message)
    os.chmod(folder, 0o700)
    second = log.append(sample_entry(keys))
    stored = read_directory(folder)
    report = verify(stored.records_by_writer, stored.heads, keys, stored.unreadable)
    print("writers", report.writers, "records", report.records, "intact", report.intact, second.writer_id != first.writer_id)
    """
    )
    assert result.returncode == 0, result.stderr
    assert f"UNAVAILABLE UNAVAILABLE audit record could not be stored in {folder}: Permission denied" in result.stdout
    # The failed record was cut back off; the next append started a new writer; both chains are intact.
    assert "writers 2 records 2 intact True True" in result.stdout


def test_a_directory_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = _run_unprivileged(
        PRELUDE
        + f"""
    try:
        AuditFileLog(Path({str(locked / "audit")!r}), keys)
    except AuditUnavailable as error:
        print("UNAVAILABLE", error.message)
    """
    )
    assert result.returncode == 0, result.stderr
    assert "UNAVAILABLE audit directory" in result.stdout and "cannot be created: Permission denied" in result.stdout


def test_a_full_disk_makes_appends_unavailable_and_leaves_no_torn_line(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes writes past a size fail with EFBIG, as ENOSPC would on a full disk, and binds root too.
    result = _run_unprivileged(
        PRELUDE
        + f"""
    import resource, signal
    folder = Path({str(tmp_path / "audit")!r})
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))
    log = AuditFileLog(folder, keys)
    appended = 0
    try:
        for _ in range(100):
            log.append(sample_entry(keys))
            appended += 1
    except AuditUnavailable as error:
        print("UNAVAILABLE after", appended, error.message)
    stored = read_directory(folder)
    report = verify(stored.records_by_writer, stored.heads, keys, stored.unreadable)
    print("records", report.records, "intact", report.intact)
    print("same", report.records == appended)
    """
    )
    assert result.returncode == 0, result.stderr
    assert "UNAVAILABLE after" in result.stdout and "File too large" in result.stdout
    assert "intact True" in result.stdout and "same True" in result.stdout


def test_an_unreachable_database_is_unavailable(keys: AuditKeys) -> None:
    with pytest.raises(AuditUnavailable, match="audit database cannot be prepared: OperationalError"):
        AuditSqlLog("postgresql://postgres@127.0.0.1:1/nothing", keys)


def test_an_sqlite_file_that_cannot_exist_is_unavailable(tmp_path: Path, keys: AuditKeys) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(AuditUnavailable) as raised:
        AuditSqlLog(f"sqlite:///{tmp_path / 'file' / 'audit.db'}", keys)
    assert raised.value.status == "UNAVAILABLE"


def test_a_database_going_down_makes_appends_unavailable_until_it_is_back(keys: AuditKeys) -> None:
    name = f"clinpred_audit_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(ADMIN_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        log = AuditSqlLog(url, keys)
        first = log.append(sample_entry(keys))
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        for _ in range(2):  # the broken connection, then a refused reconnection
            with pytest.raises(AuditUnavailable, match="audit record could not be stored in the database"):
                log.append(sample_entry(keys))
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        again = log.append(sample_entry(keys))
        log.close()
        assert again.writer_id != first.writer_id and again.sequence == 1
        stored = read_database(url)
        report = verify(stored.records_by_writer, stored.heads, keys)
        assert report.intact and (report.writers, report.records) == (2, 2)
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()
