"""scripts/setup.sh installs only what is missing or whose inputs changed (its --dry-run decisions),
and its stamps still match the inputs after it ran: installing rewrote none of them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

INPUTS = ("pyproject.toml", "setup.py", "package.json", "package-lock.json")
STAMPS = (".venv/.clinpred-python-inputs", "node_modules/.clinpred-npm-inputs")
TOOLS = (".venv/bin/python", "node_modules/.bin/buf", ".venv-tools/bin/checkov", ".tools/bin/kubectl")


BASH = shutil.which("bash") or "/bin/bash"


def dry_run(checkout: Path, path: str | None = None) -> str:
    env = dict(os.environ, PATH=path or os.environ["PATH"])
    result = subprocess.run(
        [BASH, str(checkout / "scripts" / "setup.sh"), "--dry-run"], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@pytest.fixture
def set_up_copy(tmp_path: Path) -> Path:
    """The script, its inputs and the stamps `make` left in this checkout, with stand-ins for what it installs."""
    for stamp in STAMPS:
        if not (REPO / stamp).is_file():
            pytest.fail(f"{stamp} is missing: run `bash scripts/setup.sh` (make test does) first")
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    for name in (*INPUTS, *STAMPS):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    for tool in (*TOOLS, "bin/plink2"):
        (tmp_path / tool).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / tool).write_text("#!/bin/sh\n")
        (tmp_path / tool).chmod(0o755)
    return tmp_path


def with_plink2(checkout: Path) -> str:
    return f"{checkout / 'bin'}:{os.environ['PATH']}"


def test_a_set_up_checkout_needs_nothing(set_up_copy: Path) -> None:
    # The stamps were written after installing, from the inputs as they were before: equal now, so
    # pip and `npm ci` left pyproject.toml, setup.py, package.json and package-lock.json as they were.
    assert dry_run(set_up_copy, with_plink2(set_up_copy)) == "setup would install: nothing"


def test_a_fresh_machine_gets_everything(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    for name in INPUTS:
        shutil.copy(REPO / name, tmp_path / name)
    # A PATH with only what the decisions run, so no plink2 either.
    bare = tmp_path / "bare-bin"
    bare.mkdir()
    for command in ("cat", "sha256sum", "cut", "dirname"):
        (bare / command).symlink_to(shutil.which(command) or command)
    assert dry_run(tmp_path, str(bare)) == "setup would install: venv python-packages buf checkov kubectl plink2"


@pytest.mark.parametrize(
    ("change", "installs"),
    [
        ("pyproject.toml", "python-packages"),
        ("setup.py", "python-packages"),
        ("package.json", "buf"),
        ("package-lock.json", "buf"),
    ],
)
def test_a_changed_input_reinstalls_only_what_it_feeds(set_up_copy: Path, change: str, installs: str) -> None:
    with (set_up_copy / change).open("a") as file:
        file.write("\n")
    assert dry_run(set_up_copy, with_plink2(set_up_copy)) == f"setup would install: {installs}"


def test_a_missing_tool_is_installed_again(set_up_copy: Path) -> None:
    (set_up_copy / "node_modules" / ".bin" / "buf").unlink()
    (set_up_copy / ".tools" / "bin" / "kubectl").unlink()
    assert dry_run(set_up_copy, with_plink2(set_up_copy)) == "setup would install: buf kubectl"
