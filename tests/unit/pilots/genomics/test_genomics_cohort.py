"""The simulated cohort reproduces PGS000004's published OR per SD and AUROC through the scoring pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from clinpred.pilots.genomics.cohort import (
    pipeline_score_sums,
    reference_distribution,
    simulate_cohort,
    simulated_genotypes,
    theoretical_moments,
)
from clinpred.pilots.genomics.scoring import score_vcf
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.genomics.vcf import vcf_lines

PUBLISHED_OR_PER_SD = 1.6
PUBLISHED_AUROC = 0.63


def test_pipeline_recovers_published_or_per_sd_and_auroc(pgs000004: ScoringFile) -> None:
    reference = reference_distribution(pgs000004, 30_000, seed=101)
    cohort = simulate_cohort(pgs000004, 160_000, seed=7, progress=False)
    # the cohort's genotypes are regenerated identically from its seed, chunk by chunk
    chunks = simulated_genotypes(pgs000004, cohort.size, cohort.seed, chunk_size=cohort.chunk_size)
    sums, matched = pipeline_score_sums(pgs000004, chunks)
    assert matched == 282
    np.testing.assert_array_equal(sums, cohort.score_sum)
    z = reference.standardise(sums)
    women = ~cohort.male
    covariates = np.column_stack([z[women], (cohort.age[women] - 50) / 10, cohort.family_history[women]])
    fit = LogisticRegression(C=np.inf, max_iter=1000).fit(covariates, cohort.outcome[women])
    odds_ratio = float(np.exp(fit.coef_[0][0]))
    auroc = float(roc_auc_score(cohort.outcome[women], z[women]))
    assert abs(odds_ratio - PUBLISHED_OR_PER_SD) <= 0.1, odds_ratio
    assert abs(auroc - PUBLISHED_AUROC) <= 0.03, auroc
    assert 1000 < cohort.outcome[women].sum() < 10_000


def test_reference_distribution_matches_theory_and_gives_percentiles(pgs000004: ScoringFile) -> None:
    reference = reference_distribution(pgs000004, 20_000, seed=5)
    mean, sd = theoretical_moments(pgs000004)
    assert reference.mean == pytest.approx(mean, abs=4 * sd / np.sqrt(20_000))
    assert reference.sd == pytest.approx(sd, rel=0.03)
    assert reference.percentile(reference.quantiles[500]) == pytest.approx(50.0, abs=0.1)
    assert reference.percentile(mean + 1.6449 * sd) == pytest.approx(95.0, abs=1.0)
    assert reference.percentile(-100.0) == 0.0 and reference.percentile(100.0) == 100.0


def test_cohort_is_deterministic_by_seed_and_scores_like_its_vcf(pgs000004: ScoringFile) -> None:
    first = simulate_cohort(pgs000004, 600, seed=3, progress=False)
    again = simulate_cohort(pgs000004, 600, seed=3, progress=False)
    other = simulate_cohort(pgs000004, 600, seed=4, progress=False)
    np.testing.assert_array_equal(first.score_sum, again.score_sum)
    np.testing.assert_array_equal(first.outcome, again.outcome)
    assert not np.array_equal(first.score_sum, other.score_sum)
    genotypes = next(simulated_genotypes(pgs000004, 600, seed=3))
    text = "".join(vcf_lines(genotypes)).encode()
    from_vcf = score_vcf(text, pgs000004, with_contributions=False)
    np.testing.assert_allclose([s.score_sum for s in from_vcf], first.score_sum, atol=1e-12)
