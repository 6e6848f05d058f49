"""DeteriorationSettings reads secrets (the database URL) from files in CLINPRED_SECRETS_DIR.

Kubernetes mounts the Secret `deterioration-database` there (k8s/base/deterioration), so
the URL with its password never sits in the environment (checkov CKV_K8S_35).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from clinpred.services.deterioration.settings import DeteriorationSettings, secrets_dir
from tests.conftest import REPO

URL = "postgresql://clinpred:s3cret@postgres.db.svc:5432/clinpred?sslmode=require"
VARIABLE = "CLINPRED_DETERIORATION_DATABASE_URL"


def kubelet_secret_volume(folder: Path, files: dict[str, str]) -> Path:
    """A Secret volume as the kubelet writes it: each file a symlink through `..data` into a hidden folder."""
    data = folder / "..2026_11_22_20_00_00.000000000"
    data.mkdir(parents=True)
    for name, text in files.items():
        (data / name).write_text(text)
        (folder / name).symlink_to(Path("..data") / name)
    (folder / "..data").symlink_to(data.name)
    return folder


def settings_in_fresh_process(env: dict[str, str]) -> dict[str, str]:
    """The settings a server process would see: the secrets folder is read from the environment at import."""
    code = (
        "import json, warnings\n"
        "warnings.simplefilter('error')\n"
        "from clinpred.services.deterioration.settings import DeteriorationSettings\n"
        "s = DeteriorationSettings()\n"
        "print(json.dumps({'database_url': s.database_url, 'tenant': s.development_tenant}))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CLINPRED_")}
    answer = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)


def test_a_file_in_the_secrets_dir_sets_the_database_url(tmp_path: Path) -> None:
    folder = kubelet_secret_volume(tmp_path / "secrets", {VARIABLE: URL + "\n"})  # trailing newline is stripped
    seen = settings_in_fresh_process({"CLINPRED_SECRETS_DIR": str(folder)})
    assert seen == {"database_url": URL, "tenant": "default"}


def test_the_same_in_process(tmp_path: Path) -> None:
    folder = kubelet_secret_volume(tmp_path / "secrets", {VARIABLE: URL})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert DeteriorationSettings(_secrets_dir=folder).database_url == URL  # type: ignore[call-arg]


def test_an_environment_variable_wins_over_the_file(tmp_path: Path) -> None:
    folder = kubelet_secret_volume(tmp_path / "secrets", {VARIABLE: URL})
    seen = settings_in_fresh_process({"CLINPRED_SECRETS_DIR": str(folder), VARIABLE: "sqlite:////tmp/x.db"})
    assert seen["database_url"] == "sqlite:////tmp/x.db"


def test_without_a_secrets_dir_nothing_changes_and_nothing_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer machine: no CLINPRED_SECRETS_DIR, no warning, the embedded SQLite default."""
    monkeypatch.delenv("CLINPRED_SECRETS_DIR", raising=False)
    assert secrets_dir() is None
    seen = settings_in_fresh_process({})
    assert seen["database_url"].startswith("sqlite:///")


def test_other_files_in_the_folder_are_ignored(tmp_path: Path) -> None:
    folder = kubelet_secret_volume(tmp_path / "secrets", {"url": "postgresql://someone-else", "README": "x"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert DeteriorationSettings(_secrets_dir=folder).database_url.startswith("sqlite:///")  # type: ignore[call-arg]
