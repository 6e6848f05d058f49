"""`clinpred audit keygen|verify|export` as a person runs them, on real trails."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fhir.resources.R4B.auditevent import AuditEvent
from typer.testing import CliRunner

from clinpred.cli.main import app
from clinpred.services.common.audit import AuditFileLog, AuditKeys, write_key_file
from tests.conftest import REPO
from tests.integration.audit.conftest import Trail
from tests.unit.services.audit.sample_entries import MARKER_PATIENT_ID, sample_entry


def clinpred(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clinpred.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
        check=False,
    )


def in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The same command through typer's runner: for checks of options and messages, without a process start."""
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def _key(tmp_path: Path, name: str = "audit.key") -> tuple[Path, AuditKeys]:
    path = tmp_path / name
    write_key_file(path)  # what `clinpred audit keygen` runs (tested below); in-process saves a start per test
    return path, AuditKeys.from_file(path)


def test_keygen_writes_a_private_key_and_never_overwrites_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    made = clinpred("audit", "keygen", str(path))
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == f"wrote a new audit key to {path} (mode 0600)"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_bytes()) == 64
    AuditKeys.from_file(path)
    before = path.read_bytes()
    again = clinpred("audit", "keygen", str(path))
    assert again.returncode == 7
    assert "exists; a key file is never overwritten" in again.stderr and "Traceback" not in again.stderr
    assert path.read_bytes() == before


def test_verify_says_intact_then_names_each_problem(trail: Trail, tmp_path: Path) -> None:
    key_file, keys = _key(tmp_path)
    log = trail.open(keys)
    records = [log.append(sample_entry(keys)) for _ in range(4)]
    log.close()
    writer = records[0].writer_id
    intact = clinpred("audit", "verify", *trail.cli_source(), "--key-file", str(key_file))
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.strip() == f"audit trail {trail.location}: 1 writer(s), 4 record(s): intact"

    trail.edit(writer, 2, '"outcome":"OK"', '"outcome":"INTERNAL"')
    trail.cut_tail(writer, keep=3)
    broken = clinpred("audit", "verify", *trail.cli_source(), "--key-file", str(key_file))
    assert broken.returncode == 7
    assert broken.stdout.splitlines() == [
        f"audit trail {trail.location}: 1 writer(s), 3 record(s): 2 problem(s)",
        f"edited: writer {writer} sequence 2: content does not match its hash",
        f"truncated: writer {writer} sequence 4: chain ends at 3, its head at 4: 4 missing",
    ]
    as_json = json.loads(clinpred("audit", "verify", *trail.cli_source(), "--key-file", str(key_file), "--json").stdout)
    assert as_json["intact"] is False and (as_json["writers"], as_json["records"]) == (1, 3)
    assert [(p["kind"], p["sequence"]) for p in as_json["problems"]] == [("edited", 2), ("truncated", 4)]


def test_verify_with_another_key_fails_every_record_and_says_why(tmp_path: Path) -> None:
    _, keys = _key(tmp_path)
    log = AuditFileLog(tmp_path / "audit", keys)
    log.append(sample_entry(keys))
    other, _ = _key(tmp_path, "other.key")
    result = in_process("audit", "verify", "--dir", str(tmp_path / "audit"), "--key-file", str(other))
    assert result.returncode == 7
    assert "is --key-file the key these records were sealed with?" in result.stderr


def test_verify_refuses_bad_keys_sources_and_usage(tmp_path: Path) -> None:
    key_file, _ = _key(tmp_path)
    key_file.chmod(0o644)
    loose = in_process("audit", "verify", "--dir", str(tmp_path), "--key-file", str(key_file))
    assert loose.returncode == 7 and "accessible to every user" in loose.stderr
    key_file.chmod(0o600)
    missing = in_process("audit", "verify", "--dir", str(tmp_path / "absent"), "--key-file", str(key_file))
    assert missing.returncode == 5 and "does not exist" in missing.stderr
    both = in_process("audit", "verify", "--dir", str(tmp_path), "--database", "sqlite:///x.db", "--key-file", str(key_file))
    assert both.returncode == 2 and "exactly one of --dir or --database" in both.stderr
    unreachable = in_process("audit", "verify", "--database", "postgresql://postgres@127.0.0.1:1/x", "--key-file", str(key_file))
    assert unreachable.returncode == 5 and "UNAVAILABLE" in unreachable.stderr


def test_export_writes_one_valid_fhir_audit_event_per_line(trail: Trail, tmp_path: Path) -> None:
    key_file, keys = _key(tmp_path)
    log = trail.open(keys)
    methods = ["RecordObservations", "GetLatestRisk", "ListRiskHistory"]
    records = [log.append(sample_entry(keys, method=f"/clinpred.deterioration.v1.DeteriorationService/{m}")) for m in methods]
    log.close()
    since = (records[0].recorded_at - timedelta(seconds=1)).isoformat()
    out = tmp_path / "events.ndjson"
    result = clinpred(
        "audit", "export", *trail.cli_source(), "--key-file", str(key_file), "--since", since, "--fhir", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert f"exported 3 AuditEvent(s) to {out}" in result.stderr
    text = out.read_text()
    assert MARKER_PATIENT_ID not in text and "MARKER" not in text
    events = [json.loads(line) for line in text.splitlines()]
    for event in events:
        AuditEvent.model_validate(event)
    assert [e["subtype"][0]["code"] for e in events] == ["create", "read", "search-type"]
    assert [e["id"] for e in events] == [f"{r.writer_id}-{r.sequence}" for r in records]
    assert not list(tmp_path.glob(".*.partial"))

    # --until is exclusive; stdout when no --out; nothing after the window.
    until = records[1].recorded_at.isoformat()
    window = clinpred(
        "audit", "export", *trail.cli_source(), "--key-file", str(key_file), "--since", since, "--until", until, "--fhir"
    )
    assert window.returncode == 0, window.stderr
    assert [json.loads(line)["id"] for line in window.stdout.splitlines()] == [events[0]["id"]]
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    empty = clinpred("audit", "export", *trail.cli_source(), "--key-file", str(key_file), "--since", later, "--fhir")
    assert empty.returncode == 0 and empty.stdout == ""


def test_export_leaves_out_records_that_fail_their_hash(tmp_path: Path) -> None:
    key_file, keys = _key(tmp_path)
    log = AuditFileLog(tmp_path / "audit", keys)
    records = [log.append(sample_entry(keys)) for _ in range(3)]
    path = tmp_path / "audit" / f"{records[0].writer_id}.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"client":"telemonitoring-app"', '"client":"someone-else"')
    path.write_text("".join(lines))
    result = in_process(
        "audit",
        "export",
        "--dir",
        str(tmp_path / "audit"),
        "--key-file",
        str(key_file),
        "--since",
        "2000-01-01T00:00:00Z",
        "--fhir",
    )
    assert result.returncode == 7
    assert "1 record(s) failed their hash and were left out" in result.stderr
    assert [json.loads(line)["id"].rsplit("-", 1)[1] for line in result.stdout.splitlines()] == ["1", "3"]


def test_export_refuses_a_time_without_zone_and_a_missing_fhir_flag(tmp_path: Path) -> None:
    key_file, _ = _key(tmp_path)
    (tmp_path / "audit").mkdir()
    naive = in_process(
        "audit",
        "export",
        "--dir",
        str(tmp_path / "audit"),
        "--key-file",
        str(key_file),
        "--since",
        "2026-11-01T00:00:00",
        "--fhir",
    )
    assert naive.returncode == 2 and "give the time zone" in naive.stderr
    no_format = in_process(
        "audit", "export", "--dir", str(tmp_path / "audit"), "--key-file", str(key_file), "--since", "2026-11-01T00:00:00Z"
    )
    assert no_format.returncode == 2 and "add --fhir" in no_format.stderr
