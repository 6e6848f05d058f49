"""PGS Catalog scoring files: header metadata, variants and their weights.

Accepted: format 2.0 (with or without the harmonized `hm_*` columns), and
format 1.0 files with `reference_allele` and "# Key = value" headers; plain
or gzipped. Anything we cannot score exactly as pgsc_calc/plink2 would is
rejected with the file, line and column named, never silently dropped:

- InvalidInput: the file is broken (no effect_allele or effect_weight column,
  non-numeric weights, bad alleles or positions, duplicate variants, fewer or
  more rows than `#variants_number` says, i.e. a truncated download).
- FailedPrecondition: the file is valid but not scorable here (positions for
  the requested build are absent, rsID-only files, interaction, haplotype,
  dominant/recessive or genotype-specific dosage weights, weights stated as
  plain OR/HR rather than on the log scale).

Columns are held as numpy arrays, not one object per variant, because
genome-wide scores run to millions of rows.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from clinpred.pilots.common.cancellation import Deadline
from clinpred.pilots.common.errors import FailedPrecondition, InvalidInput
from clinpred.pilots.genomics.text_stream import TextSource, read_lines, source_name

BUILD_ALIASES = {
    "grch37": "GRCh37", "hg19": "GRCh37", "b37": "GRCh37", "grch37/hg19": "GRCh37", "hg19/grch37": "GRCh37",
    "grch38": "GRCh38", "hg38": "GRCh38", "b38": "GRCh38", "grch38/hg38": "GRCh38", "hg38/grch38": "GRCh38",
    "ncbi36": "NCBI36", "hg18": "NCBI36",
}
_CHROM_ALIASES = {"23": "X", "24": "Y", "25": "XY", "26": "MT", "M": "MT"}
_ALLELE = re.compile(r"^[ACGT]+$")
# Format 1.0 headers ("# PGS ID = PGS000001") mapped to format 2.0 keys.
_V1_KEYS = {
    "pgs id": "pgs_id", "pgs name": "pgs_name", "reported trait": "trait_reported", "mapped trait(s) (efo label)": "trait_mapped",
    "mapped trait(s) (ontology id)": "trait_efo", "original genome build": "genome_build",
    "number of variants": "variants_number", "pgp id": "pgp_id", "citation": "citation", "license": "license",
}
_UNSUPPORTED_FLAGS = {
    "is_interaction": "interaction terms",
    "is_haplotype": "haplotype alleles",
    "is_diplotype": "diplotype alleles",
    "is_dominant": "dominant effects",
    "is_recessive": "recessive effects",
}
# Longest scoring-file line: rows are a dozen short columns and headers a citation; 64 KiB is ample
# and stops a file that never ends a line (a download gone wrong) after 64 KiB, not its whole size.
MAX_SCORING_LINE_BYTES = 64 << 10
_DOSAGE_WEIGHT_COLUMNS = ("dosage_0_weight", "dosage_1_weight", "dosage_2_weight")
_NON_LOG_WEIGHT_TYPES = {"or", "hr", "odds ratio", "hazard ratio", "odds_ratio", "hazard_ratio"}


def normalise_build(build: str | None) -> str | None:
    """GRCh37/GRCh38/NCBI36 for any common spelling; None for absent or "NR"."""
    if build is None:
        return None
    key = build.strip().lower()
    if key in ("", "nr", "na", "none"):
        return None
    return BUILD_ALIASES.get(key, build.strip())


@functools.lru_cache(maxsize=4096)
def normalise_chrom(chrom: str) -> str:
    """`chr1`, `1` -> `1`; `23`/`chrX` -> `X`; `chrM` -> `MT` (plink2 and PGS Catalog spell them differently)."""
    text = chrom.strip()
    if text.lower().startswith("chr"):
        text = text[3:]
    text = text.upper() if text.lower() in ("x", "y", "xy", "m", "mt") else text
    return _CHROM_ALIASES.get(text, text)


@dataclass(frozen=True)
class ScoringFileHeader:
    pgs_id: str | None
    pgs_name: str | None
    trait_reported: str | None
    genome_build: str | None  # normalised; None when "NR"
    variants_number: int | None
    weight_type: str | None
    format_version: str | None
    harmonized_build: str | None  # #HmPOS_build, normalised
    raw: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreVariant:
    """One row, for reports; scoring works on the column arrays."""

    index: int
    chrom: str | None
    pos: int | None
    effect_allele: str
    other_allele: str | None
    effect_weight: float
    allele_frequency: float | None
    rsid: str | None
    line: int

    @property
    def variant_id(self) -> str:
        where = f"{self.chrom}:{self.pos}" if self.pos is not None else (self.rsid or f"row{self.index}")
        return f"{where}:{self.other_allele or '?'}:{self.effect_allele}"


@dataclass(frozen=True, eq=False)
class ScoringFile:
    """A parsed scoring file; positions are those of `build` (None if the file does not say)."""

    name: str
    header: ScoringFileHeader
    build: str | None
    position_columns: tuple[str, str]
    chrom: npt.NDArray[np.object_]  # str or None (harmonisation failed)
    pos: npt.NDArray[np.int64]  # -1 where unknown
    effect_allele: npt.NDArray[np.object_]
    other_allele: npt.NDArray[np.object_]  # str or None
    effect_weight: npt.NDArray[np.float64]
    allele_frequency: npt.NDArray[np.float64]  # NaN where absent
    rsid: npt.NDArray[np.object_]
    line: npt.NDArray[np.int64]

    @property
    def pgs_id(self) -> str:
        return self.header.pgs_id or self.name

    @property
    def has_allele_frequency(self) -> bool:
        return bool(np.isfinite(self.allele_frequency).any())

    def __len__(self) -> int:
        return len(self.effect_weight)

    def variant(self, index: int) -> ScoreVariant:
        pos = int(self.pos[index])
        freq = float(self.allele_frequency[index])
        return ScoreVariant(
            index=index,
            chrom=self.chrom[index],
            pos=pos if pos >= 0 else None,
            effect_allele=str(self.effect_allele[index]),
            other_allele=self.other_allele[index],
            effect_weight=float(self.effect_weight[index]),
            allele_frequency=freq if np.isfinite(freq) else None,
            rsid=self.rsid[index],
            line=int(self.line[index]),
        )

    def variant_ids(self) -> list[str]:
        return [self.variant(i).variant_id for i in range(len(self))]


def _parse_header_line(text: str, raw: dict[str, str]) -> None:
    body = text.lstrip("#").strip()
    if "=" not in body:
        return
    key, value = body.split("=", 1)
    key, value = key.strip(), value.strip()
    if " " in key or key.lower() in _V1_KEYS:
        key = _V1_KEYS.get(key.lower(), key.lower().replace(" ", "_"))
    raw[key] = value


def _header(raw: dict[str, str], name: str) -> ScoringFileHeader:
    variants_number = raw.get("variants_number")
    count: int | None = None
    if variants_number not in (None, "", "NR"):
        try:
            count = int(str(variants_number))
        except ValueError:
            raise InvalidInput(f"{name}: header #variants_number={variants_number!r} is not an integer") from None
    return ScoringFileHeader(
        pgs_id=raw.get("pgs_id"),
        pgs_name=raw.get("pgs_name"),
        trait_reported=raw.get("trait_reported"),
        genome_build=normalise_build(raw.get("genome_build")),
        variants_number=count,
        weight_type=raw.get("weight_type"),
        format_version=raw.get("format_version"),
        harmonized_build=normalise_build(raw.get("HmPOS_build")),
        raw=dict(raw),
    )


def _choose_positions(
    header: ScoringFileHeader, columns: list[str], build: str | None, name: str
) -> tuple[tuple[str, str] | None, str | None]:
    """Which (chrom, position) columns to read, and the build they are in."""
    source = ("chr_name", "chr_position") if {"chr_name", "chr_position"} <= set(columns) else None
    harmonized = ("hm_chr", "hm_pos") if {"hm_chr", "hm_pos"} <= set(columns) else None
    wanted = normalise_build(build)
    if wanted is None:
        if source is not None:
            return source, header.genome_build
        if harmonized is not None:
            return harmonized, header.harmonized_build
        return None, None
    if source is not None and header.genome_build == wanted:
        return source, wanted
    if harmonized is not None and header.harmonized_build == wanted:
        return harmonized, wanted
    raise FailedPrecondition(
        f"{name}: no positions in {wanted}: the source positions are in {header.genome_build or 'an unreported build'}"
        + (
            f" and the harmonized ones in {header.harmonized_build}"
            if harmonized
            else " and there are no harmonized hm_chr/hm_pos columns"
        )
        + f"; download the file harmonized to {wanted} from the PGS Catalog"
    )


def _is_true(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "t")


@functools.lru_cache(maxsize=65536)
def _dna_allele(value: str) -> str | None:
    """The upper-cased allele if `value` is a DNA sequence; cached because few distinct alleles recur."""
    text = value.strip().upper()
    return text if _ALLELE.match(text) else None


def _allele(value: str, name: str, line: int, column: str, required: bool) -> str | None:
    known = _dna_allele(value)
    if known is not None:
        return known
    text = value.strip().upper()
    if text in ("", "NA", "NR", "."):
        if required:
            raise InvalidInput(f"{name} line {line}, column {column}: missing allele")
        return None
    if not _ALLELE.match(text):
        raise FailedPrecondition(
            f"{name} line {line}, column {column}: allele {value.strip()[:20]!r} is not a DNA sequence (A/C/G/T);"
            " HLA, haplotype and copy-number alleles cannot be scored from a VCF"
        )
    return text


def read_scoring_file(
    source: TextSource, *, build: str | None = None, name: str | None = None, deadline: Deadline | None = None
) -> ScoringFile:
    """Parse a PGS Catalog scoring file; `build` picks source or harmonized positions (GRCh37/GRCh38).

    Lines are at most `MAX_SCORING_LINE_BYTES` long; `deadline` stops reading when it passes.
    """
    label = source_name(source, name)
    raw: dict[str, str] = {}
    columns: list[str] | None = None
    index: dict[str, int] = {}
    header: ScoringFileHeader | None = None
    pos_columns: tuple[str, str] | None = None
    chosen_build: str | None = None
    chroms: list[str | None] = []
    positions: list[int] = []
    effects: list[str] = []
    others: list[str | None] = []
    weights: list[float] = []
    freqs: list[float] = []
    rsids: list[str | None] = []
    lines: list[int] = []
    seen: dict[tuple[Any, ...], int] = {}
    present_flags: list[tuple[str, str]] = []
    present_dosage_columns: list[str] = []

    for text_line in read_lines(source, name=label, max_line_bytes=MAX_SCORING_LINE_BYTES, deadline=deadline):
        text, number = text_line.text, text_line.number
        if columns is None:
            if text.startswith("#"):
                _parse_header_line(text, raw)
                continue
            if not text.strip():
                continue
            columns = [c.strip() for c in text.split("\t")]
            index = {c: i for i, c in enumerate(columns)}
            header = _header(raw, label)
            _check_columns(columns, header, label)
            pos_columns, chosen_build = _choose_positions(header, columns, build, label)
            present_flags = [(flag, what) for flag, what in _UNSUPPORTED_FLAGS.items() if flag in index]
            present_dosage_columns = [c for c in _DOSAGE_WEIGHT_COLUMNS if c in index]
            if pos_columns is None:
                raise FailedPrecondition(
                    f"{label}: variants are identified by rsID only (no chr_name/chr_position or hm_chr/hm_pos);"
                    " positions are needed to match a VCF: download the harmonized file from the PGS Catalog"
                )
            continue
        if not text.strip():
            continue
        if not text_line.terminated and text.count("\t") < len(columns) - 1:
            raise InvalidInput(f"{label} line {number}: last line is incomplete; the file looks truncated")
        fields = text.split("\t")
        if len(fields) != len(columns):
            raise InvalidInput(f"{label} line {number}: {len(fields)} columns, the header has {len(columns)}")

        def cell(column: str, fields: list[str] = fields, index: dict[str, int] = index) -> str:
            at = index.get(column)
            return fields[at].strip() if at is not None else ""

        for flag, what in present_flags:
            if _is_true(cell(flag)):
                raise FailedPrecondition(
                    f"{label} line {number}, column {flag}: {what} are not supported (additive scores only)"
                )
        for column in present_dosage_columns:
            if cell(column) not in ("", "NA"):
                raise FailedPrecondition(
                    f"{label} line {number}, column {column}: genotype-specific dosage weights are not supported"
                    " (additive scores only)"
                )
        effect = _allele(cell("effect_allele"), label, number, "effect_allele", required=True)
        assert effect is not None
        other_column = "other_allele" if "other_allele" in index else "reference_allele"
        other = _allele(cell(other_column), label, number, other_column, required=False)
        if other is None and "hm_inferOtherAllele" in index:
            inferred = cell("hm_inferOtherAllele")
            # Several candidates ("A/G") leave the other allele unknown; pgsc_calc then matches on the effect allele.
            if inferred and "/" not in inferred:
                other = _allele(inferred, label, number, "hm_inferOtherAllele", required=False)
        weight_text = cell("effect_weight")
        try:
            weight = float(weight_text)
        except ValueError:
            raise InvalidInput(f"{label} line {number}, column effect_weight: {weight_text[:20]!r} is not a number") from None
        if not np.isfinite(weight):
            raise InvalidInput(f"{label} line {number}, column effect_weight: weight is not finite")
        freq = np.nan
        freq_text = cell("allelefrequency_effect")
        if freq_text not in ("", "NA", "NR"):
            try:
                freq = float(freq_text)
            except ValueError:
                raise InvalidInput(
                    f"{label} line {number}, column allelefrequency_effect: {freq_text[:20]!r} is not a number"
                ) from None
            if not 0.0 <= freq <= 1.0:
                raise InvalidInput(f"{label} line {number}, column allelefrequency_effect: {freq} is outside [0, 1]")
        assert pos_columns is not None
        chrom_text, pos_text = cell(pos_columns[0]), cell(pos_columns[1])
        chrom: str | None = None
        position = -1
        if chrom_text and pos_text:
            chrom = normalise_chrom(chrom_text)
            try:
                position = int(pos_text)
            except ValueError:
                raise InvalidInput(
                    f"{label} line {number}, column {pos_columns[1]}: {pos_text[:20]!r} is not an integer position"
                ) from None
            if position <= 0:
                raise InvalidInput(f"{label} line {number}, column {pos_columns[1]}: position must be positive")
        elif not pos_columns[0].startswith("hm_"):
            raise FailedPrecondition(
                f"{label} line {number}, column {pos_columns[0]}/{pos_columns[1]}: no position (rsID only);"
                " download the harmonized file from the PGS Catalog"
            )
        rsid = cell("rsID") or cell("hm_rsID") or None
        key: tuple[Any, ...] = (chrom, position, effect, other) if chrom is not None else ("rsid", rsid, effect, other, number)
        if key in seen:
            raise InvalidInput(
                f"{label} line {number}: duplicate variant (same position and alleles as line {seen[key]})"
            )
        seen[key] = number
        chroms.append(chrom)
        positions.append(position)
        effects.append(effect)
        others.append(other)
        weights.append(weight)
        freqs.append(freq)
        rsids.append(rsid)
        lines.append(number)

    if columns is None or header is None or pos_columns is None:
        raise InvalidInput(f"{label}: no column header line; not a PGS Catalog scoring file")
    if not weights:
        raise InvalidInput(f"{label}: no variants")
    if header.variants_number is not None and header.variants_number != len(weights):
        raise InvalidInput(
            f"{label}: header #variants_number={header.variants_number} but the file has {len(weights)} variants"
            " (truncated download?)"
        )
    if all(c is None for c in chroms):
        raise FailedPrecondition(f"{label}: no variant has a position in columns {pos_columns[0]}/{pos_columns[1]}")

    def objects(values: list[Any]) -> npt.NDArray[np.object_]:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array

    return ScoringFile(
        name=label,
        header=header,
        build=chosen_build,
        position_columns=pos_columns,
        chrom=objects(chroms),
        pos=np.asarray(positions, dtype=np.int64),
        effect_allele=objects(effects),
        other_allele=objects(others),
        effect_weight=np.asarray(weights, dtype=np.float64),
        allele_frequency=np.asarray(freqs, dtype=np.float64),
        rsid=objects(rsids),
        line=np.asarray(lines, dtype=np.int64),
    )


def _check_columns(columns: list[str], header: ScoringFileHeader, name: str) -> None:
    if len(set(columns)) != len(columns):
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        raise InvalidInput(f"{name}: column header repeats {', '.join(duplicated)}")
    if "effect_allele" not in columns:
        raise InvalidInput(f"{name}: no effect_allele column")
    if "effect_weight" not in columns:
        if any(c in columns for c in _DOSAGE_WEIGHT_COLUMNS):
            raise FailedPrecondition(f"{name}: genotype-specific dosage weights only (dosage_N_weight); additive scores only")
        raise InvalidInput(f"{name}: no effect_weight column")
    weight_type = (header.weight_type or "").strip().lower()
    if weight_type in _NON_LOG_WEIGHT_TYPES:
        raise FailedPrecondition(
            f"{name}: #weight_type={header.weight_type} (not log-scale); additive scores need beta or log(OR)/log(HR) weights"
        )
