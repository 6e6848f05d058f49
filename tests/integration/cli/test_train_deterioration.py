"""`clinpred train deterioration` without --data, as a person runs it: a process, a package, a registered model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from clinpred.pilots.common.model_package import ModelPackage


def test_training_on_a_small_simulated_cohort_writes_and_registers_a_package(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CLINPRED_MODELS_ROOT": str(tmp_path / "models"),
        "CLINPRED_STATE_DIR": str(tmp_path / "var"),
    }
    # 80 children (about 7,000 patient-days) train in seconds; 1,200 build the reference package.
    done = subprocess.run(
        [sys.executable, "-m", "clinpred.cli.main", "train", "deterioration", "--simulated-patients", "80"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    package = ModelPackage.open(tmp_path / "models" / "deterioration" / "home-deterioration" / "1.0.0")
    assert package.identity.sha256 in done.stdout
    metrics = package.read_json("metrics.json")
    # A real model was trained and evaluated on held-out children, beside PEWS on the same rows.
    assert 0.5 < metrics["test"]["auroc"] <= 1.0 and 0.0 < metrics["test"]["pews_auroc"] <= 1.0
    assert metrics["test"]["rows"] > 1000
    assert "80 patients" in json.dumps(metrics)
    # Registered in the deterioration service's own BentoML model store.
    stored = tmp_path / "var" / "bentoml" / "deterioration" / "models" / "deterioration-home-deterioration" / "1.0.0"
    assert (stored / "package.json").is_file()
