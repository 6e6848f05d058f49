"""Generated protobuf code is committed; regenerating must not change it, and buf lint must pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

from clinpred.services.api import codegen
from tests.conftest import REPO


def test_regenerating_the_code_changes_nothing(tmp_path: Path) -> None:
    written = codegen.generate(codegen.PROTOS, tmp_path)
    assert written, "no .proto compiled"
    committed = codegen.HERE
    for fresh in written:
        relative = fresh.relative_to(tmp_path)
        assert (committed / relative).read_text() == fresh.read_text(), f"{relative} is stale: run `make codegen`"
    generated_names = {p.relative_to(tmp_path) for p in written}
    stale = {
        p.relative_to(committed)
        for p in committed.rglob("*")
        if p.name.endswith(codegen.GENERATED_SUFFIXES) and p.relative_to(committed) not in generated_names
    }
    assert not stale, f"generated files without a .proto: {stale}"


def test_generated_imports_stay_inside_the_services_tree() -> None:
    for path in codegen.HERE.rglob("*_pb2*.py"):
        for line in path.read_text().splitlines():
            if line.startswith(("from clinpred.", "import clinpred.")):
                assert line.split()[1].startswith("clinpred.services.api."), f"{path.name}: {line}"


def test_buf_lint_passes() -> None:
    buf = REPO / "node_modules" / ".bin" / "buf"
    assert buf.exists(), "buf is missing: run scripts/setup.sh (npm ci)"
    result = subprocess.run([str(buf), "lint"], cwd=REPO / "protos", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
