"""Batch scoring as the genotypes stream by gives `score_vcf`'s answers to the last bit, sorted file or not."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from clinpred.pilots.genomics import batch_scoring
from clinpred.pilots.genomics.batch_scoring import score_cohort_vcf
from clinpred.pilots.genomics.scoring import SampleScore, score_vcf
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.genomics.vcf import vcf_lines
from tests.unit.pilots.genomics.conftest import SimulateGenotypes


def _answers(scores: Iterable[SampleScore]) -> list[tuple[object, ...]]:
    return [(s.sample, s.score_sum, s.variants_matched, s.variants_missing, s.variants_imputed, s.contributions,
             s.overlap) for s in scores]


@pytest.mark.parametrize("dosage", [False, True])
def test_streamed_scores_and_top_contributions_equal_those_of_the_whole_file(
    tmp_path: Path, pgs000004: ScoringFile, pgs000004_path: Path, simulate_genotypes: SimulateGenotypes,
    monkeypatch: pytest.MonkeyPatch, dosage: bool,
) -> None:
    simulated = simulate_genotypes(pgs000004, 120, seed=9, missing=0.05, dosage=dosage, flip=0.2)
    vcf = tmp_path / "cohort.vcf"
    vcf.write_text("".join(vcf_lines(simulated, with_dosage=dosage)))
    # Small blocks: the additions and the top-contribution merges run over many blocks, not one.
    monkeypatch.setattr(batch_scoring, "SCORE_BLOCK_CELLS", 7 * 120)
    monkeypatch.setattr(batch_scoring, "TOP_BLOCK_CELLS", 13 * 120)
    monkeypatch.setattr(batch_scoring, "_score_whole", None)  # a sorted file is never read whole
    streamed = score_cohort_vcf(vcf, pgs000004_path, top=10)
    whole = score_vcf(vcf, pgs000004_path, top=10)
    assert streamed.overlap.matched > 250 and streamed.variants_missing.sum() > 0
    assert _answers(streamed.sample_scores()) == _answers(whole)
    assert all(len(s.contributions) == 10 for s in whole)
    bare = score_cohort_vcf(vcf, pgs000004_path)
    assert bare.top is None and bare.score_sums.tolist() == [s.score_sum for s in whole]


def test_an_unsorted_vcf_gets_the_answers_of_the_whole_file(
    tmp_path: Path, pgs000004: ScoringFile, pgs000004_path: Path, simulate_genotypes: SimulateGenotypes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    simulated = simulate_genotypes(pgs000004, 60, seed=2, missing=0.03)
    lines = list(vcf_lines(simulated))
    header = [line for line in lines if line.startswith("#")]
    records = [line for line in lines if not line.startswith("#")]
    # A position twice, far apart (a record at a score position after its run ended), and the rest shuffled.
    records.append(records[0])
    random.Random(5).shuffle(records)
    vcf = tmp_path / "unsorted.vcf"
    vcf.write_text("".join(header + records))
    whole_reads: list[int] = []
    read_whole = batch_scoring._score_whole

    def counted(*args: Any) -> batch_scoring.CohortScores:
        whole_reads.append(1)
        return read_whole(*args)

    monkeypatch.setattr(batch_scoring, "_score_whole", counted)
    streamed = list(score_cohort_vcf(vcf, pgs000004_path, top=5).sample_scores())
    assert _answers(streamed) == _answers(score_vcf(vcf, pgs000004_path, top=5))
    assert whole_reads == [1] and streamed[0].overlap.unmatched["duplicate_match"] == 1
