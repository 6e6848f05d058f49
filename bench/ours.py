"""Our side: `clinpred serve tumor` (BentoML `serve-grpc`) and its request messages."""

from __future__ import annotations

import os
import re
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.processes import ManagedServer, without_tenant_limits
from clinpred.services.api.tumor.v1 import tumor_pb2

READY_LINE = "clinpred is serving"
MODEL_NAME = "wdbc-xgboost"
MODEL_VERSION = "1.0.0"  # the booster.json the peer serves
_STAGE_LINE = re.compile(r"^clinpred_stage_duration_seconds_(sum|count)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def clinpred_server(port: int, metrics_port: int, api_workers: int, state_dir: Path, log_path: Path) -> ManagedServer:
    clinpred = Path(sys.executable).with_name("clinpred")
    argv = [
        str(clinpred),
        "serve",
        "tumor",
        "--port",
        str(port),
        "--metrics-port",
        str(metrics_port),
        "--api-workers",
        str(api_workers),
        # Plaintext, as the peer serves: the benchmark compares serving, not TLS (bench/README.md).
        "--insecure-development",
    ]
    env = dict(os.environ)
    # Our own BentoML home and model store, apart from anyone's `make run` or e2e tests.
    env["CLINPRED_STATE_DIR"] = str(state_dir)
    # The booster the peer serves, whatever the default tumour package is.
    env["CLINPRED_TUMOR_MODEL_NAME"] = MODEL_NAME
    env["CLINPRED_TUMOR_MODEL_VERSION"] = MODEL_VERSION
    return ManagedServer("clinpred tumor", argv, log_path, env=without_tenant_limits(env, "tumor"))


def is_serving(server: ManagedServer) -> bool:
    return READY_LINE in server.log_path.read_text(errors="replace")


def case(feature_names: Sequence[str], row: np.ndarray, case_id: str) -> tumor_pb2.TumorCase:
    return tumor_pb2.TumorCase(case_id=case_id, features=dict(zip(feature_names, row.tolist(), strict=True)))


def classify_request(feature_names: Sequence[str], row: np.ndarray, case_id: str) -> tumor_pb2.ClassifyRequest:
    return tumor_pb2.ClassifyRequest(tumor_case=case(feature_names, row, case_id))


def batch_request(feature_names: Sequence[str], rows: np.ndarray, prefix: str) -> tumor_pb2.ClassifyBatchRequest:
    return tumor_pb2.ClassifyBatchRequest(cases=[case(feature_names, r, f"{prefix}-{i}") for i, r in enumerate(rows)])


def prediction_only(request: tumor_pb2.ClassifyRequest) -> tumor_pb2.ClassifyRequest | None:
    """The same request asking for no explanation, or None when this server version has no detail level.

    Found in the request's public schema: an enum field whose values include one ending in `NONE`
    (e.g. `detail: DETAIL_LEVEL_NONE`), so the benchmark needs nothing internal.
    """
    for field in request.DESCRIPTOR.fields:
        if field.enum_type is None:
            continue
        nones = [v.number for v in field.enum_type.values if v.name.endswith("NONE")]
        if nones:
            out = tumor_pb2.ClassifyRequest()
            out.CopyFrom(request)
            setattr(out, field.name, nones[0])
            return out
    return None


def stream_request(feature_names: Sequence[str], row: np.ndarray, case_id: str) -> tumor_pb2.ClassifyStreamRequest:
    return tumor_pb2.ClassifyStreamRequest(tumor_case=case(feature_names, row, case_id))


def stage_totals(metrics_port: int, host: str = "127.0.0.1") -> dict[str, tuple[float, float]]:
    """Per stage (decode, predict, explain, encode): (seconds summed, count) from our Prometheus endpoint."""
    with urllib.request.urlopen(f"http://{host}:{metrics_port}/", timeout=10) as response:
        return parse_stage_totals(response.read().decode())


def parse_stage_totals(text: str) -> dict[str, tuple[float, float]]:
    """Sum and count of `clinpred_stage_duration_seconds` per stage label, from Prometheus text format."""
    totals: dict[str, list[float]] = {}
    for line in text.splitlines():
        match = _STAGE_LINE.match(line)
        if not match:
            continue
        labels = dict(part.split("=", 1) for part in match["labels"].split(","))
        name = labels.get("stage", "").strip('"')
        slot = totals.setdefault(name, [0.0, 0.0])
        slot[0 if match[1] == "sum" else 1] += float(match["value"])
    return {k: (v[0], v[1]) for k, v in totals.items()}


def stage_delta(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    out = {}
    for name, (s, c) in after.items():
        s0, c0 = before.get(name, (0.0, 0.0))
        out[name] = (s - s0, c - c0)
    return out
