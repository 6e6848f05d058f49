"""Matching as pgsc_calc does, overlap reports, imputation and per-variant contributions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from clinpred.pilots.common.errors import FailedPrecondition
from clinpred.pilots.genomics.matching import match_variants
from clinpred.pilots.genomics.scoring import effect_dosages, score_vcf
from clinpred.pilots.genomics.scoring_file import ScoringFile, read_scoring_file
from clinpred.pilots.genomics.vcf import GRCH38_LENGTHS, Genotypes, read_vcf

SimulateGenotypes = Callable[..., Genotypes]

SCORE = (
    "#pgs_id=PGS_TEST\n#genome_build=GRCh37\n#variants_number=8\n"
    "chr_name\tchr_position\teffect_allele\tother_allele\teffect_weight\tallelefrequency_effect\n"
    "1\t100\tA\tG\t0.5\t0.25\n"      # refalt
    "1\t200\tT\tC\t-1.0\t0.5\n"      # altref
    "1\t300\tA\tC\t2.0\t0.5\n"       # strand flip: VCF has T/G
    "1\t400\tA\tT\t4.0\t0.5\n"       # strand-ambiguous
    "1\t500\tC\tA\t8.0\t0.5\n"       # multiallelic in the VCF
    "1\t600\tAT\tA\t16.0\t0.5\n"     # deletion
    "1\t700\tG\tC\t32.0\t0.5\n"      # not in the VCF
    "1\t800\tG\tA\t64.0\t0.1\n"      # VCF has other alleles
)
VCF = (
    "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP1\tP2\n"
    "1\t100\t.\tA\tG\t.\t.\t.\tGT\t0/1\t1/1\n"
    "1\t200\t.\tC\tT\t.\t.\t.\tGT\t0/1\t./.\n"
    "1\t300\t.\tT\tG\t.\t.\t.\tGT\t0/0\t0/1\n"
    "1\t400\t.\tA\tT\t.\t.\t.\tGT\t0/1\t0/1\n"
    "1\t500\t.\tC\tA,G\t.\t.\t.\tGT\t0/1\t0/2\n"
    "1\t600\t.\tAT\tA\t.\t.\t.\tGT\t0/1\t1/1\n"
    "1\t800\t.\tT\tG\t.\t.\t.\tGT\t0/1\t1/1\n"
)


def test_match_types_and_overlap_by_reason() -> None:
    score = read_scoring_file(SCORE.encode())
    result = match_variants(score, read_vcf(VCF.encode()), min_overlap=None)
    assert {score.variant(m.score_index).pos: m.match_type for m in result.matches} == {
        100: "refalt", 200: "altref", 300: "refalt_flip", 600: "refalt"}
    assert result.overlap.matched == 4 and result.overlap.total == 8
    assert result.overlap.unmatched == {"no_position": 0, "not_in_vcf": 1, "allele_mismatch": 1,
                                        "strand_ambiguous": 1, "multiallelic": 1, "duplicate_match": 0}
    kept = match_variants(score, read_vcf(VCF.encode()), min_overlap=None, keep_ambiguous=True, keep_multiallelic=True)
    assert kept.overlap.matched == 6


def test_scores_dosages_and_imputation_by_hand() -> None:
    score = read_scoring_file(SCORE.encode())
    scores = score_vcf(VCF.encode(), score, min_overlap=0.5)
    p1, p2 = scores
    # P1: A at 100 (REF, 0/1) ->1 x 0.5; T at 200 (ALT) ->1 x -1; A at 300 = T on the VCF strand (REF, 0/0) ->2 x 2;
    # AT at 600 (REF, 0/1) ->1 x 16.
    assert p1.score_sum == pytest.approx(0.5 - 1.0 + 4.0 + 16.0)
    # P2: 1/1 at 100 ->0; missing at 200 imputed 2 x 0.5 from the file ->1 x -1; 0/1 at 300 ->1 x 2; 1/1 at 600 ->0.
    assert p2.score_sum == pytest.approx(-1.0 + 2.0)
    assert (p2.variants_missing, p2.variants_imputed, p2.variants_matched, p2.variants_total) == (1, 1, 4, 8)
    imputed = [c for c in p2.contributions if c.imputed]
    assert [c.variant_id for c in imputed] == ["1:200:C:T"]
    assert p1.top_variants(2)[0].variant_id == "1:600:A:AT"
    assert p1.top_variants(2)[0].contribution == pytest.approx(16.0)
    assert sum(c.contribution for c in p1.contributions) == pytest.approx(p1.score_sum)


def test_without_file_frequency_few_samples_are_not_imputed() -> None:
    without_frequency = "".join(line.rsplit("\t", 1)[0] + "\n" if not line.startswith("#") else line + "\n"
                                for line in SCORE.splitlines())
    score = read_scoring_file(without_frequency.encode())
    assert not score.has_allele_frequency
    p2 = score_vcf(VCF.encode(), score, min_overlap=0.5)[1]
    assert (p2.variants_missing, p2.variants_imputed) == (1, 0)
    assert p2.score_sum == pytest.approx(2.0)


def test_cohort_frequency_imputation(pgs000004: ScoringFile, simulate_genotypes: SimulateGenotypes) -> None:
    genotypes = simulate_genotypes(pgs000004, 120, seed=3, missing=0.1)
    match = match_variants(pgs000004, genotypes)
    by_file = effect_dosages(match)
    by_cohort = effect_dosages(match, "cohort")
    row = int(np.argmax(by_file.missing.sum(axis=1)))
    observed = np.nanmean(np.where(by_file.missing[row], np.nan, by_file.dosages[row])) / 2
    assert by_cohort.effect_frequency[row] == pytest.approx(observed)
    assert by_file.effect_frequency[row] == pgs000004.allele_frequency[match.matches[row].score_index]
    column = int(np.argmax(by_file.missing[row]))
    assert by_cohort.dosages[row, column] == pytest.approx(2 * observed)


def test_low_overlap_is_refused_and_points_at_the_build(pgs000004_path: Path,
                                                        simulate_genotypes: SimulateGenotypes) -> None:
    grch37 = read_scoring_file(pgs000004_path)
    grch38 = read_scoring_file(pgs000004_path, build="GRCh38")
    genotypes = simulate_genotypes(grch37, 5, seed=1)
    few = type(genotypes)(genotypes.samples, genotypes.sites[:200], genotypes.dosages[:200], None, "none")
    refused = r"only 1\d\d of 313 variants \(5\d\.\d%\) match genotypes, fewer than the 75% required"
    with pytest.raises(FailedPrecondition, match=refused) as caught:
        match_variants(grch37, few)
    assert caught.value.violations == ()
    # scored for a request, the refusal names the field the genotypes came in
    with pytest.raises(FailedPrecondition, match=refused) as caught:
        score_vcf(few, grch37, field="vcf")
    assert [(v.field, v.description) for v in caught.value.violations] == [("vcf", caught.value.message)]
    # GRCh37 genotypes read against GRCh38 positions: the build check stops it first ...
    with pytest.raises(FailedPrecondition, match="read the scoring file with build='GRCh37'"):
        match_variants(grch38, genotypes)
    # ... and without a declared build, the allele mismatch at shared positions gives it away.
    moved = [type(s)(s.chrom, int(grch38.pos[i]), "C" if s.ref != "C" else "G", ("T",), 0)
             for i, s in enumerate(genotypes.sites)]
    unknown = type(genotypes)(genotypes.samples, tuple(moved), genotypes.dosages, None, "none")
    with pytest.raises(FailedPrecondition, match="genome build mismatch"):
        match_variants(grch38, unknown)


def test_score_vcf_picks_harmonized_positions_for_a_grch38_vcf(pgs000004_path: Path,
                                                               simulate_genotypes: SimulateGenotypes) -> None:
    from clinpred.pilots.genomics.vcf import vcf_lines

    grch38 = read_scoring_file(pgs000004_path, build="GRCh38")
    genotypes = simulate_genotypes(grch38, 3, seed=2, build="GRCh38")
    text = "".join(vcf_lines(genotypes)).encode()
    assert f"length={GRCH38_LENGTHS['1']}".encode() in text
    scores = score_vcf(text, pgs000004_path)
    assert scores[0].overlap.matched == 282
    direct = score_vcf(genotypes, grch38)
    assert [s.score_sum for s in scores] == pytest.approx([s.score_sum for s in direct], abs=1e-12)
