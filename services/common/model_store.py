"""Model packages in the BentoML model store, for serving and for `bentoml build`.

A package `models/<pilot>/<name>/<version>/` is stored as the BentoML model
`<pilot>-<name>:<version>`, labelled with the package's SHA-256. Registering
is idempotent; registering different content under an existing tag is refused,
because one tag must always name one exact model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import bentoml
from bentoml.exceptions import NotFound as BentoNotFound

from clinpred.pilots.common.errors import ModelPackageError, ModelUnavailable
from clinpred.pilots.common.model_package import ModelPackage, list_packages, version_key


def store_name(pilot: str, name: str) -> str:
    return f"{pilot}-{name}"


def register_package(package: ModelPackage) -> bentoml.Tag:
    tag = bentoml.Tag(store_name(package.pilot, package.identity.name), package.identity.version)
    try:
        existing = bentoml.models.get(tag)
    except BentoNotFound:
        existing = None
    if existing is not None:
        if existing.info.labels.get("sha256") != package.identity.sha256:
            raise ModelPackageError(f"BentoML model {tag} already holds a different package; give the new package a new version")
        return existing.tag
    labels = {"pilot": package.pilot, "sha256": package.identity.sha256, "package_version": package.identity.version}
    with bentoml.models.create(tag, labels=labels, metadata=package.metadata, module="clinpred") as model:
        for item in package.path.iterdir():
            if item.is_file():
                shutil.copy2(item, Path(model.path) / item.name)
    return tag


def register_packages(models_root: Path, pilot: str) -> list[bentoml.Tag]:
    """Registers every package of `pilot` found under `models_root`."""
    return [register_package(p) for p in list_packages(models_root, pilot)]


def load_package(pilot: str, name: str, version: str | None = None) -> ModelPackage:
    """The package of `<pilot>-<name>` from the store: `version`, or the highest version."""
    try:
        candidates = bentoml.models.list(store_name(pilot, name))
    except BentoNotFound:
        candidates = []
    if version is not None:
        candidates = [m for m in candidates if m.tag.version == version]
    if not candidates:
        wanted = f"{store_name(pilot, name)}:{version or 'any version'}"
        raise ModelUnavailable(f"model {wanted} is not in the BentoML model store; run `clinpred models register`")
    newest = max(candidates, key=lambda m: version_key(str(m.tag.version)))
    package = ModelPackage.open(newest.path)
    if package.identity.sha256 != newest.info.labels.get("sha256"):
        raise ModelPackageError(f"BentoML model {newest.tag} does not match the package it was registered from")
    return package
