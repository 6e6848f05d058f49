"""Example VCFs: genotypes drawn at every variant of a published score layout, for trying the service.

The CLI's `clinpred genomics example-vcf` and `--example` options and the tests use it; it needs only
what a client has (the layout from GetScoreLayout and, optionally, the reference distribution).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from clinpred.pilots.genomics.matching import is_strand_ambiguous
from clinpred.pilots.genomics.package_format import ScoreDistribution
from clinpred.pilots.genomics.score_layout import EncryptedScoreLayout
from clinpred.pilots.genomics.vcf import Genotypes, VcfSite, vcf_lines


def simulated_vcf(layout: EncryptedScoreLayout, build: str, samples: int = 1, seed: int = 0,
                  reference: ScoreDistribution | None = None, effect_frequency: float = 0.3) -> bytes:
    """A VCF with genotypes drawn at every variant of a published layout: for trying the service.

    A layout has no allele frequencies, so genotypes are drawn at `effect_frequency` and then, when the
    score's `reference` distribution is given, nudged one allele at a time until each sample's score
    lies at a random percentile between 10 and 90: a plausible person rather than an outlier.
    """
    rng = np.random.default_rng(seed)
    sites: list[VcfSite] = []
    counted = np.zeros(len(layout), dtype=bool)
    for index, (variant_id, effect) in enumerate(zip(layout.variant_ids, layout.effect_alleles, strict=True)):
        chrom, pos, other, _ = variant_id.split(":")
        ref = other if other != "?" else ("A" if effect != "A" else "C")
        sites.append(VcfSite(chrom, int(pos), ref, (effect,), 0))
        counted[index] = not is_strand_ambiguous(effect, ref)  # ambiguous variants are not matched
    drawn = rng.binomial(2, effect_frequency, (len(layout), samples)).astype(np.float64)
    if reference is not None:
        weights = np.where(counted, np.asarray(layout.weights), 0.0)
        for column in range(samples):
            target = float(np.interp(rng.uniform(10, 90), np.linspace(0, 100, len(reference.quantiles)),
                                     reference.quantiles))
            _nudge(drawn[:, column], weights, target, rng)
    names = ("example",) if samples == 1 else tuple(f"example-{k + 1}" for k in range(samples))
    order = sorted(range(len(sites)), key=lambda i: (_chrom_key(sites[i].chrom), sites[i].pos))
    genotypes = Genotypes(names, tuple(sites[i] for i in order), tuple(drawn[i][None, :] for i in order), build,
                          "declared", "example")
    return "".join(vcf_lines(genotypes)).encode()


def _nudge(dosages: npt.NDArray[np.float64], weights: npt.NDArray[np.float64], target: float,
           rng: np.random.Generator) -> None:
    """Moves single alleles, in random order, while that brings the score closer to `target`."""
    for _ in range(4):
        for i in rng.permutation(len(dosages)):
            gap = target - float(weights @ dosages)
            step = 1.0 if gap * weights[i] > 0 else -1.0
            if abs(gap) < 1e-3 or not 0.0 <= dosages[i] + step <= 2.0:
                continue
            if abs(gap - step * weights[i]) < abs(gap):
                dosages[i] += step


def _chrom_key(chrom: str) -> tuple[int, str]:
    return (int(chrom), "") if chrom.isdigit() else (100, chrom)
