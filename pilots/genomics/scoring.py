"""Polygenic score sums, equal to `plink2 --score ... cols=+scoresums` (see `plink2`).

score = sum over matched variants of effect_weight x dosage of the effect allele;
unmatched variants add nothing. A missing genotype is mean-imputed to
2 x frequency of the effect allele, as plink2 does; the frequency is the
scoring file's `allelefrequency_effect` when it has one (passed to plink2
with `--read-freq`), otherwise the frequency observed in the VCF's samples
(plink2's own estimate, from dosages). plink2 refuses to estimate
frequencies from fewer than 50 samples, and pgsc_calc then scores with
`no-mean-imputation`; likewise here a missing genotype with no frequency in
the file and fewer than 50 samples adds nothing, and is counted in
`variants_missing` but not in `variants_imputed`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from clinpred.pilots.common.cancellation import Deadline
from clinpred.pilots.genomics.matching import DEFAULT_MIN_OVERLAP, MatchResult, Overlap, VariantMatch, match_variants
from clinpred.pilots.genomics.scoring_file import ScoringFile, read_scoring_file
from clinpred.pilots.genomics.text_stream import TextSource
from clinpred.pilots.genomics.vcf import DEFAULT_MAX_BYTES, Dosages, DosageSource, Genotypes, read_vcf

FrequencySource = Literal["auto", "cohort"]
MIN_SAMPLES_FOR_COHORT_FREQUENCY = 50  # plink2's threshold for "decent" allele frequencies
FREQUENCY_BLOCK_CELLS = 1 << 20  # 8 MiB of temporaries at a time


@dataclass(frozen=True)
class VariantContribution:
    variant_id: str  # chrom:pos:other:effect in the scoring file's spelling
    effect_allele: str
    effect_weight: float
    dosage: float  # of the effect allele, after imputation
    imputed: bool
    contribution: float


@dataclass(frozen=True)
class SampleScore:
    sample: str
    pgs_id: str
    score_sum: float
    variants_total: int
    variants_matched: int
    variants_missing: int  # matched variants whose genotype was missing
    variants_imputed: int  # of those, mean-imputed from an allele frequency
    overlap: Overlap
    contributions: tuple[VariantContribution, ...]  # one per matched variant, in scoring-file order

    def top_variants(self, count: int = 10) -> list[VariantContribution]:
        """The variants that move this sample's score most, largest |contribution| first."""
        return sorted(self.contributions, key=lambda c: abs(c.contribution), reverse=True)[:count]


@dataclass(frozen=True, eq=False)
class EffectDosages:
    """Effect-allele dosages of the matched variants (rows) for every sample (columns), imputed."""

    match: MatchResult
    dosages: npt.NDArray[np.float64]
    imputed: npt.NDArray[np.bool_]
    weights: npt.NDArray[np.float64]
    missing: npt.NDArray[np.bool_]
    effect_frequency: npt.NDArray[np.float64]  # used for imputation; NaN if none was available

    @property
    def score_sums(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.weights @ self.dosages, dtype=np.float64)


def effect_dosages(match: MatchResult, frequency: FrequencySource = "auto") -> EffectDosages:
    """Dosages of each matched variant's effect allele; `frequency="cohort"` ignores the file's frequencies."""
    genotypes = match.genotypes
    scoring_file = match.scoring_file
    n = len(match.matches)
    dosages = np.empty((n, genotypes.n_samples))
    for row, variant in enumerate(match.matches):
        effect_allele_dosages(genotypes.dosages[variant.site_index], variant, dosages[row])
    file_frequency = np.array([scoring_file.allele_frequency[m.score_index] for m in match.matches], dtype=np.float64)
    missing, imputed, frequency_used = impute_missing(dosages, file_frequency, frequency)
    weights = np.array([scoring_file.effect_weight[m.score_index] for m in match.matches], dtype=np.float64)
    return EffectDosages(match, dosages, imputed, weights, missing, frequency_used)


def effect_allele_dosages(alt_dosages: Dosages, variant: VariantMatch, out: npt.NDArray[np.float64]) -> None:
    """Write the dosages of `variant`'s effect allele (NaN = missing) from its site's ALT dosages into `out`."""
    if variant.effect_is_alt:
        out[:] = alt_dosages[variant.alt_index]
    else:
        np.subtract(2.0, alt_dosages[0] if len(alt_dosages) == 1 else alt_dosages.sum(axis=0), out=out)


def impute_missing(
    dosages: npt.NDArray[np.float64], file_frequency: npt.NDArray[np.float64], frequency: FrequencySource
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """Mean-impute the NaNs of effect-allele dosages (variants x samples) in place; (missing, imputed, frequency).

    Each row depends on itself only, so a cohort read in blocks of variants gets the answers of one read
    whole. The observed frequencies (`np.nanmean` of each row, spelled out) are computed over blocks of
    `FREQUENCY_BLOCK_CELLS` calls: one numpy call per block rather than per variant, and no temporary the
    size of the whole matrix.
    """
    n, n_samples = dosages.shape
    missing = np.isnan(dosages)
    observed = np.full(n, np.nan)
    # Observed frequencies are used only where the file gives none (or "cohort" says so): only those rows
    # are summed, a pass and a temporary fewer over a cohort whose scoring file has its frequencies.
    wanted = np.flatnonzero(np.full(n, frequency == "cohort") | ~np.isfinite(file_frequency))
    if n_samples < MIN_SAMPLES_FOR_COHORT_FREQUENCY:
        wanted = wanted[:0]
    block_rows = max(1, FREQUENCY_BLOCK_CELLS // max(n_samples, 1))
    for start in range(0, len(wanted), block_rows):
        rows = wanted[start:start + block_rows]
        called = n_samples - np.count_nonzero(missing[rows], axis=1)
        sums = np.sum(np.where(missing[rows], 0.0, dosages[rows]), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            observed[rows] = np.where(called > 0, sums / called / 2.0, np.nan)
    frequency_used = observed if frequency == "cohort" else np.where(np.isfinite(file_frequency), file_frequency, observed)
    has_frequency = np.isfinite(frequency_used)
    fill = np.where(has_frequency, 2.0 * frequency_used, 0.0)
    np.copyto(dosages, np.broadcast_to(fill[:, None], dosages.shape), where=missing)
    return missing, missing & has_frequency[:, None], frequency_used


def add_weighted_rows(
    sums: npt.NDArray[np.float64], weights: npt.NDArray[np.float64], dosages: npt.NDArray[np.float64]
) -> None:
    """sums += weight x dosages, one variant after the other.

    Why not `weights @ dosages`: a matrix product adds in an order of its own, and a cohort scored as
    it streams by must get the very same sums as one scored whole. Every path adds the matched
    variants in the order of their sites in the genotype file, one row at a time.
    """
    term = np.empty_like(sums)
    for weight, row in zip(weights, dosages, strict=True):
        np.multiply(row, weight, out=term)
        sums += term


def sample_scores(
    effect: EffectDosages, *, with_contributions: bool = True, top: int | None = None
) -> list[SampleScore]:
    """One score per sample; `top` keeps only the `top` contributions of largest magnitude.

    With `top`, each sample's `contributions` are the ones `SampleScore.top_variants(top)` would pick
    from all of them (still in scoring-file order), chosen with numpy over every sample at once: a
    cohort of 50,000 samples does not build 15 million contributions to print ten of each.
    """
    match = effect.match
    scoring_file = match.scoring_file
    ids = [scoring_file.variant(m.score_index).variant_id for m in match.matches]
    alleles = [str(scoring_file.effect_allele[m.score_index]) for m in match.matches]
    sums = np.zeros(match.genotypes.n_samples)
    in_site_order = np.argsort([m.site_index for m in match.matches], kind="stable")
    add_weighted_rows(sums, effect.weights[in_site_order], effect.dosages[in_site_order])
    chosen: npt.NDArray[np.intp] | None = None
    if with_contributions and top is not None:
        magnitude = np.abs(effect.weights[:, None] * effect.dosages)
        # A stable sort by decreasing magnitude: ties keep scoring-file order, as `top_variants` does.
        chosen = np.sort(np.argsort(-magnitude, axis=0, kind="stable")[:top], axis=0)
    missing_counts = effect.missing.sum(axis=0)
    imputed_counts = effect.imputed.sum(axis=0)
    results: list[SampleScore] = []
    for column, sample in enumerate(match.genotypes.samples):
        contributions: tuple[VariantContribution, ...] = ()
        if with_contributions:
            dosage = effect.dosages[:, column]
            rows = range(len(ids)) if chosen is None else chosen[:, column].tolist()
            contributions = tuple(
                VariantContribution(ids[r], alleles[r], float(effect.weights[r]), float(dosage[r]),
                                    bool(effect.imputed[r, column]), float(effect.weights[r] * dosage[r]))
                for r in rows
            )
        results.append(
            SampleScore(
                sample=sample,
                pgs_id=scoring_file.pgs_id,
                score_sum=float(sums[column]),
                variants_total=match.overlap.total,
                variants_matched=match.overlap.matched,
                variants_missing=int(missing_counts[column]),
                variants_imputed=int(imputed_counts[column]),
                overlap=match.overlap,
                contributions=contributions,
            )
        )
    return results


def score_vcf(
    vcf: Genotypes | TextSource,
    scoring_file: ScoringFile | TextSource,
    *,
    build: str | None = None,
    min_overlap: float | None = DEFAULT_MIN_OVERLAP,
    keep_ambiguous: bool = False,
    keep_multiallelic: bool = False,
    frequency: FrequencySource = "auto",
    dosage: DosageSource = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
    with_contributions: bool = True,
    top: int | None = None,
    field: str | None = None,
    deadline: Deadline | None = None,
) -> list[SampleScore]:
    """Score every sample of a VCF; `build` is the VCF's declared build (checked against its header).

    A scoring file given as a path or bytes is read in the VCF's build (source
    or harmonized positions); only its positions are kept from the VCF.
    `field`: the request field the VCF came in, named by refusals of its content or overlap.
    `deadline`: stops reading the VCF and the scoring file when it passes.
    `top`: keep only each sample's `top` largest contributions (see `sample_scores`).
    """
    candidates = scoring_candidates(scoring_file, build, deadline)
    if isinstance(vcf, Genotypes):
        genotypes = vcf
    else:
        genotypes = read_vcf(
            vcf, declared_build=build, sites=score_sites(candidates), dosage=dosage, max_bytes=max_bytes, field=field,
            deadline=deadline,
        )
    return _score_genotypes(genotypes, candidates, min_overlap=min_overlap, keep_ambiguous=keep_ambiguous,
                            keep_multiallelic=keep_multiallelic, frequency=frequency,
                            with_contributions=with_contributions, top=top, field=field)


def score_pgen(
    prefix: str | os.PathLike[str],
    scoring_file: ScoringFile | TextSource,
    *,
    build: str | None = None,
    min_overlap: float | None = DEFAULT_MIN_OVERLAP,
    keep_ambiguous: bool = False,
    keep_multiallelic: bool = False,
    frequency: FrequencySource = "auto",
    with_contributions: bool = True,
    top: int | None = None,
) -> list[SampleScore]:
    """`score_vcf` for a plink2 fileset PREFIX.pgen/.pvar/.psam (see `pgen.read_pgen`): the same answers."""
    from clinpred.pilots.genomics.pgen import read_pgen

    candidates = scoring_candidates(scoring_file, build, None)
    genotypes = read_pgen(prefix, declared_build=build, sites=score_sites(candidates))
    return _score_genotypes(genotypes, candidates, min_overlap=min_overlap, keep_ambiguous=keep_ambiguous,
                            keep_multiallelic=keep_multiallelic, frequency=frequency,
                            with_contributions=with_contributions, top=top, field=None)


def scoring_candidates(
    scoring_file: ScoringFile | TextSource, build: str | None, deadline: Deadline | None
) -> list[ScoringFile]:
    """The scoring file in the declared build, or in both of its builds until the genotypes reveal theirs."""
    if isinstance(scoring_file, ScoringFile):
        return [scoring_file]
    if not isinstance(scoring_file, (str, os.PathLike, bytes, bytearray, memoryview)):
        # A one-shot stream may have to be read in both builds.
        scoring_file = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in scoring_file)
    candidates = [read_scoring_file(scoring_file, build=build, deadline=deadline)]
    harmonized = candidates[0].header.harmonized_build
    if build is None and harmonized and harmonized != candidates[0].build:
        # The genotypes' header may reveal the other build; keep the sites of both until it is read.
        candidates.append(read_scoring_file(scoring_file, build=harmonized, deadline=deadline))
    return candidates


def score_sites(candidates: list[ScoringFile]) -> set[tuple[str, int]]:
    """(chrom, pos) of every placed variant of the candidate scoring files: the only sites kept."""
    return {(c, p) for score in candidates for c, p in zip(score.chrom.tolist(), score.pos.tolist(), strict=True)
            if c is not None}


def _score_genotypes(
    genotypes: Genotypes,
    candidates: list[ScoringFile],
    *,
    min_overlap: float | None,
    keep_ambiguous: bool,
    keep_multiallelic: bool,
    frequency: FrequencySource,
    with_contributions: bool,
    top: int | None,
    field: str | None,
) -> list[SampleScore]:
    score = next((s for s in candidates if genotypes.build and s.build == genotypes.build), candidates[0])
    match = match_variants(
        score, genotypes, keep_ambiguous=keep_ambiguous, keep_multiallelic=keep_multiallelic, min_overlap=min_overlap,
        field=field,
    )
    return sample_scores(effect_dosages(match, frequency), with_contributions=with_contributions, top=top)
