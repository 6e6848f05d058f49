"""Generates the Python code of `protos/` into this package.

protoc writes imports that follow proto package names (`from clinpred.tumor.v1
import ...`); those are rewritten to this package (`clinpred.services.api.tumor.v1`)
so that generated code lives under the services tree and never shadows the
project's own `clinpred` namespace. Output is deterministic, so a test can
regenerate into a temporary folder and compare.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

PROTO_PACKAGE_IMPORT = re.compile(r"^(from|import) clinpred\.(\w+)\.(v\d+)", re.MULTILINE)
API_PACKAGE = "clinpred.services.api"
HERE = Path(__file__).resolve().parent
PROTOS = HERE.parent.parent / "protos"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _rewrite(text: str) -> str:
    return PROTO_PACKAGE_IMPORT.sub(rf"\1 {API_PACKAGE}.\2.\3", text)


def generate(protos: Path, out: Path) -> list[Path]:
    """Generates code for every .proto under `protos` into `out`; returns the files written."""
    sources = sorted(str(p.relative_to(protos)) for p in protos.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{protos}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed")
        written = []
        root = Path(tmp) / "clinpred"
        for source in sorted(root.rglob("*")):
            if not source.name.endswith(GENERATED_SUFFIXES):
                continue
            target = out / source.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_rewrite(source.read_text()))
            written.append(target)
        for folder in {t.parent for t in written} | {p for t in written for p in t.parents if out in p.parents}:
            (folder / "__init__.py").touch()
        return written


def main() -> None:
    for stale in HERE.iterdir():
        if stale.is_dir() and stale.name != "__pycache__":
            shutil.rmtree(stale)
    for path in generate(PROTOS, HERE):
        print(path.relative_to(HERE), file=sys.stderr)


if __name__ == "__main__":
    main()
