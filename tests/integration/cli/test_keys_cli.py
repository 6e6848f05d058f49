"""`clinpred keys init|rotate|list` as a process: private files, rotation with a grace period, public listing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clinpred.cli.errors import ExitCode
from clinpred.pilots.common.errors import FailedPrecondition
from clinpred.services.common.sealed import InMemoryReplayGuard, open_request, seal_request
from clinpred.services.common.sealing_keys import PUBLIC_KEY_BYTES, Keyring, SealingKey
from tests.integration.cli.conftest import cli_process


def keys(*args: str) -> dict[str, object]:
    result = cli_process("keys", *args, "--json")
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def test_init_rotate_and_list_serve_public_configurations_and_keep_private_keys_private(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    first = keys("init", str(folder))
    assert (first["kem"], first["kdf"], first["aead"]) == ("MLKEM768_X25519", "HKDF_SHA256", "AES_256_GCM")
    assert len(base64.b64decode(str(first["public_key"]))) == PUBLIC_KEY_BYTES and first["not_after"] is None
    second = keys("rotate", str(folder), "--grace-seconds", "600")
    listed = keys("list", str(folder))
    assert listed["current_key_id"] == second["key_id"]
    by_id = {str(k["key_id"]): k for k in listed["keys"]}  # type: ignore[attr-defined]
    assert set(by_id) == {first["key_id"], second["key_id"]}
    old_end = datetime.fromisoformat(str(by_id[str(first["key_id"])]["not_after"]))
    assert old_end == datetime.fromisoformat(str(second["not_before"])) + timedelta(seconds=600)
    assert all(set(key) == {"key_id", "kem", "kdf", "aead", "public_key", "not_before", "not_after"} for key in by_id.values())
    assert "mlkem_seed" not in json.dumps(listed)
    assert sorted(path.name for path in folder.iterdir()) == sorted(f"{key_id}.json" for key_id in by_id)
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in folder.iterdir())

    # What `list` publishes seals requests the folder's keys open: the old key until its grace period ends.
    keyring = Keyring.load(folder)
    old = SealingKey.from_json(by_id[str(first["key_id"])])
    envelope, _ = seal_request(old, "/a.B/C", b"x", datetime.now(UTC))
    assert open_request(keyring, envelope, datetime.now(UTC), guard=InMemoryReplayGuard()).key_id == first["key_id"]
    later = old_end + timedelta(seconds=1)
    late, _ = seal_request(old, "/a.B/C", b"x", later)
    with pytest.raises(FailedPrecondition, match=str(second["key_id"])):
        open_request(keyring, late, later, guard=InMemoryReplayGuard())


def test_the_grace_period_comes_from_the_environment_too(tmp_path: Path) -> None:
    keys("init", str(tmp_path))
    result = cli_process("keys", "rotate", str(tmp_path), "--json", env={"CLINPRED_SEALED_KEY_GRACE_SECONDS": "0"})
    assert result.returncode == 0, result.stderr
    listed = keys("list", str(tmp_path))
    ended = [k for k in listed["keys"] if k["not_after"] is not None]  # type: ignore[attr-defined]
    assert len(ended) == 1 and ended[0]["not_after"] == json.loads(result.stdout)["not_before"]


def test_init_twice_and_a_missing_folder_fail_with_a_reason(tmp_path: Path) -> None:
    keys("init", str(tmp_path))
    again = cli_process("keys", "init", str(tmp_path))
    assert again.returncode == ExitCode.FAILED_PRECONDITION and "already holds sealing keys" in again.stderr
    missing = cli_process("keys", "list", str(tmp_path / "absent"))
    assert missing.returncode == ExitCode.FAILED_PRECONDITION and "clinpred keys init" in missing.stderr
    plain = cli_process("keys", "list", str(tmp_path))
    assert plain.returncode == 0 and plain.stdout.rstrip().endswith("current")
