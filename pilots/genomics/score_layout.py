"""The published layout of a score (its variants, effect alleles and weights in order) and its scoring file.

What encrypting clients encrypt dosages in the order of, what a model package keeps as its score
(`score_layout.json`), and what offline scoring reads back as a scoring file. Kept apart from the
encryption (`encrypted`) so that scoring with a package's layout needs no homomorphic library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from clinpred.pilots.common.errors import FailedPrecondition
from clinpred.pilots.genomics.scoring_file import ScoringFile, read_scoring_file


@dataclass(frozen=True)
class EncryptedScoreLayout:
    """What the server publishes for one score: the order clients must encrypt dosages in."""

    pgs_id: str
    variant_ids: tuple[str, ...]  # chrom:pos:other:effect in the scoring file's build
    effect_alleles: tuple[str, ...]
    weights: tuple[float, ...]
    # Effect-allele frequencies from the scoring file (None where it gives none), so
    # a service holding only the layout still mean-imputes missing genotypes.
    allele_frequencies: tuple[float | None, ...] | None = None
    # A private score's weights are the server's: its published layout has none, its answer only the total.
    private: bool = False

    def __len__(self) -> int:
        return len(self.variant_ids)

    def chunks(self, poly_modulus_degree: int) -> list[slice]:
        slots = poly_modulus_degree // 2
        return [slice(start, min(start + slots, len(self))) for start in range(0, len(self), slots)]

    def published(self) -> EncryptedScoreLayout:
        """What a client may see: a private score's layout without its weights (nor the frequencies,
        which a client does not need)."""
        if not self.private:
            return self
        return EncryptedScoreLayout(self.pgs_id, self.variant_ids, self.effect_alleles, (), None, private=True)

    def to_json(self) -> dict[str, Any]:
        layout: dict[str, Any] = {"pgs_id": self.pgs_id, "variant_ids": list(self.variant_ids),
                                  "effect_alleles": list(self.effect_alleles), "weights": list(self.weights)}
        if self.allele_frequencies is not None:
            layout["allele_frequencies"] = list(self.allele_frequencies)
        return layout

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> EncryptedScoreLayout:
        frequencies = obj.get("allele_frequencies")
        return cls(obj["pgs_id"], tuple(obj["variant_ids"]), tuple(obj["effect_alleles"]),
                   tuple(float(w) for w in obj["weights"]),
                   None if frequencies is None else tuple(None if f is None else float(f) for f in frequencies))


def score_layout(scoring_file: ScoringFile) -> EncryptedScoreLayout:
    """Every variant of the score, in scoring-file order."""
    frequencies = None
    if scoring_file.has_allele_frequency:
        frequencies = tuple(None if not math.isfinite(f) else float(f) for f in scoring_file.allele_frequency.tolist())
    return EncryptedScoreLayout(
        pgs_id=scoring_file.pgs_id,
        variant_ids=tuple(scoring_file.variant_ids()),
        effect_alleles=tuple(str(a) for a in scoring_file.effect_allele),
        weights=tuple(float(w) for w in scoring_file.effect_weight),
        allele_frequencies=frequencies,
    )


def layout_scoring_text(layout: EncryptedScoreLayout, build: str | None, pgs_name: str = "") -> bytes:
    """A PGS Catalog (format 2.0) scoring file equal to a published layout: the inverse of `score_layout`."""
    lines = [
        "#format_version=2.0",
        f"#pgs_id={layout.pgs_id}",
        f"#pgs_name={pgs_name}",
        f"#genome_build={build or 'NR'}",
        f"#variants_number={len(layout)}",
        "chr_name\tchr_position\teffect_allele\tother_allele\teffect_weight"
        + ("\tallelefrequency_effect" if layout.allele_frequencies is not None else ""),
    ]
    frequencies = layout.allele_frequencies or (None,) * len(layout)
    rows = zip(layout.variant_ids, layout.effect_alleles, layout.weights, frequencies, strict=True)
    for variant_id, effect, weight, frequency in rows:
        parts = variant_id.split(":")
        if len(parts) != 4:
            raise FailedPrecondition(f"{layout.pgs_id} layout: variant ids must be chrom:pos:other:effect")
        chrom, pos, other, _ = parts
        line = f"{chrom}\t{pos}\t{effect}\t{'' if other == '?' else other}\t{weight!r}"
        if layout.allele_frequencies is not None:
            line += "\t" + ("" if frequency is None else repr(frequency))
        lines.append(line)
    return ("\n".join(lines) + "\n").encode()


def layout_scoring_file(layout: EncryptedScoreLayout, build: str | None, name: str, pgs_name: str = "") -> ScoringFile:
    """The layout as a scoring file, read by the same reader as any PGS Catalog file.

    A client scores its own VCF with it, exactly as the server scores with the model package's layout.
    """
    return read_scoring_file(layout_scoring_text(layout, build, pgs_name), build=build, name=name)
