"""plink2 filesets read with pgenlib give what the VCF they were made from gives: genotypes, build and scores."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from clinpred.pilots.common.errors import FailedPrecondition, InvalidInput
from clinpred.pilots.genomics.pgen import read_pgen
from clinpred.pilots.genomics.scoring import score_pgen, score_vcf
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.genomics.vcf import Genotypes, read_vcf, vcf_lines
from tests.unit.pilots.genomics.conftest import SimulateGenotypes


def make_pgen(plink2: str, vcf: Path, prefix: Path, *, dosage: bool) -> Path:
    command = [plink2, "--vcf", str(vcf), *(["dosage=DS"] if dosage else []), "--vcf-half-call", "missing",
               "--make-pgen", "--threads", "1", "--memory", "1000", "--out", str(prefix)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout[-2000:]
    return prefix


def assert_same_genotypes(ours: Genotypes, theirs: Genotypes) -> None:
    assert ours.samples == theirs.samples
    assert (ours.build, ours.build_evidence) == (theirs.build, theirs.build_evidence)
    assert [(s.chrom, s.pos, s.ref, s.alts) for s in ours.sites] == [(s.chrom, s.pos, s.ref, s.alts) for s in theirs.sites]
    for a, b in zip(ours.dosages, theirs.dosages, strict=True):
        np.testing.assert_array_equal(a, b)


def test_dosages_and_scores_equal_those_of_the_vcf(
    tmp_path: Path, plink2: str, pgs000004: ScoringFile, pgs000004_path: Path, simulate_genotypes: SimulateGenotypes
) -> None:
    simulated = simulate_genotypes(pgs000004, 80, seed=4, missing=0.05, dosage=True)
    vcf = tmp_path / "cohort.vcf"
    vcf.write_text("".join(vcf_lines(simulated, with_dosage=True)))
    prefix = make_pgen(plink2, vcf, tmp_path / "cohort", dosage=True)
    sites = {(s.chrom, s.pos) for s in simulated.sites[::2]}
    assert_same_genotypes(read_pgen(prefix, sites=sites), read_vcf(vcf, sites=sites))
    from_pgen = score_pgen(prefix, pgs000004_path)
    from_vcf = score_vcf(vcf, pgs000004_path)
    assert [r.sample for r in from_pgen] == list(simulated.samples)
    assert [(r.score_sum, r.variants_matched, r.variants_missing, r.variants_imputed) for r in from_pgen] == [
        (r.score_sum, r.variants_matched, r.variants_missing, r.variants_imputed) for r in from_vcf]
    assert from_pgen[0].variants_missing > 0 and from_pgen[0].variants_matched > 250


def test_multiallelic_haploid_and_half_calls(tmp_path: Path, plink2: str) -> None:
    vcf = tmp_path / "odd.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=1,length=249250621>\n##contig=<ID=X,length=155270560>\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\tc\n"
        "1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t1|1\t./.\n"
        "1\t200\t.\tA\tG,T\t.\tPASS\t.\tGT\t0/2\t1/2\t0/.\n"
        "X\t300\t.\tC\tT\t.\tPASS\t.\tGT\t1\t0/1\t0\n"
    )
    prefix = make_pgen(plink2, vcf, tmp_path / "odd", dosage=False)
    ours = read_pgen(prefix)
    assert_same_genotypes(ours, read_vcf(vcf))
    np.testing.assert_array_equal(ours.dosages[1], [[0, 1, np.nan], [1, 1, np.nan]])
    assert ours.build == "GRCh37" and ours.build_evidence == "contig lengths"


def test_a_declared_build_the_pvar_contradicts_and_missing_files_are_refused(
    tmp_path: Path, plink2: str, pgs000004: ScoringFile, simulate_genotypes: SimulateGenotypes
) -> None:
    vcf = tmp_path / "small.vcf"
    vcf.write_text("".join(vcf_lines(simulate_genotypes(pgs000004, 3, seed=2))))
    prefix = make_pgen(plink2, vcf, tmp_path / "small", dosage=False)
    with pytest.raises(FailedPrecondition, match=r"in GRCh37 .* but GRCh38 was declared"):
        read_pgen(prefix, declared_build="GRCh38")
    (tmp_path / "small.psam").unlink()
    with pytest.raises(InvalidInput, match=r"missing small\.psam"):
        read_pgen(tmp_path / "small.pgen")
