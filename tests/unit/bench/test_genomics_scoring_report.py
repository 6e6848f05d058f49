"""The genomics scoring bench's files and report on synthetic measurements: no timing assertions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import genomics_scoring as bench
from clinpred.pilots.genomics.vcf import read_vcf


def test_ratios_report_and_json_from_synthetic_measurements() -> None:
    ours = [bench.Measurement("python", s, s * 0.9, 100.0 + s) for s in (3.0, 1.0, 2.0)]
    theirs = [bench.Measurement("plink2", s, s, 50.0) for s in (0.5, 1.5, 1.0)]
    result = bench.CaseResult(bench.Case("c", 10, "PGS000004"), 2 << 20, 313, ours, theirs, 1e-6)
    assert result.time_ratio == pytest.approx(2.0)  # medians 2.0 / 1.0
    assert result.memory_ratio == pytest.approx(103.0 / 50.0)  # largest peaks
    startup = [bench.Measurement("python", 0.4, 0.3, 60.0)]
    text = bench.markdown([result], startup, "test machine", 1, 3)
    assert "| c | 10 | 313 | 2.0 | 2.00 (1.80) | 1.00 (1.00) | 2.00x | 103 | 50 | 2.06x | 1.0e-06 |" in text
    assert "takes 0.40 s (CPU 0.30 s), 60 MiB" in text
    document = json.loads(json.dumps(bench.results_json([result], startup, "test machine", 1)))
    (case,) = document["cases"]
    assert case["time_ratio"] == pytest.approx(2.0) and case["samples"] == 10
    assert [m["seconds"] for m in case["plink2"]] == [0.5, 1.5, 1.0]


def test_largest_difference_needs_the_same_samples() -> None:
    assert bench.largest_difference({"a": 1.0, "b": 2.0}, {"b": 2.5, "a": 1.0}) == pytest.approx(0.5)
    with pytest.raises(RuntimeError, match="different samples"):
        bench.largest_difference({"a": 1.0}, {"b": 1.0})


def test_simulated_files_are_what_both_tools_read(tmp_path: Path) -> None:
    variants = bench.simulated_variants(300, seed=3)
    assert len({(v.chrom, v.pos) for v in variants}) == 300
    vcf = tmp_path / "cohort.vcf"
    bench.write_vcf(variants, 400, vcf)
    genotypes = read_vcf(vcf)
    assert genotypes.build == "GRCh37" and genotypes.n_samples == 400 and len(genotypes.sites) == 300
    dosages = np.concatenate(genotypes.dosages)
    assert 0.002 < np.isnan(dosages).mean() < 0.03  # 1% missing
    expected = np.array([2 * v.frequency for v in sorted(variants, key=lambda v: (int(v.chrom), v.pos))])
    assert np.abs(np.nanmean(dosages, axis=1) - expected).mean() < 0.05
    score, freq = bench.write_plink2_inputs(variants, tmp_path)
    assert len(score.read_text().splitlines()) == 301 and len(freq.read_text().splitlines()) == 301
