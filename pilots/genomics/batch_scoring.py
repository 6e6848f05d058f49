"""Batch scoring of a whole cohort's VCF or plink2 fileset as it streams by: memory O(samples), not O(samples x variants).

`scoring.score_vcf` holds every matched variant of every sample (and every contribution) at once:
right for a handful of samples, not for a biobank cohort. Here the genotypes stream by
(`vcf.VcfRecords`, `pgen.PgenRecords`) and are added up as they come: per-sample sums, missing and
imputed counts, and, when asked, each sample's `top` largest contributions. Peak memory is that of
those per-sample arrays plus a block of records, whatever the number of variants; the genotypes of
a cohort are never held.

Matching needs every genotype site at a score position before it can decide (several records may
share a position: multiallelic splits, duplicates), so the records are taken in groups of one
position; a sorted file (every pipeline writes them sorted) hands each position over in one run.
A score position met again after its run ended means an unsorted file: the file is then read
again whole, by `scoring`'s path, which gives the same answers.

The answers equal `scoring.score_vcf`'s to the last bit: the same matching (`matching.match_at_position`),
imputation (`scoring.impute_missing`) and order of additions (`scoring.add_weighted_rows`, in file order).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clinpred.pilots.genomics.matching import (
    DEFAULT_MIN_OVERLAP,
    Overlap,
    VariantMatch,
    check_builds,
    checked_overlap,
    match_at_position,
    match_variants,
    score_positions,
)
from clinpred.pilots.genomics.scoring import (
    FrequencySource,
    SampleScore,
    VariantContribution,
    add_weighted_rows,
    effect_allele_dosages,
    effect_dosages,
    impute_missing,
    score_sites,
    scoring_candidates,
)
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.genomics.text_stream import InputOrigin, TextSource
from clinpred.pilots.genomics.vcf import DEFAULT_MAX_BYTES, Dosages, DosageSource, GenotypeHeader, Record, VcfSite

# Matched variants imputed and added together (2 MiB of float64 dosages): few numpy calls per variant.
SCORE_BLOCK_CELLS = 1 << 18
# Contributions gathered before they are merged into each sample's best: the merge sorts (top + gathered)
# values per sample, so gathering keeps its cost per variant low; the cap bounds the merge's temporaries
# (about 40 bytes a value: 20 MiB).
TOP_BLOCK_CELLS = 1 << 19


@dataclass(frozen=True, eq=False)
class TopContributions:
    """Each sample's largest contributions: row k of each array is the k-th in scoring-file order (columns = samples)."""

    score_index: npt.NDArray[np.intp]
    dosage: npt.NDArray[np.float64]
    imputed: npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class CohortScores:
    """Every sample's score as arrays (one entry per sample, in file order): what batch scoring returns."""

    samples: tuple[str, ...]
    scoring_file: ScoringFile
    overlap: Overlap
    score_sums: npt.NDArray[np.float64]
    variants_missing: npt.NDArray[np.int64]
    variants_imputed: npt.NDArray[np.int64]
    top: TopContributions | None

    def sample_scores(self) -> Iterator[SampleScore]:
        """As `scoring.sample_scores(..., top=N)` gives them, one at a time: contributions are the top ones
        (none without `top`)."""
        score = self.scoring_file
        described: dict[int, tuple[str, str, float]] = {}
        for column, sample in enumerate(self.samples):
            contributions: tuple[VariantContribution, ...] = ()
            if self.top is not None:
                rows = zip(self.top.score_index[:, column].tolist(), self.top.dosage[:, column].tolist(),
                           self.top.imputed[:, column].tolist(), strict=True)
                contributions = tuple(_contribution(score, described, index, dosage, imputed)
                                      for index, dosage, imputed in rows)
            yield SampleScore(
                sample=sample, pgs_id=score.pgs_id, score_sum=float(self.score_sums[column]),
                variants_total=self.overlap.total, variants_matched=self.overlap.matched,
                variants_missing=int(self.variants_missing[column]), variants_imputed=int(self.variants_imputed[column]),
                overlap=self.overlap, contributions=contributions,
            )


def _contribution(
    score: ScoringFile, described: dict[int, tuple[str, str, float]], index: int, dosage: float, imputed: bool
) -> VariantContribution:
    if index not in described:
        described[index] = (score.variant(index).variant_id, str(score.effect_allele[index]),
                            float(score.effect_weight[index]))
    variant_id, allele, weight = described[index]
    return VariantContribution(variant_id, allele, weight, dosage, imputed, float(np.float64(weight) * np.float64(dosage)))


class _CohortSums:
    """Per-sample sums and counts, and the top contributions, added one block of matched variants at a time."""

    def __init__(self, n_samples: int, top: int | None) -> None:
        self.sums = np.zeros(n_samples)
        self.missing = np.zeros(n_samples, dtype=np.int64)
        self.imputed = np.zeros(n_samples, dtype=np.int64)
        self.top = top
        self.best_index = np.empty((0, n_samples), dtype=np.intp)
        self.best_dosage = np.empty((0, n_samples))
        self.best_imputed = np.empty((0, n_samples), dtype=bool)
        self.best_weight = np.empty((0, n_samples))
        self.pending: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64],
                                 npt.NDArray[np.bool_]]] = []
        self.pending_cells = 0

    def add(self, score_index: npt.NDArray[np.intp], weights: npt.NDArray[np.float64],
            dosages: npt.NDArray[np.float64], missing: npt.NDArray[np.bool_], imputed: npt.NDArray[np.bool_]) -> None:
        """Variants (rows) in file order: imputed dosages, their missing and imputed calls."""
        add_weighted_rows(self.sums, weights, dosages)
        self.missing += missing.sum(axis=0)
        self.imputed += imputed.sum(axis=0)
        if self.top is not None:
            self.pending.append((score_index, weights, dosages, imputed))
            self.pending_cells += dosages.size
            if self.pending_cells >= TOP_BLOCK_CELLS:
                self._merge()

    def _merge(self) -> None:
        if not self.pending:
            return
        top = self.top or 0
        index = np.concatenate([self.best_index, *(np.broadcast_to(i[:, None], d.shape) for i, _, d, _ in self.pending)])
        dosage = np.concatenate([self.best_dosage, *(d for _, _, d, _ in self.pending)])
        imputed = np.concatenate([self.best_imputed, *(m for _, _, _, m in self.pending)])
        weights = np.concatenate([self.best_weight, *(np.broadcast_to(w[:, None], d.shape) for _, w, d, _ in self.pending)])
        self.pending, self.pending_cells = [], 0
        magnitude = np.abs(weights * dosage)
        # Largest magnitude first, ties in scoring-file order: what `SampleScore.top_variants` picks.
        order = np.lexsort((index, -magnitude), axis=0)[:top]
        self.best_index = np.take_along_axis(index, order, axis=0)
        self.best_dosage = np.take_along_axis(dosage, order, axis=0)
        self.best_imputed = np.take_along_axis(imputed, order, axis=0)
        self.best_weight = np.take_along_axis(weights, order, axis=0)

    def top_contributions(self) -> TopContributions | None:
        if self.top is None:
            return None
        self._merge()
        order = np.argsort(self.best_index, axis=0, kind="stable")  # scoring-file order, as `sample_scores` gives
        return TopContributions(np.take_along_axis(self.best_index, order, axis=0),
                                np.take_along_axis(self.best_dosage, order, axis=0),
                                np.take_along_axis(self.best_imputed, order, axis=0))


@dataclass(frozen=True)
class _Rules:
    """How to match and score: the options of `scoring.score_vcf` of the same names."""

    min_overlap: float | None
    keep_ambiguous: bool
    keep_multiallelic: bool
    frequency: FrequencySource
    top: int | None
    field: str | None


class _UnsortedInput(Exception):
    """A score position came back after its run of records ended: the file is not sorted."""


def _score_stream(
    header: GenotypeHeader,
    records: Iterable[Record],
    candidates: list[ScoringFile],
    rules: _Rules,
) -> CohortScores:
    score = next((s for s in candidates if header.build and s.build == header.build), candidates[0])
    origin = InputOrigin(header.name, rules.field)
    check_builds(score, header.name, header.build, header.build_evidence, origin)
    by_position, reasons = score_positions(score)
    file_frequency = np.asarray(score.allele_frequency, dtype=np.float64)
    weights = np.asarray(score.effect_weight, dtype=np.float64)
    n_samples = len(header.samples)
    totals = _CohortSums(n_samples, rules.top)
    matches: list[VariantMatch] = []
    positions_found = 0
    finished: set[tuple[str, int]] = set()
    group: list[tuple[int, VcfSite]] = []
    group_dosages: dict[int, Dosages] = {}
    pending: list[tuple[VariantMatch, Dosages]] = []

    def settle(position: tuple[str, int]) -> None:
        nonlocal positions_found
        indices = by_position[position]
        positions_found += len(indices)
        found: list[VariantMatch] = []
        for index in indices:
            outcome = match_at_position(score, index, group, keep_ambiguous=rules.keep_ambiguous,
                                        keep_multiallelic=rules.keep_multiallelic)
            if isinstance(outcome, str):
                reasons[index] = outcome
            else:
                found.append(outcome)
        found.sort(key=lambda m: (m.site_index, m.score_index))  # file order, as `sample_scores` adds them
        matches.extend(found)
        pending.extend((variant, group_dosages[variant.site_index]) for variant in found)
        if len(pending) * n_samples >= SCORE_BLOCK_CELLS:
            add_pending()

    def add_pending() -> None:
        # One numpy pass per block of matched variants, not per variant: a genome-wide score has a
        # million of them, most alone at their position.
        rows = np.empty((len(pending), n_samples))
        for row, (variant, dosages) in enumerate(pending):
            effect_allele_dosages(dosages, variant, rows[row])
        chosen = np.array([variant.score_index for variant, _ in pending], dtype=np.intp)
        pending.clear()
        missing, imputed, _ = impute_missing(rows, file_frequency[chosen], rules.frequency)
        totals.add(chosen, weights[chosen], rows, missing, imputed)

    current: tuple[str, int] | None = None
    for site_index, (site, dosages) in enumerate(records):
        position = (site.chrom, site.pos)
        if position not in by_position:
            continue  # a site of the other candidate build's positions
        if position != current:
            if current is not None:
                settle(current)
                finished.add(current)
            if position in finished:
                raise _UnsortedInput
            current, group, group_dosages = position, [], {}
        group.append((site_index, site))
        group_dosages[site_index] = dosages
    if current is not None:
        settle(current)
        finished.add(current)
    if pending:
        add_pending()
    for position, indices in by_position.items():
        if position not in finished:
            reasons.update(dict.fromkeys(indices, "not_in_vcf"))
    matches.sort(key=lambda m: m.score_index)
    overlap = checked_overlap(score, matches, reasons, positions_found, header.name, origin, rules.min_overlap)
    return CohortScores(header.samples, score, overlap, totals.sums, totals.missing, totals.imputed,
                        totals.top_contributions())


def _score_whole(
    header: GenotypeHeader,
    genotypes_records: Iterable[Record],
    candidates: list[ScoringFile],
    rules: _Rules,
) -> CohortScores:
    """The same answers from the records held all at once (an unsorted file): `scoring`'s matching."""
    from clinpred.pilots.genomics.vcf import Genotypes

    kept = list(genotypes_records)
    genotypes = Genotypes(header.samples, tuple(s for s, _ in kept), tuple(d for _, d in kept), header.build,
                          header.build_evidence, header.name)
    score = next((s for s in candidates if genotypes.build and s.build == genotypes.build), candidates[0])
    match = match_variants(score, genotypes, keep_ambiguous=rules.keep_ambiguous,
                           keep_multiallelic=rules.keep_multiallelic, min_overlap=rules.min_overlap, field=rules.field)
    effect = effect_dosages(match, rules.frequency)
    totals = _CohortSums(genotypes.n_samples, rules.top)
    in_site_order = np.argsort([m.site_index for m in match.matches], kind="stable")
    chosen = np.array([m.score_index for m in match.matches], dtype=np.intp)[in_site_order]
    totals.add(chosen, effect.weights[in_site_order], effect.dosages[in_site_order], effect.missing[in_site_order],
               effect.imputed[in_site_order])
    return CohortScores(header.samples, score, match.overlap, totals.sums, totals.missing, totals.imputed,
                        totals.top_contributions())


def score_cohort_vcf(
    vcf: str | os.PathLike[str] | bytes,
    scoring_file: ScoringFile | TextSource,
    *,
    build: str | None = None,
    min_overlap: float | None = DEFAULT_MIN_OVERLAP,
    keep_ambiguous: bool = False,
    keep_multiallelic: bool = False,
    frequency: FrequencySource = "auto",
    dosage: DosageSource = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
    top: int | None = None,
    field: str | None = None,
) -> CohortScores:
    """Every sample of a VCF (a path or bytes: an unsorted one is read twice) scored as it streams by.

    The arguments mean what they mean for `scoring.score_vcf`; `top` keeps each sample's `top` largest
    contributions (none without it).
    """
    from clinpred.pilots.genomics.vcf import VcfRecords

    candidates = scoring_candidates(scoring_file, build, None)
    rules = _Rules(min_overlap, keep_ambiguous, keep_multiallelic, frequency, top, field)

    def records() -> VcfRecords:
        return VcfRecords(vcf, declared_build=build, sites=score_sites(candidates), dosage=dosage, max_bytes=max_bytes,
                          field=field, compact=False)

    stream = records()
    try:
        return _score_stream(stream.header, stream, candidates, rules)
    except _UnsortedInput:
        again = records()
        return _score_whole(again.header, again, candidates, rules)


def score_cohort_pgen(
    prefix: str | os.PathLike[str],
    scoring_file: ScoringFile | TextSource,
    *,
    build: str | None = None,
    min_overlap: float | None = DEFAULT_MIN_OVERLAP,
    keep_ambiguous: bool = False,
    keep_multiallelic: bool = False,
    frequency: FrequencySource = "auto",
    top: int | None = None,
) -> CohortScores:
    """`score_cohort_vcf` for a plink2 fileset PREFIX.pgen/.pvar/.psam: the same answers as its VCF's."""
    from clinpred.pilots.genomics.pgen import PgenRecords

    candidates = scoring_candidates(scoring_file, build, None)
    rules = _Rules(min_overlap, keep_ambiguous, keep_multiallelic, frequency, top, None)
    stream = PgenRecords(prefix, declared_build=build, sites=score_sites(candidates))
    try:
        return _score_stream(stream.header, stream, candidates, rules)
    except _UnsortedInput:
        return _score_whole(stream.header, stream, candidates, rules)
