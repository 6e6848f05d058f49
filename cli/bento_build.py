"""One Bento per service, from `bento/<pilot>/bentofile.yaml`: what goes in and how it is built.

A Bento holds the clinpred wheel, the exact versions of every Python package it
needs, the model packages its bentofile lists, a CycloneDX SBOM and a Dockerfile.
The versions come from one source: pyproject.toml's requirements, resolved by the
environment they were installed (and tested) in, so the image runs what the tests ran.
Building refuses an environment that does not satisfy pyproject.toml.

Each build stages a build context of its own (bentofile, Dockerfile template, wheel,
requirements, SBOM) in a temporary folder: nothing is written into the checkout.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import chdir, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import clinpred
from clinpred.cli.options import fail
from clinpred.cli.settings import CliSettings
from clinpred.services.common.settings import default_models_root

REPO = default_models_root().parent
BENTO_FOLDER = REPO / "bento"
# Files of the staged build context the bentofiles name.
REQUIREMENTS = "requirements.txt"
SBOM = "sbom.cdx.json"
DOCKERFILE_TEMPLATE = "Dockerfile.template"
WHEELS = "wheels"

class MissingRequirement(Exception):
    """The environment lacks a package pyproject.toml requires, or holds a version it excludes."""


def project_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[Requirement]:
    """The runtime requirements of pyproject.toml's [project] table."""
    project = tomllib.loads(pyproject.read_text())["project"]
    return [Requirement(line) for line in project["dependencies"]]


def locked_requirements(requirements: Iterable[Requirement]) -> list[str]:
    """`name==version` for every package `requirements` need, transitively, as installed here; sorted.

    Raises MissingRequirement when an installed version does not satisfy what asks for it."""
    found: dict[str, str] = {}
    pending: list[tuple[Requirement, frozenset[str]]] = [(r, frozenset({""})) for r in requirements]
    while pending:
        requirement, extras = pending.pop()
        # A dependency's marker may name the extra of the requirement that brought it in.
        if requirement.marker is not None and not any(requirement.marker.evaluate({"extra": e}) for e in extras):
            continue
        try:
            distribution = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            raise MissingRequirement(f"{requirement} is not installed") from None
        version = distribution.version
        if not requirement.specifier.contains(version, prereleases=True):
            raise MissingRequirement(f"{requirement} is required, {requirement.name} {version} is installed")
        name = canonicalize_name(distribution.metadata["Name"])
        first = name not in found
        found[name] = version
        if first or requirement.extras:
            wanted = frozenset({"", *requirement.extras})
            pending.extend((Requirement(line), wanted) for line in distribution.requires or [])
    return [f"{name}=={version}" for name, version in sorted(found.items())]


@dataclass(frozen=True)
class BuiltBento:
    pilot: str
    tag: str
    path: Path

    @property
    def dockerfile(self) -> Path:
        return self.path / "env" / "docker" / "Dockerfile"

    @property
    def requirements(self) -> Path:
        return self.path / "env" / "python" / REQUIREMENTS

    @property
    def sbom(self) -> Path:
        return self.path / "src" / SBOM


# What the wheel is built from; clinpred/ links to the three package folders.
WHEEL_SOURCES = ("pyproject.toml", "setup.py", "README.md", "clinpred", "pilots", "services", "cli")


def _build_wheel(into: Path) -> Path:
    """The clinpred wheel, built from a copy of the sources: setuptools' build/ folder in the checkout
    would otherwise carry files since deleted into the wheel."""
    source = into.parent / "source"
    source.mkdir(parents=True)
    for name in WHEEL_SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(REPO / name, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    # setuptools follows the links of clinpred/ (pilots, services, cli), so the wheel holds real files.
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(into), str(source)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise fail(f"building the clinpred wheel failed:\n{done.stderr[-2000:]}")
    (wheel,) = into.glob("clinpred-*.whl")
    return wheel


def _write_sbom(requirements: Path, into: Path) -> None:
    """CycloneDX 1.6 JSON of the locked requirements, with clinpred (from pyproject.toml) as the root component."""
    command = [
        str(Path(sys.executable).with_name("cyclonedx-py")), "requirements", str(requirements),
        "--pyproject", str(REPO / "pyproject.toml"), "--output-format", "JSON", "--output-file", str(into),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise fail(f"writing the SBOM failed:\n{done.stderr[-2000:]}")


@contextmanager
def release_files() -> Iterator[Path]:
    """What every Bento of this checkout shares, made once: the wheel, the locked requirements, the SBOM."""
    try:
        locked = locked_requirements(project_requirements())
    except MissingRequirement as error:
        raise fail(f"this environment does not satisfy pyproject.toml: {error}; run scripts/setup.sh") from None
    with tempfile.TemporaryDirectory(prefix="clinpred-release-") as folder:
        shared = Path(folder)
        _build_wheel(shared / "wheel" / WHEELS)
        (shared / REQUIREMENTS).write_text("\n".join(locked) + "\n")
        _write_sbom(shared / REQUIREMENTS, shared / SBOM)
        yield shared


@contextmanager
def staged_context(pilot: str, shared: Path) -> Iterator[Path]:
    """The build context of one Bento in a temporary folder: its bentofile and the shared files it names."""
    with tempfile.TemporaryDirectory(prefix=f"clinpred-bento-{pilot}-") as folder:
        context = Path(folder)
        for name in (REQUIREMENTS, SBOM):
            shutil.copy2(shared / name, context / name)
        shutil.copytree(shared / "wheel" / WHEELS, context / WHEELS)
        shutil.copy2(BENTO_FOLDER / DOCKERFILE_TEMPLATE, context / DOCKERFILE_TEMPLATE)
        # The wheel's name carries clinpred's version, so the staged bentofile names it.
        (wheel,) = (context / WHEELS).glob("clinpred-*.whl")
        bentofile = yaml.safe_load((BENTO_FOLDER / pilot / "bentofile.yaml").read_text())
        bentofile["python"]["wheels"] = [str(wheel.relative_to(context))]
        (context / "bentofile.yaml").write_text(yaml.safe_dump(bentofile, sort_keys=False))
        yield context


def bento_models(pilot: str) -> list[str]:
    """The model tags `bento/<pilot>/bentofile.yaml` lists."""
    bentofile = yaml.safe_load((BENTO_FOLDER / pilot / "bentofile.yaml").read_text())
    return [str(item["tag"] if isinstance(item, dict) else item) for item in bentofile.get("models", [])]


def build_bento(pilot: str, shared: Path, version: str = clinpred.__version__) -> BuiltBento:
    """Registers the pilot's model packages in the model store (BENTOML_HOME) and builds `clinpred-<pilot>:<version>`."""
    import bentoml

    from clinpred.services.common.model_store import register_packages

    registered = {str(tag) for tag in register_packages(CliSettings().models_root, pilot)}
    missing = [tag for tag in bento_models(pilot) if tag not in registered]
    if missing:
        raise fail(f"bento/{pilot}/bentofile.yaml lists {', '.join(missing)}, which models/ does not hold")
    # BentoML opens the files a bentofile names only under the working directory.
    with staged_context(pilot, shared) as context, chdir(context):
        bento = bentoml.bentos.build_bentofile(str(context / "bentofile.yaml"), build_ctx=str(context), version=version)
    return BuiltBento(pilot, str(bento.tag), Path(bento.path))
