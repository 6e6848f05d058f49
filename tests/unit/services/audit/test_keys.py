"""Audit keys: the key file's checks, pseudonyms, chain hashes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from clinpred.services.common.audit import AuditKeyError, AuditKeys, write_key_file
from tests.unit.services.audit.sample_entries import MARKER_PATIENT_ID, sample_keys


def test_keygen_writes_a_0600_file_the_keys_load_from(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    write_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 64
    keys = AuditKeys.from_file(path)
    assert keys.pseudonym("t", "p") == AuditKeys.from_file(path).pseudonym("t", "p")
    other = tmp_path / "other.key"
    write_key_file(other)
    assert AuditKeys.from_file(other).pseudonym("t", "p") != keys.pseudonym("t", "p")


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    write_key_file(path)
    before = path.read_bytes()
    with pytest.raises(AuditKeyError, match="exists; a key file is never overwritten"):
        write_key_file(path)
    assert path.read_bytes() == before


def _key_file(tmp_path: Path, content: bytes, mode: int) -> Path:
    path = tmp_path / "key"
    path.write_bytes(content)
    os.chmod(path, mode)
    return path


def test_a_short_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AuditKeyError, match="holds 31 bytes; at least 32"):
        AuditKeys.from_file(_key_file(tmp_path, b"k" * 31, 0o600))


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602])
def test_a_key_file_everyone_can_access_is_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(AuditKeyError, match=rf"accessible to every user \(mode {mode:04o}\).*chmod 600"):
        AuditKeys.from_file(_key_file(tmp_path, os.urandom(32), mode))


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o440])
def test_owner_and_group_readable_key_files_load(tmp_path: Path, mode: int) -> None:
    keys = AuditKeys.from_file(_key_file(tmp_path, b"s" * 32, mode))
    assert keys.pseudonym("t", "p") == AuditKeys.from_secret(b"s" * 32).pseudonym("t", "p")


def test_a_missing_key_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(AuditKeyError, match="clinpred audit keygen FILE"):
        AuditKeys.from_file(tmp_path / "absent")


def test_a_pseudonym_is_stable_per_key_and_differs_across_keys_and_tenants() -> None:
    keys = sample_keys()
    first = keys.pseudonym("hospital-a", MARKER_PATIENT_ID)
    assert first == sample_keys().pseudonym("hospital-a", MARKER_PATIENT_ID)
    assert len(first) == 64 and int(first, 16) >= 0
    assert first != keys.pseudonym("hospital-b", MARKER_PATIENT_ID)  # two hospitals' child-17 differ
    assert first != sample_keys(bytes(64)).pseudonym("hospital-a", MARKER_PATIENT_ID)
    assert first != keys.pseudonym("hospital-a", "child-17")
    assert MARKER_PATIENT_ID not in first and "MARKER" not in first.upper()
    # The tenant and id are kept apart: ("ab", "c") is not ("a", "bc").
    assert keys.pseudonym("ab", "c") != keys.pseudonym("a", "bc")
    assert keys.pseudonym("hospital-a", "") == ""


def test_the_chain_key_is_not_the_pseudonym_key() -> None:
    keys = sample_keys()
    fields = {"a": 1}
    assert keys.chain_hash("0" * 64, fields) != keys.chain_hash("1" * 64, fields)
    assert keys.chain_hash("0" * 64, fields) != keys.chain_hash("0" * 64, {"a": 2})
    assert keys.genesis_hash("w1") != keys.genesis_hash("w2")
    # HKDF with distinct labels: the same message under the two keys gives different MACs.
    assert keys.pseudonym("t", "p") != keys.chain_hash("", {"patient_id": "p", "tenant": "t"})
    assert "secret" in repr(keys) and str(bytes(range(64))) not in repr(keys)
