"""Versioned model packages on disk: `models/<pilot>/<name>/<version>/`.

A package is a folder of files plus `package.json`, a manifest that lists
every file with its SHA-256 and the package's metadata. The package's own
SHA-256 is the hash of the manifest's bytes, so it changes whenever any file
or any metadata changes, and every answer can name it. Opening a package
re-hashes its files, so a tampered or half-copied package never serves.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinpred.pilots.common.errors import ModelPackageError

MANIFEST = "package.json"
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class ModelIdentity:
    """What every answer names: the exact model that produced it."""

    name: str
    version: str
    sha256: str


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _canonical_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def version_key(version: str) -> tuple[int, ...]:
    if not _VERSION.match(version):
        raise ModelPackageError(f"model version {version!r} is not MAJOR.MINOR.PATCH")
    return tuple(int(part) for part in version.split("."))


class ModelPackage:
    """A verified, read-only model package."""

    def __init__(self, path: Path, manifest: dict[str, Any], sha256: str) -> None:
        self.path = path
        self.manifest = manifest
        self.identity = ModelIdentity(manifest["name"], manifest["version"], sha256)

    @property
    def pilot(self) -> str:
        return str(self.manifest["pilot"])

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.manifest.get("metadata", {}))

    @classmethod
    def open(cls, path: Path | str) -> ModelPackage:
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise ModelPackageError(f"no {MANIFEST} in model package {path}")
        raw = manifest_path.read_bytes()
        try:
            manifest = json.loads(raw)
            files: dict[str, str] = manifest["files"]
            missing = [key for key in ("pilot", "name", "version") if key not in manifest]
            if missing:
                raise KeyError(", ".join(missing))
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelPackageError(f"{manifest_path} is not a valid manifest: {exc}") from None
        for name, expected in files.items():
            file_path = path / name
            if not file_path.is_file():
                raise ModelPackageError(f"model package {path} lacks {name}")
            if _sha256_file(file_path) != expected:
                raise ModelPackageError(f"model package {path}: {name} does not match its SHA-256")
        return cls(path, manifest, hashlib.sha256(raw).hexdigest())

    def file(self, name: str) -> Path:
        if name not in self.manifest["files"]:
            raise ModelPackageError(f"model package {self.path} has no file {name}")
        return self.path / name

    def read_json(self, name: str) -> Any:
        return json.loads(self.file(name).read_text())


class ModelPackageWriter:
    """Builds a package in a staging folder and moves it into place atomically."""

    def __init__(self, models_root: Path | str, pilot: str, name: str, version: str) -> None:
        version_key(version)
        self.target = Path(models_root) / pilot / name / version
        if self.target.exists():
            raise ModelPackageError(f"model package {self.target} already exists; choose a new version")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.target.parent))
        self.pilot, self.name, self.version = pilot, name, version

    def path(self, name: str) -> Path:
        """Where to write a file that a library saves by path (ONNX, boosters, plots)."""
        target = self.staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_bytes(self, name: str, data: bytes) -> None:
        self.path(name).write_bytes(data)

    def write_text(self, name: str, text: str) -> None:
        self.path(name).write_text(text)

    def write_json(self, name: str, obj: Any) -> None:
        self.path(name).write_bytes(_canonical_json(obj))

    def finish(self, metadata: dict[str, Any] | None = None) -> ModelPackage:
        files = {
            str(p.relative_to(self.staging)): _sha256_file(p)
            for p in sorted(self.staging.rglob("*"))
            if p.is_file() and p.name != MANIFEST
        }
        manifest = {
            "format": 1,
            "pilot": self.pilot,
            "name": self.name,
            "version": self.version,
            "files": files,
            "metadata": metadata or {},
        }
        (self.staging / MANIFEST).write_bytes(_canonical_json(manifest))
        # mkdtemp makes the folder private; a package is read by services running as other users.
        self.staging.chmod(0o755)
        os.replace(self.staging, self.target)
        return ModelPackage.open(self.target)

    def abandon(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def list_packages(models_root: Path | str, pilot: str | None = None) -> list[ModelPackage]:
    """Every package under `models_root` (optionally of one pilot), oldest version first."""
    root = Path(models_root)
    pattern = f"{pilot}/*/*/{MANIFEST}" if pilot else f"*/*/*/{MANIFEST}"
    found = [ModelPackage.open(m.parent) for m in root.glob(pattern) if not m.parent.name.startswith(".")]
    return sorted(found, key=lambda p: (p.pilot, p.identity.name, version_key(p.identity.version)))


def latest_package(models_root: Path | str, pilot: str, name: str) -> ModelPackage:
    candidates = [p for p in list_packages(models_root, pilot) if p.identity.name == name]
    if not candidates:
        raise ModelPackageError(f"no model package {pilot}/{name} under {models_root}")
    return candidates[-1]


def next_version(models_root: Path | str, pilot: str, name: str) -> str:
    """The next minor version after the newest package, or 1.0.0 for the first."""
    try:
        major, minor, _ = version_key(latest_package(models_root, pilot, name).identity.version)
    except ModelPackageError:
        return "1.0.0"
    return f"{major}.{minor + 1}.0"
