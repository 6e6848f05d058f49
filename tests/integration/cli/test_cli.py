"""The `clinpred` command line as people and scripts use it: real processes, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from clinpred.pilots.common.model_package import ModelPackage, list_packages
from clinpred.services.deterioration.settings import DeteriorationSettings
from clinpred.services.genomics.settings import GenomicsSettings
from clinpred.services.tumor.settings import TumorSettings
from tests.conftest import REPO

CLINPRED = str(Path(sys.executable).with_name("clinpred"))


def clinpred(*args: str, models_root: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CLINPRED_MODELS_ROOT=str(models_root), CLINPRED_STATE_DIR=str(models_root / "state"))
    return subprocess.run([CLINPRED, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)


def test_models_list_names_every_committed_package() -> None:
    result = clinpred("models", "list", models_root=REPO / "models")
    assert result.returncode == 0, result.stderr
    for package in list_packages(REPO / "models"):
        assert f"{package.identity.name}" in result.stdout and package.identity.sha256 in result.stdout
    listed = json.loads(clinpred("models", "list", "--json", models_root=REPO / "models").stdout)
    assert listed["models_root"] == str(REPO / "models")
    assert [(p["pilot"], p["name"], p["version"], p["sha256"], p["path"]) for p in listed["packages"]] == [
        (p.pilot, p.identity.name, p.identity.version, p.identity.sha256, str(p.path)) for p in list_packages(REPO / "models")
    ]
    # The released versions the settings pin are marked, and only those: newer packages wait for promotion.
    served = {(p["pilot"], p["name"], p["version"]) for p in listed["packages"] if p["served"]}
    assert served == {
        (pilot, s.model_name, s.model_version)
        for pilot, s in (("tumor", TumorSettings()), ("deterioration", DeteriorationSettings()), ("genomics", GenomicsSettings()))
    }
    marked = [line.split()[:3] for line in result.stdout.splitlines() if "served (CLINPRED_" in line]
    assert sorted(tuple(m) for m in marked) == sorted(served)


def test_train_tumor_on_a_users_multiclass_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    grades = np.repeat(["grade_1", "grade_2", "grade_3"], 40)
    shift = {"grade_1": 0.0, "grade_2": 1.5, "grade_3": 3.0}
    frame = pd.DataFrame(
        {
            "Cell Size": [rng.normal(5 + shift[g], 1) for g in grades],
            "Nuclei Count": [rng.normal(20 + 4 * shift[g], 3) for g in grades],
            "Stain Intensity": rng.normal(0.5, 0.1, len(grades)),
            "grade": grades,
        }
    )
    data = tmp_path / "cases.csv"
    frame.to_csv(data, index=False)
    result = clinpred(
        "train", "tumor", "--data", str(data), "--label-column", "grade", "--name", "grades",
        "--no-register", models_root=tmp_path / "models",
    )
    assert result.returncode == 0, result.stderr
    assert "fold" in result.stderr  # the progress bar
    package = ModelPackage.open(tmp_path / "models" / "tumor" / "grades" / "1.0.0")
    schema = package.read_json("schema.json")
    assert schema["classes"] == ["grade_1", "grade_2", "grade_3"]
    assert [f["name"] for f in schema["features"]] == ["cell_size", "nuclei_count", "stain_intensity"]
    assert package.identity.sha256 in result.stdout
    assert json.loads(package.file("metrics.json").read_text())["accuracy"] > 0.8


def test_train_tumor_names_a_bad_column(tmp_path: Path) -> None:
    data = tmp_path / "cases.csv"
    pd.DataFrame({"a": [1.0, 2.0, "x"], "label": ["p", "q", "p"]}).to_csv(data, index=False)
    result = clinpred(
        "train", "tumor", "--data", str(data), "--label-column", "label", "--no-register", models_root=tmp_path / "models"
    )
    assert result.returncode == 3  # invalid input, as INVALID_ARGUMENT from a service
    assert result.stderr.startswith("INVALID_ARGUMENT: ") and "is not a number" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_then_train_deterioration(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    simulated = clinpred(
        "simulate", "deterioration", "--patients", "150", "--days", "60", "--out", str(cohort), "--seed", "4",
        models_root=tmp_path / "models",
    )
    assert simulated.returncode == 0, simulated.stderr
    observations = pd.read_parquet(cohort / "observations.parquet")
    assert {"observation_id", "patient_id", "observed_at", "heart_rate", "spo2", "crp_mg_l"} <= set(observations)
    assert set(pd.read_csv(cohort / "events.csv").columns) >= {"patient_id", "event_time", "event_type"}
    trained = clinpred(
        "train", "deterioration", "--data", str(cohort / "observations.parquet"),
        "--outcomes", str(cohort / "events.csv"), "--no-register", models_root=tmp_path / "models",
    )
    assert trained.returncode == 0, trained.stderr
    assert "test.auroc" in trained.stdout and "test.pews_auroc" in trained.stdout
    (package,) = list_packages(tmp_path / "models", "deterioration")
    assert package.identity.sha256 in trained.stdout


def test_train_json_describes_the_package_it_wrote(tmp_path: Path) -> None:
    result = clinpred("train", "tumor", "--no-register", "--json", "--nested-seeds", "1", models_root=tmp_path / "models")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)  # progress went to standard error
    (package,) = list_packages(tmp_path / "models", "tumor")
    assert printed["package"] == {
        "pilot": "tumor", "name": package.identity.name, "version": package.identity.version,
        "sha256": package.identity.sha256, "path": str(package.path),
    }
    assert printed["registered"] is False
    metrics = package.read_json("metrics.json")
    assert printed["metrics"] == {k: v for k, v in metrics.items() if isinstance(v, float)} and printed["metrics"]["auroc"] > 0.95
