"""FHIR.js (npm `fhir`, pinned in package.json) as an independent FHIR R4 validator for tests."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "fhir_js_validate.js"


def fhir_js_answers(resources: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """FHIR.js's answer ({"valid": bool, "messages": [...]}) for each resource, in one node run."""
    env = {**os.environ, "NODE_PATH": str(REPO / "node_modules")}
    done = subprocess.run(
        ["node", str(SCRIPT)],
        input=json.dumps(list(resources)),
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answers: list[dict[str, Any]] = json.loads(done.stdout)
    return answers
