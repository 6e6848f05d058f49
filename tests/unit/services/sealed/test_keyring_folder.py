"""A service's keyring folder, re-read when it changes: at most once per interval, a broken file keeps the last good keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clinpred.services.common.sealed_messages import key_configuration, sealing_key_of
from clinpred.services.common.sealed_rpc import KeyringFolder
from clinpred.services.common.sealing_keys import init_keyring, rotate_keyring


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_rotation_is_seen_after_the_interval_and_not_before(tmp_path: Path) -> None:
    first = init_keyring(tmp_path, datetime.now(UTC))
    clock = Clock()
    folder = KeyringFolder(tmp_path, check_interval_seconds=1.0, clock=clock)
    new = rotate_keyring(tmp_path, datetime.now(UTC) + timedelta(seconds=1), timedelta(hours=1))
    clock.now = 0.5
    assert [k.key_id for k in folder.current().configurations()] == [first.key_id]
    clock.now = 1.5
    assert [k.key_id for k in folder.current().configurations()] == [first.key_id, new.key_id]
    assert folder.current().current(datetime.now(UTC) + timedelta(seconds=2)).key_id == new.key_id


def test_a_broken_key_file_keeps_the_last_good_keyring(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = init_keyring(tmp_path, datetime.now(UTC))
    clock = Clock()
    folder = KeyringFolder(tmp_path, check_interval_seconds=1.0, clock=clock)
    (tmp_path / ("0" * 16 + ".json")).write_text("{not json")
    clock.now = 2.0
    assert [k.key_id for k in folder.current().configurations()] == [first.key_id]
    assert folder.last_error is not None and "not a sealing key file" in folder.last_error
    assert "the last good one stays in force" in caplog.text
    (tmp_path / ("0" * 16 + ".json")).unlink()
    clock.now = 4.0
    folder.current()
    assert folder.last_error is None


def test_a_key_configuration_survives_the_message_both_ways(tmp_path: Path) -> None:
    key = init_keyring(tmp_path, datetime.now(UTC).replace(microsecond=0))
    message = key_configuration(key)
    assert (message.kem_id, message.kdf_id, message.aead_id) == (0x647A, 0x0001, 0x0002)
    assert not message.HasField("not_after")
    assert sealing_key_of(message) == key
    retired = rotate_keyring(tmp_path, datetime.now(UTC).replace(microsecond=0), timedelta(minutes=5))
    assert retired.key_id != key.key_id
