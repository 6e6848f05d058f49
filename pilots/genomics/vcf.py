"""VCF genotypes: plain or bgzipped, one or many samples, GT hard calls or DS dosages.

The input may be a path, bytes, or any iterable of byte/str chunks (a gRPC
client-streaming upload), is decompressed and parsed line by line, and only
the sites a score needs are kept when `sites` is given, so whole-genome
uploads stay within memory.

The genome build is witnessed by the header (`genome_build.BuildWitness`: `##contig` lengths, else
`##reference`), checked against a declared one, and a record beyond its chromosome's end is refused.

Genotype conventions follow plink2 so that scores agree: haploid calls on
X, Y and MT count as homozygous; half calls (`0/.`) are missing, as with
`plink2 --vcf-half-call missing`; DS is used when the record has it and the
sample's DS is not `.`, else GT, and is rounded to plink2's 1/16384 units,
as with `plink2 --vcf ... dosage=DS`.

Messages name line and column, never a sample's identifier or genotype.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from clinpred.pilots.common.cancellation import Deadline
from clinpred.pilots.common.errors import ClinpredError, InvalidInput
from clinpred.pilots.genomics.genome_build import CHROMOSOME_LENGTHS as CHROMOSOME_LENGTHS
from clinpred.pilots.genomics.genome_build import GRCH37_LENGTHS as GRCH37_LENGTHS
from clinpred.pilots.genomics.genome_build import GRCH38_LENGTHS as GRCH38_LENGTHS
from clinpred.pilots.genomics.genome_build import BuildWitness
from clinpred.pilots.genomics.genome_build import contig_entry as contig_entry
from clinpred.pilots.genomics.genome_build import detect_build as detect_build
from clinpred.pilots.genomics.scoring_file import normalise_chrom
from clinpred.pilots.genomics.text_stream import InputOrigin, TextSource, decode_line, read_byte_lines, source_name

_BASES = re.compile(r"^[ACGTN]+$")
_HAPLOID_CHROMS = {"X", "Y", "MT"}
DEFAULT_MAX_BYTES = 4 << 30
# Longest VCF line read. A record holds one column per sample: a GT:DS cell ("0|1:0.998") and its tab
# take about 12 bytes, so 16 MiB fits a million samples (UK Biobank has 500,000) and headers with
# 100-byte sample names for 150,000 samples, while a line that never ends is refused after 16 MiB
# instead of being buffered to the decompression limit (4 GiB).
MAX_VCF_LINE_BYTES = 16 << 20
DOSAGE_UNITS = 16384

DosageSource = Literal["auto", "GT"]


@dataclass(frozen=True)
class VcfSite:
    chrom: str  # normalised: "1".."22", "X", "Y", "MT"
    pos: int
    ref: str
    alts: tuple[str, ...]
    line: int


Dosages = npt.NDArray[np.float64] | npt.NDArray[np.float16]


@dataclass(frozen=True, eq=False)
class Genotypes:
    """Alt-allele dosages of every kept site: `dosages[i]` has shape (len(alts), samples), NaN = missing.

    Hard calls read from biallelic GT cells are float16 (0, 1, 2 and NaN are exact in it, and a
    cohort's genotypes take a quarter of the memory); dosages and everything else are float64.
    Read them as float64 (`effect_dosages` does): arithmetic in float16 would round.
    """

    samples: tuple[str, ...]
    sites: tuple[VcfSite, ...]
    dosages: tuple[Dosages, ...]
    build: str | None
    build_evidence: str  # "contig lengths", "##reference", "declared" or "none"
    name: str = "genotypes"

    @property
    def n_samples(self) -> int:
        return len(self.samples)


class _GenotypeParser:
    """Turns one sample's GT string into alt-allele counts; cached because a VCF has few distinct strings."""

    def __init__(self, origin: InputOrigin) -> None:
        self.origin = origin
        self.cache: dict[tuple[str, int, bool], tuple[int, ...] | None] = {}

    def parse(self, gt: str, n_alts: int, haploid_ok: bool, line: int, column: int) -> tuple[int, ...] | None:
        key = (gt, n_alts, haploid_ok)
        if key in self.cache:
            return self.cache[key]
        where = f"{self.origin.label} line {line}, column {column}"
        alleles = re.split(r"[/|]", gt)
        if len(alleles) > 2:
            raise self.origin.error(InvalidInput, f"{where}: GT is not diploid ({len(alleles)} alleles)")
        if len(alleles) == 1:
            if alleles[0] == ".":
                result: tuple[int, ...] | None = None
                self.cache[key] = result
                return result
            if not haploid_ok:
                raise self.origin.error(InvalidInput, f"{where}: haploid GT on an autosome; diploid genotypes are required")
            alleles = alleles * 2
        if "." in alleles:
            result = None
        else:
            counts = [0] * n_alts
            for allele in alleles:
                if not allele.isdigit():
                    raise self.origin.error(InvalidInput, f"{where}: GT allele is not a number")
                code = int(allele)
                if code > n_alts:
                    raise self.origin.error(InvalidInput, f"{where}: GT allele index exceeds the ALT alleles")
                if code > 0:
                    counts[code - 1] += 1
            result = tuple(counts)
        self.cache[key] = result
        return result


@dataclass(frozen=True)
class GenotypeHeader:
    """What a genotype file says before its first record: samples, and the build its header witnesses."""

    samples: tuple[str, ...]
    build: str | None
    build_evidence: str  # "contig lengths", "##reference", "declared" or "none"
    name: str


Record = tuple[VcfSite, Dosages]


def read_vcf(
    source: TextSource,
    *,
    name: str | None = None,
    declared_build: str | None = None,
    sites: Collection[tuple[str, int]] | None = None,
    dosage: DosageSource = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
    field: str | None = None,
    build_field: str | None = None,
    max_line_bytes: int = MAX_VCF_LINE_BYTES,
    deadline: Deadline | None = None,
) -> Genotypes:
    """Parse a VCF; `sites` (normalised chrom, pos) keeps only those positions; `dosage="GT"` ignores DS.

    `field` is the request field the VCF came in and `build_field` the one that declared its build:
    errors about the content name `field`, a build the VCF contradicts names `build_field`.
    A line longer than `max_line_bytes` is refused; `deadline` stops parsing when it passes.
    Every kept site is held in memory; `VcfRecords` hands them over one at a time instead.
    """
    records = VcfRecords(source, name=name, declared_build=declared_build, sites=sites, dosage=dosage,
                         max_bytes=max_bytes, field=field, build_field=build_field, max_line_bytes=max_line_bytes,
                         deadline=deadline)
    header = records.header
    kept = list(records)
    return Genotypes(header.samples, tuple(site for site, _ in kept), tuple(values for _, values in kept),
                     header.build, header.build_evidence, header.name)


class VcfRecords:
    """A VCF read as a stream: `header` (read on first use), then its kept records in file order.

    The arguments are those of `read_vcf`. Memory stays that of a block of lines (`_CallBlock`),
    whatever the number of records: batch scoring adds each record up and lets it go. `compact=False`
    gives hard calls as float64 rather than float16, for records that are used at once and dropped.
    """

    def __init__(
        self,
        source: TextSource,
        *,
        name: str | None = None,
        declared_build: str | None = None,
        sites: Collection[tuple[str, int]] | None = None,
        dosage: DosageSource = "auto",
        max_bytes: int = DEFAULT_MAX_BYTES,
        field: str | None = None,
        build_field: str | None = None,
        max_line_bytes: int = MAX_VCF_LINE_BYTES,
        deadline: Deadline | None = None,
        compact: bool = True,
    ) -> None:
        self.compact = compact
        self.label = source_name(source, name)
        self.origin = InputOrigin(self.label, field)
        self.witness = BuildWitness(declared_build, "VCF", self.origin, InputOrigin(self.label, build_field or field))
        self.site_filter = set(sites) if sites is not None else None
        self.dosage: DosageSource = dosage
        self.parser = _GenotypeParser(self.origin)
        self.lines = read_byte_lines(source, origin=self.origin, max_bytes=max_bytes, max_line_bytes=max_line_bytes,
                                     deadline=deadline)
        self._header: GenotypeHeader | None = None

    @property
    def header(self) -> GenotypeHeader:
        if self._header is None:
            self._header = self._read_header()
        return self._header

    def _read_header(self) -> GenotypeHeader:
        label, origin = self.label, self.origin
        first = True
        for number, raw, terminated in self.lines:
            text = decode_line(raw, origin, number)
            if first:
                first = False
                if not text.startswith("##fileformat=VCF"):
                    raise origin.error(InvalidInput, f"{label} line 1: not a VCF (no ##fileformat=VCF line)")
                continue
            if text.startswith("##"):
                self.witness.read_meta_line(text)
                continue
            if not text.startswith("#CHROM"):
                raise origin.error(InvalidInput, f"{label} line {number}: expected the #CHROM header line")
            if not terminated:
                raise origin.error(InvalidInput, f"{label} line {number}: input ends inside the #CHROM header line (truncated)")
            header = text.split("\t")
            if header[:8] != ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]:
                raise origin.error(InvalidInput, f"{label} line {number}: #CHROM header does not have the 8 fixed VCF columns")
            if len(header) < 10 or header[8] != "FORMAT":
                raise origin.error(InvalidInput, f"{label} line {number}: no FORMAT column and samples; genotypes are required")
            samples = tuple(header[9:])
            if len(set(samples)) != len(samples):
                raise origin.error(InvalidInput, f"{label} line {number}: sample names are not unique")
            self.witness.settle()
            return GenotypeHeader(samples, self.witness.build, self.witness.evidence, label)
        if first:
            raise origin.error(InvalidInput, f"{label}: empty input")
        raise origin.error(InvalidInput, f"{label}: no #CHROM header line (truncated or not a VCF)")

    def __iter__(self) -> Iterator[Record]:
        label, origin = self.label, self.origin
        n_samples = len(self.header.samples)
        lengths = self.witness.lengths
        block = _CallBlock(self.compact)

        def exact(raw: bytes, number: int, n_samples: int) -> Record | None:
            return _parse_record(decode_line(raw, origin, number), number, n_samples, origin, self.witness,
                                 self.site_filter, self.dosage, self.parser)

        try:
            for number, raw, terminated in self.lines:
                if not raw:
                    continue
                parsed = _vectorised_record(raw, number, n_samples, self.site_filter, lengths, self.dosage)
                if parsed is None:
                    continue
                if isinstance(parsed, _Deferred) and terminated:
                    if block.add(parsed, raw):
                        yield from block.decode(exact)
                    continue
                yield from block.decode(exact)  # kept sites stay in file order, and an earlier line's refusal comes first
                try:
                    if not isinstance(parsed, tuple):
                        # Anything the vectorised reader does not take as it is (odd spellings, errors) gets the
                        # cell-by-cell reader: the same answers, and refusals that name the line and column.
                        parsed = exact(raw, number, n_samples)
                except InvalidInput as error:
                    if not terminated:
                        message = f"{label} line {number}: input ends mid-line (truncated upload?)"
                        raise origin.error(InvalidInput, message) from None
                    raise error
                if parsed is not None:
                    yield parsed
            yield from block.decode(exact)
        except ClinpredError:
            yield from block.decode(exact)  # a refusal of an earlier line in the block comes first
            raise


class _Exact:
    """The answer of `_vectorised_record` for a line it leaves to the cell-by-cell reader."""


_EXACT = _Exact()
_TAB, _COLON, _DOT, _SLASH, _PIPE, _ZERO = (ord(c) for c in "\t:./|0")
# Bytes a DS value may hold for the vectorised reader; anything else (NaN, "1_0", signs) goes cell by cell.
_DS_BYTES = frozenset(b"0123456789.eE-\t:")
# Calls decoded together in one numpy pass: a VCF of many sites and few samples has short lines,
# and one pass per line would cost more in numpy's per-call overhead than in decoding.
BLOCK_CELL_BYTES = 1 << 20
BLOCK_LINES = 4096


@dataclass(frozen=True)
class _Deferred:
    """A kept biallelic site whose cells are all three-byte GT calls: decoded later with its block."""

    site: VcfSite
    cells: bytes


class _CallBlock:
    """Deferred sites waiting to be decoded as one (sites, samples, 4) byte array.

    `compact`: the calls come out float16 (a quarter of the memory, for genotypes that are kept),
    else float64 (for records added up at once: no conversion later).
    """

    def __init__(self, compact: bool = True) -> None:
        self.table = _CALL_COUNT if compact else _CALL_COUNT_64
        self.entries: list[tuple[_Deferred, bytes]] = []
        self.cell_bytes = 0

    def add(self, deferred: _Deferred, raw: bytes) -> bool:
        """Keep `deferred` (its whole line `raw` too, for the exact reader); True when the block is full."""
        self.entries.append((deferred, raw))
        self.cell_bytes += len(deferred.cells)
        return self.cell_bytes >= BLOCK_CELL_BYTES or len(self.entries) >= BLOCK_LINES

    def decode(self, exact: Callable[[bytes, int, int], Record | None]) -> Iterator[Record]:
        """The block's records in file order; a site with any call the fast rules do not cover goes to `exact`."""
        entries, self.entries, self.cell_bytes = self.entries, [], 0
        if not entries:
            return
        n_samples = (len(entries[0][0].cells) + 1) // 4
        cells = np.frombuffer(b"\t".join(d.cells for d, _ in entries) + b"\t", dtype="<u4")
        values, valid = _three_byte_calls(cells.reshape(len(entries), n_samples), self.table)
        row_valid: npt.NDArray[np.bool_] = np.all(valid, axis=1)
        for row, (deferred, raw) in enumerate(entries):
            if row_valid[row]:
                yield deferred.site, values[row][None, :]
            else:
                record = exact(raw, deferred.site.line, n_samples)
                if record is not None:
                    yield record


def _three_byte_calls(cells: npt.NDArray[np.uint32], table: Dosages) -> tuple[Dosages, npt.NDArray[np.bool_]]:
    """ALT counts of biallelic "a/b" calls, each cell with its tab as one little-endian 32-bit word; and validity.

    One table look-up per cell, indexed by the two allele bytes: 0/1/2 copies, NaN when either
    allele is "." (missing, as the exact reader has it, whatever the other byte), 100 for anything
    else, which makes the call invalid; the separator and tab bytes are checked with one mask.
    """
    alleles = (cells & 0xFF) | ((cells >> 8) & 0xFF00)
    values = table[alleles]
    framing = cells & 0xFF00FF00
    valid = ((framing == _SLASH_FRAME) | (framing == _PIPE_FRAME)) & ~(values >= _NOT_AN_ALLELE)
    return values, valid


def _call_counts() -> npt.NDArray[np.float16]:
    table = np.full((256, 256), _NOT_AN_ALLELE, dtype=np.float16)  # [second allele byte, first allele byte]
    counts = {ord("0"): 0.0, ord("1"): 1.0}
    for second, second_count in counts.items():
        for first, first_count in counts.items():
            table[second, first] = first_count + second_count
    table[ord("."), :] = np.nan
    table[:, ord(".")] = np.nan
    return table.reshape(-1)


_NOT_AN_ALLELE = 100.0
_CALL_COUNT = _call_counts()
_CALL_COUNT_64 = _CALL_COUNT.astype(np.float64)
_SLASH_FRAME = (_TAB << 24) | (_SLASH << 8)
_PIPE_FRAME = (_TAB << 24) | (_PIPE << 8)


def _vectorised_record(
    raw: bytes,
    number: int,
    n_samples: int,
    site_filter: set[tuple[str, int]] | None,
    lengths: dict[str, int],
    dosage: DosageSource,
) -> Record | _Deferred | _Exact | None:
    """A record parsed with numpy over its whole line; None if `site_filter` skips it.

    Why: a biobank VCF line holds tens of thousands of cells, and a Python step per cell costs
    a second per few hundred lines. The line is split once at the fixed columns; a site the score
    does not need is dropped after its column count and position are checked, without touching its
    cells; GT calls of one or three bytes ("0/1", "1|1", "./.", haploid "1") are decoded as a byte
    matrix; DS values are converted in one numpy call. A biallelic GT-only line of three-byte cells
    is returned `_Deferred`, to be decoded with its neighbours (`_CallBlock`). Anything else returns
    `_EXACT`, and `_parse_record` reads the line cell by cell with the same rules (and refuses what
    is wrong).
    """
    parts = raw.split(b"\t", 9)
    if len(parts) != 10 or parts[9].count(b"\t") != n_samples - 1 or not raw.isascii():
        return _EXACT
    pos_text = parts[1]
    if not pos_text.isdigit():
        return _EXACT
    chrom = normalise_chrom(parts[0].decode())
    pos = int(pos_text)
    if pos <= 0 or (chrom in lengths and pos > lengths[chrom]):
        return _EXACT
    if site_filter is not None and (chrom, pos) not in site_filter:
        return None
    ref = parts[3].decode().upper()
    alt_text = parts[4].decode()
    alts = () if alt_text == "." else tuple(a.upper() for a in alt_text.split(","))
    if not _BASES.match(ref) or any(not a for a in alts) or len(alts) > 9:
        return _EXACT
    format_keys = parts[8].split(b":")
    ds_at = format_keys.index(b"DS") if (b"DS" in format_keys and dosage == "auto") else None
    gt_at = format_keys.index(b"GT") if b"GT" in format_keys else None
    haploid_ok = chrom in _HAPLOID_CHROMS
    cells = parts[9]
    values: npt.NDArray[np.float64] | None
    if ds_at is not None:
        values = _ds_values(cells, n_samples, len(format_keys), ds_at, gt_at, len(alts), haploid_ok)
    elif gt_at == 0 and len(format_keys) == 1 and len(alts) == 1 and len(cells) == 4 * n_samples - 1:
        return _Deferred(VcfSite(chrom, pos, ref, alts, number), cells)
    elif gt_at == 0:
        values = _gt_values(cells, n_samples, len(format_keys) > 1, len(alts), haploid_ok)
    else:
        values = None
    if values is None:
        return _EXACT
    return VcfSite(chrom, pos, ref, alts, number), values


def _gt_values(
    cells: bytes, n_samples: int, has_more_keys: bool, n_alts: int, haploid_ok: bool
) -> npt.NDArray[np.float64] | None:
    """Alt-allele counts (n_alts, samples) from cells whose first key is GT; None if a call needs the exact reader."""
    data = np.frombuffer(cells, dtype=np.uint8)
    if not has_more_keys and len(data) == 4 * n_samples - 1:
        # Every cell is three bytes ("0/1"): the line is a (samples, 4) matrix once a tab is appended.
        matrix = np.frombuffer(cells + b"\t", dtype=np.uint8).reshape(n_samples, 4)
        if not np.all(matrix[:, 3] == _TAB):
            return None  # the widths add up, but not every cell is three bytes
        first, separator, second = matrix[:, 0], matrix[:, 1], matrix[:, 2]
        single = np.zeros(n_samples, dtype=bool)
    else:
        boundaries = np.flatnonzero(data == _TAB)
        starts = np.empty(n_samples, dtype=np.intp)
        starts[0] = 0
        starts[1:] = boundaries + 1
        if has_more_keys:
            boundaries = np.flatnonzero((data == _TAB) | (data == _COLON))
        ends_at = np.append(boundaries, len(data))
        widths = ends_at[np.searchsorted(ends_at, starts)] - starts
        single = widths == 1
        if not np.all(single | (widths == 3)):
            return None
        padded = np.concatenate([data, np.zeros(3, dtype=np.uint8)])
        first, separator, second = padded[starts], padded[starts + 1], padded[starts + 2]
        second = np.where(single, first, second)
        separator = np.where(single, _SLASH, separator)
    if not np.all((separator == _SLASH) | (separator == _PIPE)):
        return None
    first_code = first.astype(np.int16) - _ZERO
    second_code = second.astype(np.int16) - _ZERO
    missing = (first == _DOT) | (second == _DOT)
    codes_ok = (first_code >= 0) & (first_code <= n_alts) & (second_code >= 0) & (second_code <= n_alts)
    if not np.all(missing | codes_ok):
        return None
    if not haploid_ok and np.any(single & (first != _DOT)):
        return None  # a haploid call on an autosome: the exact reader refuses it
    values = np.empty((n_alts, n_samples))
    for alt in range(n_alts):
        values[alt] = (first_code == alt + 1).astype(np.float64) + (second_code == alt + 1)
    values[:, missing] = np.nan
    return values


def _ds_values(
    cells: bytes, n_samples: int, n_keys: int, ds_at: int, gt_at: int | None, n_alts: int, haploid_ok: bool
) -> npt.NDArray[np.float64] | None:
    """Dosages (1, samples) of a biallelic record from DS, GT where DS is "."; None for the exact reader."""
    if n_alts != 1:
        return None
    tokens = cells.replace(b":", b"\t").split(b"\t")
    if len(tokens) != n_samples * n_keys:
        return None  # trailing keys dropped in some cells
    ds_tokens = tokens[ds_at::n_keys]
    text = np.array(ds_tokens)
    absent = text == b"."
    present = text[~absent]
    if not set(b"".join(present.tolist())) <= _DS_BYTES:
        return None
    try:
        parsed = present.astype(np.float64)
    except ValueError:
        return None
    if not np.all((parsed >= 0.0) & (parsed <= 2.0)):
        return None
    values = np.full((1, n_samples), np.nan)
    # plink2 stores dosages in units of 1/16384; rounding the same way keeps scores equal to its output.
    values[0, ~absent] = np.floor(parsed * DOSAGE_UNITS + 0.5) / DOSAGE_UNITS
    if np.any(absent) and gt_at is not None:
        gt_tokens = tokens[gt_at::n_keys]
        calls = {b"0/0": 0.0, b"0|0": 0.0, b"0/1": 1.0, b"0|1": 1.0, b"1/0": 1.0, b"1|0": 1.0, b"1/1": 2.0,
                 b"1|1": 2.0, b"./.": np.nan, b".|.": np.nan, b".": np.nan}
        if haploid_ok:
            calls.update({b"0": 0.0, b"1": 2.0})
        for sample in np.flatnonzero(absent):
            call = calls.get(gt_tokens[sample])
            if call is None:
                return None
            values[0, sample] = call
    return values


def _parse_record(
    text: str,
    number: int,
    n_samples: int,
    origin: InputOrigin,
    witness: BuildWitness,
    site_filter: set[tuple[str, int]] | None,
    dosage: DosageSource,
    parser: _GenotypeParser,
) -> tuple[VcfSite, npt.NDArray[np.float64]] | None:
    name = origin.label
    fields = text.split("\t")
    if len(fields) != 9 + n_samples:
        raise origin.error(InvalidInput, f"{name} line {number}: {len(fields)} columns, the #CHROM header has {9 + n_samples}")
    chrom = normalise_chrom(fields[0])
    try:
        pos = int(fields[1])
    except ValueError:
        raise origin.error(InvalidInput, f"{name} line {number}, column POS: not an integer") from None
    if pos <= 0:
        raise origin.error(InvalidInput, f"{name} line {number}, column POS: must be positive")
    witness.check_position(chrom, pos, f"{name} line {number}")
    if site_filter is not None and (chrom, pos) not in site_filter:
        return None
    ref = fields[3].upper()
    if not _BASES.match(ref):
        raise origin.error(InvalidInput, f"{name} line {number}, column REF: not a DNA sequence")
    alts = () if fields[4] == "." else tuple(a.upper() for a in fields[4].split(","))
    if any(not a for a in alts):
        raise origin.error(InvalidInput, f"{name} line {number}, column ALT: empty allele")
    n_alts = len(alts)
    format_keys = fields[8].split(":")
    gt_at = format_keys.index("GT") if "GT" in format_keys else None
    ds_at = format_keys.index("DS") if ("DS" in format_keys and dosage == "auto") else None
    if gt_at is None and ds_at is None:
        raise origin.error(InvalidInput, f"{name} line {number}, column FORMAT: neither GT nor DS")
    haploid_ok = chrom in _HAPLOID_CHROMS
    values = np.full((n_alts, n_samples), np.nan)
    for sample in range(n_samples):
        column = 10 + sample
        parts = fields[9 + sample].split(":")
        if ds_at is not None:
            text_ds = parts[ds_at] if ds_at < len(parts) else "."
            if text_ds != ".":
                _parse_ds(text_ds, values, sample, n_alts, origin, number, column)
                continue
        if gt_at is None:
            continue
        gt = parts[gt_at] if gt_at < len(parts) else "."
        counts = parser.parse(gt, n_alts, haploid_ok, number, column)
        if counts is not None:
            values[:, sample] = counts
    return VcfSite(chrom, pos, ref, alts, number), values


def _parse_ds(
    text_ds: str, values: npt.NDArray[np.float64], sample: int, n_alts: int, origin: InputOrigin, number: int, column: int
) -> None:
    where = f"{origin.label} line {number}, column {column}"
    pieces = text_ds.split(",")
    if len(pieces) != n_alts:
        raise origin.error(InvalidInput, f"{where}: DS has {len(pieces)} values for {n_alts} ALT alleles")
    for alt, piece in enumerate(pieces):
        try:
            value = float(piece)
        except ValueError:
            raise origin.error(InvalidInput, f"{where}: DS is not a number") from None
        if not 0.0 <= value <= 2.0:
            raise origin.error(InvalidInput, f"{where}: DS outside [0, 2]")
        # plink2 stores dosages in units of 1/16384; rounding the same way keeps scores equal to its output.
        values[alt, sample] = math.floor(value * DOSAGE_UNITS + 0.5) / DOSAGE_UNITS


def vcf_lines(genotypes: Genotypes, *, with_dosage: bool = False, reference: str | None = None) -> Iterator[str]:
    """A VCF of `genotypes` (header with contig lengths of its build), one line at a time.

    GT is the rounded dosage; `with_dosage` adds DS with 4 decimals. Used to
    hand simulated cohorts to plink2 and to the streaming reader.
    """
    yield "##fileformat=VCFv4.2\n"
    if reference:
        yield f"##reference={reference}\n"
    for chrom, length in CHROMOSOME_LENGTHS.get(genotypes.build or "", {}).items():
        yield f"##contig=<ID={chrom},length={length}>\n"
    yield '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    if with_dosage:
        yield '##FORMAT=<ID=DS,Number=A,Type=Float,Description="Alternate allele dosage">\n'
    yield "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *genotypes.samples]) + "\n"
    calls = {0: "0/0", 1: "0/1", 2: "1/1"}
    for site, dosages in zip(genotypes.sites, genotypes.dosages, strict=True):
        if len(site.alts) != 1:
            raise InvalidInput(f"{genotypes.name}: vcf_lines writes biallelic sites only")
        row = dosages[0]
        if with_dosage:
            cells = ["./.:." if np.isnan(d) else f"{calls[round(d)]}:{d:.4f}" for d in row]
        else:
            cells = ["./." if np.isnan(d) else calls[round(d)] for d in row]
        fixed = [site.chrom, str(site.pos), ".", site.ref, site.alts[0], ".", "PASS", ".", "GT:DS" if with_dosage else "GT"]
        yield "\t".join(fixed + cells) + "\n"
