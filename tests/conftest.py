"""Test-wide setup: an isolated BentoML home, so tests never touch a user's model store."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clinpred.pilots.common.model_package import ModelPackage

# Must happen before anything imports bentoml: it reads BENTOML_HOME once.
_HOME = tempfile.mkdtemp(prefix="clinpred-bentoml-")
os.environ["BENTOML_HOME"] = _HOME
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
# In-process test servers listen in plaintext, so they run in development mode (one tenant, every
# scope) unless a test configures identities; tests of access control set their own settings.
# Their audit records go to a temporary folder, never the checkout's var/.
_AUDIT = tempfile.mkdtemp(prefix="clinpred-audit-")
for _pilot in ("TUMOR", "DETERIORATION", "GENOMICS"):
    os.environ.setdefault(f"CLINPRED_{_pilot}_DEVELOPMENT_PLAINTEXT", "true")
    os.environ.setdefault(f"CLINPRED_{_pilot}_AUDIT_DIR", _AUDIT)
    # Fuzzing sends far more than a tenant's default 100 calls/s; tests of the rate limit set their own.
    os.environ.setdefault(f"CLINPRED_{_pilot}_RATE_PER_SECOND", "1000000")
    os.environ.setdefault(f"CLINPRED_{_pilot}_RATE_BURST", "1000000")

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
SHARED = REPO.parent / "shared"


def served_package(pilot: str, name: str, version: str) -> ModelPackage:
    """The checkout's package a service's settings pin (`model_name`, `model_version`)."""
    from clinpred.pilots.common.model_package import ModelPackage

    return ModelPackage.open(MODELS / pilot / name / version)
