"""Matching a score's variants to VCF sites, the way the PGS Catalog calculator (pgsc_calc) does.

At each score position the VCF sites there are tried in pgsc_calc's order of
priority: REF/ALT, ALT/REF, then the same on the opposite strand; a variant
without an other allele matches on its effect allele alone (the `no_oa_*`
types). Excluded by default, as in pgsc_calc:

- strand-ambiguous variants (A/T, C/G): on the other strand they look the
  same, so a strand error cannot be detected;
- multiallelic sites (more than one ALT in the record).

Strand flips are tried only for single-base alleles: complementing an indel
without reversing it is not the other strand, and indels are matched on
their exact REF/ALT spelling (both left-aligned by the PGS Catalog's
harmonizer and by standard VCF normalisation).

A score is refused (FailedPrecondition) when fewer than `min_overlap`
(default 75%, pgsc_calc's `--min_overlap`) of its variants match; when the
VCF has the score's positions but mostly different alleles, the message
points at a genome build mismatch, the usual cause.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from clinpred.pilots.common.errors import FailedPrecondition
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.genomics.text_stream import InputOrigin
from clinpred.pilots.genomics.vcf import Genotypes, VcfSite

MATCH_PRIORITY = (
    "refalt", "altref", "refalt_flip", "altref_flip",
    "no_oa_ref", "no_oa_alt", "no_oa_ref_flip", "no_oa_alt_flip",
)
UNMATCHED_REASONS = ("no_position", "not_in_vcf", "allele_mismatch", "strand_ambiguous", "multiallelic", "duplicate_match")
DEFAULT_MIN_OVERLAP = 0.75
_COMPLEMENT = str.maketrans("ACGT", "TGCA")


def complement(allele: str) -> str:
    return allele.translate(_COMPLEMENT)


def is_strand_ambiguous(first: str, second: str | None) -> bool:
    return second is not None and len(first) == 1 and len(second) == 1 and complement(first) == second


@dataclass(frozen=True)
class VariantMatch:
    """Score variant `score_index` is counted at VCF site `site_index`.

    The effect allele is the site's ALT number `alt_index` when `effect_is_alt`,
    otherwise its REF (then its dosage is 2 minus all ALT dosages).
    """

    score_index: int
    site_index: int
    alt_index: int
    effect_is_alt: bool
    match_type: str


@dataclass(frozen=True)
class Overlap:
    """How many of a score's variants were found, and why the others were not."""

    pgs_id: str
    total: int
    matched: int
    unmatched: dict[str, int] = field(default_factory=dict)
    match_types: dict[str, int] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.matched / self.total if self.total else 0.0


@dataclass(frozen=True, eq=False)
class MatchResult:
    scoring_file: ScoringFile
    genotypes: Genotypes
    matches: tuple[VariantMatch, ...]
    overlap: Overlap
    unmatched_reason: dict[int, str]  # score index -> reason


def _candidate_types(
    effect: str, other: str | None, ref: str, alt: str
) -> list[str]:
    found: list[str] = []
    snv = len(effect) == 1 and (other is None or len(other) == 1)
    if other is not None:
        if effect == ref and other == alt:
            found.append("refalt")
        if effect == alt and other == ref:
            found.append("altref")
        if snv and complement(effect) == ref and complement(other) == alt:
            found.append("refalt_flip")
        if snv and complement(effect) == alt and complement(other) == ref:
            found.append("altref_flip")
    else:
        if effect == ref:
            found.append("no_oa_ref")
        if effect == alt:
            found.append("no_oa_alt")
        if snv and complement(effect) == ref:
            found.append("no_oa_ref_flip")
        if snv and complement(effect) == alt:
            found.append("no_oa_alt_flip")
    return found


def check_builds(scoring_file: ScoringFile, name: str, build: str | None, evidence: str, origin: InputOrigin) -> None:
    """Refuse a scoring file whose positions are in another build than the genotypes `name`."""
    if scoring_file.build and build and scoring_file.build != build:
        raise origin.error(
            FailedPrecondition,
            f"{scoring_file.name} positions are in {scoring_file.build} but {name} is in {build}"
            f" (by its {evidence}); read the scoring file with build={build!r}",
        )


def match_at_position(
    scoring_file: ScoringFile,
    index: int,
    sites: Sequence[tuple[int, VcfSite]],
    *,
    keep_ambiguous: bool,
    keep_multiallelic: bool,
) -> VariantMatch | str:
    """Score variant `index` matched among the genotype sites at its position (site index, site), or why not."""
    if not sites:
        return "not_in_vcf"
    effect = str(scoring_file.effect_allele[index])
    other = scoring_file.other_allele[index]
    best: list[tuple[int, VariantMatch, bool]] = []
    by_index = dict(sites)
    for site_index, site in sites:
        multiallelic = len(site.alts) > 1
        for alt_index, alt in enumerate(site.alts):
            for match_type in _candidate_types(effect, other, site.ref, alt):
                effect_is_alt = match_type.startswith("altref") or match_type.startswith("no_oa_alt")
                rank = MATCH_PRIORITY.index(match_type)
                best.append((rank, VariantMatch(index, site_index, alt_index, effect_is_alt, match_type), multiallelic))
    if not best:
        return "allele_mismatch"
    top_rank = min(rank for rank, _, _ in best)
    top = [(match, multi) for rank, match, multi in best if rank == top_rank]
    distinct = {(m.site_index, m.alt_index, m.effect_is_alt) for m, _ in top}
    if len(distinct) > 1:
        return "duplicate_match"
    match, multiallelic = top[0]
    site = by_index[match.site_index]
    if other is not None:
        ambiguous = is_strand_ambiguous(effect, other)
    else:
        ambiguous = is_strand_ambiguous(site.ref, site.alts[match.alt_index])
    if ambiguous and not keep_ambiguous:
        return "strand_ambiguous"
    if multiallelic and not keep_multiallelic:
        return "multiallelic"
    return match


def checked_overlap(
    scoring_file: ScoringFile,
    matches: Sequence[VariantMatch],
    reasons: dict[int, str],
    positions_found: int,
    name: str,
    origin: InputOrigin,
    min_overlap: float | None,
) -> Overlap:
    """The overlap of a matching; FailedPrecondition below `min_overlap`, with a hint at a build mismatch."""
    unmatched = Counter(reasons.values())
    overlap = Overlap(
        pgs_id=scoring_file.pgs_id,
        total=len(scoring_file),
        matched=len(matches),
        unmatched={reason: unmatched.get(reason, 0) for reason in UNMATCHED_REASONS},
        match_types=dict(Counter(m.match_type for m in matches)),
    )
    if min_overlap is not None and overlap.fraction < min_overlap:
        hint = ""
        if positions_found and unmatched.get("allele_mismatch", 0) > positions_found / 2:
            hint = "; most positions carry other alleles, which suggests a genome build mismatch"
        raise origin.error(
            FailedPrecondition,
            f"{scoring_file.pgs_id}: only {overlap.matched} of {overlap.total} variants ({overlap.fraction:.1%}) match"
            f" {name}, fewer than the {min_overlap:.0%} required"
            f" (not in VCF {unmatched.get('not_in_vcf', 0)}, allele mismatch {unmatched.get('allele_mismatch', 0)},"
            f" strand-ambiguous {unmatched.get('strand_ambiguous', 0)}, multiallelic {unmatched.get('multiallelic', 0)},"
            f" no position {unmatched.get('no_position', 0)}){hint}",
        )
    return overlap


def score_positions(scoring_file: ScoringFile) -> tuple[dict[tuple[str, int], list[int]], dict[int, str]]:
    """The score's variants by (chrom, pos), in scoring-file order; and the unplaced ones ("no_position")."""
    by_position: dict[tuple[str, int], list[int]] = defaultdict(list)
    reasons: dict[int, str] = {}
    for index, (chrom, pos) in enumerate(zip(scoring_file.chrom.tolist(), scoring_file.pos.tolist(), strict=True)):
        if chrom is None or pos < 0:
            reasons[index] = "no_position"
        else:
            by_position[(chrom, pos)].append(index)
    return dict(by_position), reasons


def match_variants(
    scoring_file: ScoringFile,
    genotypes: Genotypes,
    *,
    keep_ambiguous: bool = False,
    keep_multiallelic: bool = False,
    min_overlap: float | None = DEFAULT_MIN_OVERLAP,
    field: str | None = None,
) -> MatchResult:
    """Match every score variant; raise FailedPrecondition below `min_overlap` (None: never refuse).

    `field`: the request field the genotypes came in, named by the refusal's field violation.
    """
    origin = InputOrigin(genotypes.name, field)
    check_builds(scoring_file, genotypes.name, genotypes.build, genotypes.build_evidence, origin)
    sites_at: dict[tuple[str, int], list[tuple[int, VcfSite]]] = defaultdict(list)
    for site_index, site in enumerate(genotypes.sites):
        sites_at[(site.chrom, site.pos)].append((site_index, site))
    by_position, reasons = score_positions(scoring_file)
    found: dict[int, VariantMatch] = {}
    positions_found = 0
    for position, indices in by_position.items():
        sites = sites_at.get(position, [])
        positions_found += len(indices) if sites else 0
        for index in indices:
            outcome = match_at_position(scoring_file, index, sites, keep_ambiguous=keep_ambiguous,
                                        keep_multiallelic=keep_multiallelic)
            if isinstance(outcome, str):
                reasons[index] = outcome
            else:
                found[index] = outcome
    matches = tuple(found[index] for index in sorted(found))
    overlap = checked_overlap(scoring_file, matches, reasons, positions_found, genotypes.name, origin, min_overlap)
    return MatchResult(scoring_file, genotypes, matches, overlap, dict(sorted(reasons.items())))
