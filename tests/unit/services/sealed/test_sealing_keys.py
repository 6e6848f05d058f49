"""Keyring folders: what is refused, and what a client can rebuild from the public configuration."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clinpred.pilots.common.errors import FailedPrecondition
from clinpred.services.common.sealed import InMemoryReplayGuard, open_request, seal_request
from clinpred.services.common.sealing_keys import (
    Keyring,
    KeyringError,
    PrivateSealingKey,
    SealingKey,
    generate_key,
    init_keyring,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_a_public_configuration_survives_json_and_seals_requests_the_keyring_opens(tmp_path: Path) -> None:
    key = init_keyring(tmp_path / "keys", NOW)
    published = SealingKey.from_json(json.loads(json.dumps(key.as_json())))
    assert published == key
    envelope, _ = seal_request(published, "/a.B/C", b"x", NOW)
    assert open_request(Keyring.load(tmp_path / "keys"), envelope, NOW, guard=InMemoryReplayGuard()).request == b"x"


def test_init_refuses_a_folder_that_holds_keys(tmp_path: Path) -> None:
    init_keyring(tmp_path, NOW)
    with pytest.raises(KeyringError, match="already holds"):
        init_keyring(tmp_path, NOW)


def test_missing_empty_and_broken_folders_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="not a folder"):
        Keyring.load(tmp_path / "absent")
    with pytest.raises(KeyringError, match="no sealing key"):
        Keyring.load(tmp_path)
    key = init_keyring(tmp_path / "keys", NOW)
    path = tmp_path / "keys" / f"{key.key_id}.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "mlkem_seed": "not base64!"}))
    with pytest.raises(KeyringError, match=f"{key.key_id}.json is not a sealing key file"):
        Keyring.load(tmp_path / "keys")
    path.write_text(json.dumps({**data, "kem": "X25519"}))
    with pytest.raises(KeyringError, match="unsupported suite"):
        Keyring.load(tmp_path / "keys")
    renamed = tmp_path / "keys" / "00000000000000aa.json"
    path.write_text(json.dumps(data))
    path.rename(renamed)
    with pytest.raises(KeyringError, match="name the file"):
        Keyring.load(tmp_path / "keys")


def test_a_keyring_with_every_key_expired_says_to_rotate() -> None:
    key = generate_key(NOW - timedelta(days=2))
    expired = PrivateSealingKey(replace(key.config, not_after=NOW - timedelta(days=1)), key.mlkem_seed, key.x25519_private)
    with pytest.raises(FailedPrecondition, match="clinpred keys rotate"):
        Keyring([expired]).current(NOW)
