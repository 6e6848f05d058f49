"""A newly trained package does not go live by itself: `clinpred serve` (real `bentoml serve-grpc`) serves
the version the settings pin although a newer one is registered, and an unknown version stops the start
with a message saying what to set. (Promotion by CLINPRED_TUMOR_MODEL_VERSION, in process:
tests/integration/tumor/test_model_pinning.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clinpred.pilots.common.model_package import ModelPackage, ModelPackageWriter, version_key
from clinpred.services.tumor.client import TumorClient
from clinpred.services.tumor.settings import TumorSettings
from tests.conftest import MODELS
from tests.e2e.conftest import start_clinpred_serve, stop
from tests.support import free_port

pytestmark = pytest.mark.e2e
RELEASED = TumorSettings()
NEWER = "9.0.0"


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tumour packages, plus a newer version of the served one, as `clinpred train tumor` would add it."""
    root = tmp_path_factory.mktemp("models")
    shutil.copytree(MODELS / "tumor", root / "tumor")
    released = ModelPackage.open(root / "tumor" / RELEASED.model_name / RELEASED.model_version)
    writer = ModelPackageWriter(root, "tumor", RELEASED.model_name, NEWER)
    for name in released.manifest["files"]:
        shutil.copy2(released.file(name), writer.path(name))
    writer.finish(released.metadata)
    return root


def served_version(models_root: Path, state: Path, **env: str) -> str:
    running = start_clinpred_serve(
        "tumor", state, api_workers=1, env_extra={"CLINPRED_MODELS_ROOT": str(models_root), **env}
    )
    try:
        with TumorClient(running.target, tls=running.tls) as client:
            return client.model_info().model.version
    finally:
        stop(running)


def test_a_restart_after_a_newer_package_is_registered_serves_the_pinned_version(
    models_root: Path, tmp_path: Path
) -> None:
    # `clinpred serve` registers every package under the models root, the newer one included, before starting.
    assert served_version(models_root, tmp_path) == RELEASED.model_version
    assert NEWER in subprocess.run(
        [str(Path(sys.executable).with_name("bentoml")), "models", "list", f"tumor-{RELEASED.model_name}"],
        env=dict(os.environ, BENTOML_HOME=str(tmp_path / "bentoml" / "tumor")), capture_output=True, text=True, check=True,
    ).stdout


def test_an_unknown_version_stops_the_start_naming_what_is_registered_and_what_to_set(models_root: Path, tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    env = dict(
        os.environ, CLINPRED_STATE_DIR=str(tmp_path), CLINPRED_MODELS_ROOT=str(models_root),
        CLINPRED_TUMOR_MODEL_VERSION="7.7.7", PYTHONUNBUFFERED="1",
    )
    env.pop("BENTOML_HOME", None)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("clinpred")), "serve", "tumor", "--port", str(port),
         "--metrics-port", str(metrics_port)],
        env=env, capture_output=True, text=True, timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"model tumor-{RELEASED.model_name}:7.7.7 is not in the BentoML model store" in output
    shipped = sorted((p.name for p in (MODELS / "tumor" / RELEASED.model_name).iterdir() if p.is_dir()), key=version_key)
    assert f"registered versions: {', '.join([*shipped, NEWER])}" in output
    assert "CLINPRED_TUMOR_MODEL_VERSION" in output
