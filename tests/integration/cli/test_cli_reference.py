"""The README's command-line reference is the typer app's: every command and exit code, current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from clinpred.cli import reference
from clinpred.cli.errors import ExitCode
from tests.conftest import REPO


def test_the_readme_holds_the_current_reference() -> None:
    readme = (REPO / "README.md").read_text()
    assert reference.render_markdown() in readme, "run `make cli-reference`"


def test_every_command_and_exit_code_is_listed() -> None:
    block = reference.render_markdown()
    listed = [line for line, _summary in reference.commands()]
    for words in ("clinpred serve", "clinpred call tumor batch", "clinpred call genomics layout", "clinpred tumor example-csv"):
        assert words in listed
    assert all(summary for _line, summary in reference.commands()), "every command has a help line"
    for code in ExitCode:
        assert f"| {int(code)} | " in block


def test_check_fails_on_a_stale_copy(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(f"{reference.START_MARKER}\nold\n{reference.END_MARKER}\n")
    done = subprocess.run([sys.executable, "-m", "clinpred.cli.reference", "--check", str(stale)], capture_output=True, text=True)
    assert done.returncode == 1 and "command-line reference is out of date" in done.stderr
    subprocess.run([sys.executable, "-m", "clinpred.cli.reference", "--write", str(stale)], check=True)
    assert reference.render_markdown() in stale.read_text()
