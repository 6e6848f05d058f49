"""Simulated populations for a score: a reference population (percentiles) and a cohort with outcomes.

Genotypes at the score's variants are drawn independently from their effect
allele frequencies (Hardy-Weinberg, no linkage: the score's variants were
chosen to be nearly independent, and only the score's distribution
matters here). They are produced in seeded chunks, so a cohort of any size
streams through the same matching and scoring as a patient's VCF
(`effect_dosages` on a `Genotypes`), and is regenerated identically from
its seed.

Outcomes follow a logistic model of the event within the horizon:

    logit P = logit(baseline_risk) + log(or_per_sd) * z + log(or_per_decade) * (age - 50) / 10
              + log(or_family_history) * family_history + log(or_male) * male

where z is the pipeline's score standardised with its theoretical mean and
SD under Hardy-Weinberg, so the published odds ratio per SD is the
conditional OR, and for a rare outcome the AUROC of the score alone is
Phi(log(OR) / sqrt(2)) (0.63 for OR 1.6, as published for PGS000004).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from clinpred.pilots.common.errors import FailedPrecondition
from clinpred.pilots.genomics.matching import MatchResult, match_variants
from clinpred.pilots.genomics.package_format import ScoreDistribution
from clinpred.pilots.genomics.scoring import effect_dosages
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.genomics.vcf import Genotypes, VcfSite

QUANTILE_COUNT = 1001


@dataclass(frozen=True)
class OutcomeModel:
    """Published-like effect sizes; defaults are breast cancer in women (PGS000004, UK incidence)."""

    or_per_sd: float = 1.6
    baseline_risk: float = 0.025  # over the horizon, at age 50, average score, no family history, female
    or_per_decade: float = 1.35
    or_family_history: float = 1.8
    or_male: float = 0.01
    family_history_prevalence: float = 0.1
    female_fraction: float = 0.9
    age_range: tuple[float, float] = (40.0, 70.0)
    horizon_years: float = 10.0


def _frequencies(scoring_file: ScoringFile) -> npt.NDArray[np.float64]:
    if not scoring_file.has_allele_frequency or not np.isfinite(scoring_file.allele_frequency).all():
        raise FailedPrecondition(
            f"{scoring_file.pgs_id}: simulating genotypes needs allelefrequency_effect for every variant"
        )
    return scoring_file.allele_frequency


def simulated_genotypes(
    scoring_file: ScoringFile, samples: int, seed: int, *, chunk_size: int = 20_000, progress: bool = False,
    description: str = "simulating genotypes",
) -> Iterator[Genotypes]:
    """Chunks of simulated genotypes at the score's positions (REF = other allele, ALT = effect allele)."""
    frequencies = _frequencies(scoring_file)
    sites = tuple(
        VcfSite(str(scoring_file.chrom[i]), int(scoring_file.pos[i]),
                scoring_file.other_allele[i] or ("C" if scoring_file.effect_allele[i] != "C" else "G"),
                (str(scoring_file.effect_allele[i]),), 0)
        for i in range(len(scoring_file)) if scoring_file.chrom[i] is not None
    )
    placed = np.array([c is not None for c in scoring_file.chrom])
    chunks = range(0, samples, chunk_size)
    for number, start in enumerate(tqdm(chunks, desc=description, unit="chunk", disable=not progress)):
        size = min(chunk_size, samples - start)
        rng = np.random.default_rng([seed, number])
        drawn = rng.binomial(2, frequencies[placed][:, None], size=(int(placed.sum()), size)).astype(np.float64)
        names = tuple(f"sim{seed}_{start + k}" for k in range(size))
        yield Genotypes(names, sites, tuple(row[None, :] for row in drawn), scoring_file.build, "declared",
                        f"simulated:{seed}")


def pipeline_score_sums(scoring_file: ScoringFile, chunks: Iterator[Genotypes]) -> tuple[npt.NDArray[np.float64], int]:
    """Score sums of every chunk through the default matching and scoring; and how many variants matched."""
    sums: list[npt.NDArray[np.float64]] = []
    matched = 0
    match: MatchResult | None = None
    for genotypes in chunks:
        match = match_variants(scoring_file, genotypes)
        matched = match.overlap.matched
        sums.append(effect_dosages(match).score_sums)
    return np.concatenate(sums), matched


def theoretical_moments(scoring_file: ScoringFile) -> tuple[float, float]:
    """Mean and SD of the default pipeline's score under Hardy-Weinberg (matched variants only)."""
    probe = next(simulated_genotypes(scoring_file, 1, seed=0))
    match = match_variants(scoring_file, probe)
    index = np.array([m.score_index for m in match.matches])
    p = scoring_file.allele_frequency[index]
    w = scoring_file.effect_weight[index]
    return float(np.sum(2 * p * w)), float(np.sqrt(np.sum(2 * p * (1 - p) * w**2)))


def reference_distribution(
    scoring_file: ScoringFile, samples: int = 50_000, seed: int = 1, *, progress: bool = False
) -> ScoreDistribution:
    sums, matched = pipeline_score_sums(
        scoring_file, simulated_genotypes(scoring_file, samples, seed, progress=progress,
                                          description=f"{scoring_file.pgs_id} reference population")
    )
    quantiles = np.quantile(sums, np.linspace(0.0, 1.0, QUANTILE_COUNT))
    return ScoreDistribution(scoring_file.pgs_id, float(sums.mean()), float(sums.std(ddof=1)),
                             tuple(float(q) for q in quantiles), samples, matched)


@dataclass(frozen=True, eq=False)
class SimulatedCohort:
    scoring_file: ScoringFile
    model: OutcomeModel
    seed: int
    size: int
    chunk_size: int
    age: npt.NDArray[np.float64]
    male: npt.NDArray[np.bool_]
    family_history: npt.NDArray[np.bool_]
    outcome: npt.NDArray[np.bool_]
    score_sum: npt.NDArray[np.float64] = field(repr=False)


def simulate_cohort(
    scoring_file: ScoringFile,
    size: int,
    *,
    seed: int = 7,
    model: OutcomeModel | None = None,
    chunk_size: int = 20_000,
    progress: bool = True,
) -> SimulatedCohort:
    model = model or OutcomeModel()
    sums, _ = pipeline_score_sums(
        scoring_file, simulated_genotypes(scoring_file, size, seed, chunk_size=chunk_size, progress=progress,
                                          description=f"{scoring_file.pgs_id} cohort")
    )
    mean, sd = theoretical_moments(scoring_file)
    z = (sums - mean) / sd
    rng = np.random.default_rng([seed, 1_000_003])
    low, high = model.age_range
    age = rng.uniform(low, high, size)
    male = rng.random(size) >= model.female_fraction
    family_history = rng.random(size) < model.family_history_prevalence
    logit = (
        np.log(model.baseline_risk / (1 - model.baseline_risk))
        + np.log(model.or_per_sd) * z
        + np.log(model.or_per_decade) * (age - 50.0) / 10.0
        + np.log(model.or_family_history) * family_history
        + np.log(model.or_male) * male
    )
    outcome = rng.random(size) < 1.0 / (1.0 + np.exp(-logit))
    return SimulatedCohort(scoring_file, model, seed, size, chunk_size, age, male, family_history, outcome, sums)
