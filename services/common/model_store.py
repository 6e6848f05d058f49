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


def load_package(pilot: str, name: str, version: str) -> ModelPackage:
    """The package `<pilot>-<name>:<version>` from the store, exactly that version.

    Never the highest registered: a newly trained package goes live only when a
    service's settings name its version (promotion is that change, rollback the reverse).
    """
    try:
        registered = bentoml.models.list(store_name(pilot, name))
    except BentoNotFound:
        registered = []
    chosen = [m for m in registered if m.tag.version == version]
    if not chosen:
        versions = sorted((str(m.tag.version) for m in registered), key=version_key)
        known = f"registered versions: {', '.join(versions)}" if versions else "no version of it is registered"
        raise ModelUnavailable(
            f"model {store_name(pilot, name)}:{version} is not in the BentoML model store ({known}); set"
            f" CLINPRED_{pilot.upper()}_MODEL_VERSION to one of them, or register the package"
            f" (`clinpred models register {pilot}`)"
        )
    model = chosen[0]
    package = ModelPackage.open(model.path)
    if package.identity.sha256 != model.info.labels.get("sha256"):
        raise ModelPackageError(f"BentoML model {model.tag} does not match the package it was registered from")
    return package
