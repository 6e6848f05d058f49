"""`clinpred genomics score` on a cohort: it loads no serving or model library, and its memory stays flat.

Structural checks only (which modules a real process imports, how its peak resident set grows with the
input): speed is measured in `bench/genomics_scoring.py`, against plink2 in the same run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.genomics_scoring import pgs000004_variants, run_measured, write_vcf

REPO = Path(__file__).resolve().parents[3]
# What the serving and training commands need and batch scoring does not; each costs start-up time.
HEAVY = {"grpc", "grpc_health", "grpc_status", "grpc_reflection", "google.protobuf", "bentoml", "tenseal", "xgboost",
         "shap", "onnxruntime", "sklearn", "cryptography", "jwt", "psycopg", "sqlalchemy", "pandas", "scipy", "tqdm",
         "pydantic_settings", "asyncio"}


def _imported(arguments: list[str]) -> set[str]:
    """Every module a real `clinpred` process imports, as `python -X importtime` reports them."""
    completed = subprocess.run([sys.executable, "-X", "importtime", "-m", "clinpred.cli.main", *arguments],
                               capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert completed.returncode == 0, completed.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in completed.stderr.splitlines() if line.startswith("import time:")}


def _heavy(modules: set[str], needed: frozenset[str] = frozenset()) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY - needed))


def test_score_imports_no_serving_or_model_library(tmp_path: Path, pgs_file: Path) -> None:
    helped = _imported(["genomics", "score", "--help"])
    assert "clinpred.cli.genomics" in helped and _heavy(helped) == []
    vcf = tmp_path / "cohort.vcf"
    write_vcf(pgs000004_variants(pgs_file), 60, vcf)
    scored = _imported(["genomics", "score", "--vcf", str(vcf), "--pgs", str(pgs_file), "--build", "GRCh37"])
    assert "clinpred.pilots.genomics.batch_scoring" in scored and "numpy" in scored
    assert _heavy(scored) == [] and "pgenlib" not in scored
    # The model package's score layout: the settings find the packages (pydantic-settings, which imports
    # asyncio); the encryption library is not needed to read the layout.
    with_layout = _imported(["genomics", "score", "--vcf", str(vcf), "--model", "breast-pgs000004"])
    assert "clinpred.pilots.genomics.score_layout" in with_layout and "pydantic_settings" in with_layout
    assert _heavy(with_layout, frozenset({"pydantic_settings", "asyncio"})) == []


def test_peak_memory_does_not_grow_with_the_genotypes_held(tmp_path: Path, pgs_file: Path) -> None:
    """Ten times the samples: the VCF grows by 4 bytes a call, the peak resident set by far less.

    Holding the score's genotypes, in the most compact form the reader decodes them (float16, 2 bytes
    a call), would grow the peak by half the VCF's growth; the whole-matrix path (float16 calls, then
    float64 dosages and their masks) grew it by about 3 times. The bound, a quarter, leaves room for
    what does grow with the samples (their names, the per-sample sums and counts, the table printed)
    and for a block of records, which grows with the line length up to its cap (`vcf.BLOCK_CELL_BYTES`).
    """
    variants = pgs000004_variants(pgs_file)
    sizes: list[int] = []
    peaks: list[float] = []
    for samples in (4_000, 40_000):
        vcf = tmp_path / f"cohort-{samples}.vcf"
        write_vcf(variants, samples, vcf)
        command = [sys.executable, "-m", "clinpred.cli.main", "genomics", "score", "--vcf", str(vcf), "--pgs",
                   str(pgs_file), "--build", "GRCh37"]
        table = tmp_path / f"scores-{samples}.tsv"
        measured = run_measured(command, table, {**os.environ, "PYTHONPATH": str(REPO)})
        assert len(table.read_text().splitlines()) == samples + 1
        sizes.append(vcf.stat().st_size)
        peaks.append(measured.peak_rss_mib * 2**20)
        vcf.unlink()
    growth, input_growth = peaks[1] - peaks[0], sizes[1] - sizes[0]
    assert input_growth > 40 * 2**20
    assert growth < 0.25 * input_growth, f"peak grew by {growth / 2**20:.0f} MiB for {input_growth / 2**20:.0f} MiB more VCF"
