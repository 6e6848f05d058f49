"""The layers hold: read from the source's imports (ast), and from what a served process loads.

- the domain (`pilots/`) never imports gRPC, BentoML, protobuf or the transport package;
- handlers never see generated protobuf types: codecs translate;
- serving (every service module and client) never reaches a training module, scikit-learn or tqdm.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TOP_LEVEL = ("pilots", "services", "cli")


def module_name(path: Path) -> str:
    relative = path.relative_to(REPO).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["clinpred", *parts])


@cache
def first_party_modules() -> dict[str, Path]:
    modules = {}
    for folder in TOP_LEVEL:
        for path in (REPO / folder).rglob("*.py"):
            if "api" in path.relative_to(REPO).parts[:2] and path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
                continue
            modules[module_name(path)] = path
    return modules


@cache
def imports_of(path: Path) -> frozenset[str]:
    """Every module an import statement in `path` names (absolute, also inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def reachable_from(start: str) -> set[str]:
    """First-party modules `start` imports, directly or through other first-party modules."""
    modules = first_party_modules()
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in modules:
            continue
        seen.add(name)
        for imported in imports_of(modules[name]):
            parts = imported.split(".")
            # `from a.b import c` names a.b and a.b.c; each package on the way is imported too.
            todo.extend(".".join(parts[:n]) for n in range(2, len(parts) + 1))
    return seen


def _violations(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(REPO)} imports {name}"
        for path in paths
        for name in imports_of(path)
        if any(name == f or name.startswith(f"{f}.") for f in forbidden) or name.endswith(forbidden)
    )


def test_the_domain_imports_no_transport() -> None:
    domain = sorted((REPO / "pilots").rglob("*.py"))
    assert len(domain) > 30
    assert _violations(domain, ("grpc", "grpc_status", "bentoml", "google.protobuf", "google.rpc", "clinpred.services")) == []


def test_handlers_know_no_generated_protobuf_types() -> None:
    handlers = sorted((REPO / "services").glob("*/handlers.py"))
    assert [p.parent.name for p in handlers] == ["deterioration", "genomics", "tumor"]
    assert _violations(handlers, ("_pb2", "_pb2_grpc", "google.protobuf")) == []


SERVED = sorted(
    module_name(p) for p in (REPO / "services").glob("*/*.py") if p.name in {"service.py", "client.py"}
)


@pytest.mark.parametrize("start", SERVED)
def test_serving_reaches_no_training_module(start: str) -> None:
    reached = reachable_from(start)
    assert start in reached
    assert sorted(m for m in reached if m.rsplit(".", 1)[-1] in {"training", "simulator", "cohort"}) == []


def test_a_served_process_loads_no_training_code_scikit_learn_or_tqdm() -> None:
    probe = (
        "import importlib, json, sys\n"
        f"for name in {SERVED!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout)
    assert len(SERVED) == 6 and "clinpred.services.tumor.service" in loaded
    unwanted = [
        m
        for m in loaded
        if m.split(".")[0] in {"sklearn", "tqdm", "skl2onnx", "onnxmltools", "msprime"}
        or (m.startswith("clinpred.pilots.") and m.rsplit(".", 1)[-1] in {"training", "simulator", "cohort"})
    ]
    assert unwanted == []
