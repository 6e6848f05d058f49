"""plink2 filesets (PREFIX.pgen, .pvar, .psam) as `Genotypes`: what biobank-scale cohorts come in.

Genotypes are read with pgenlib, plink2's own reader (the `.pgen` format is plink2's compressed
binary, which only its library decodes); the `.pvar` (variants, with the `##contig` header plink2
copies from the VCF it imported) and the `.psam` (samples) are text and go through the same
bounded line reader as VCFs. The answers equal those of the VCF the fileset was made from:

- the genome build is witnessed by the `.pvar` header exactly as by a VCF's (`vcf.detect_build`);
- dosages are plink2's stored ones (hard calls, or DS imported with `dosage=DS`, already in
  1/16384 units), and a missing call is NaN, as the VCF reader gives;
- haploid calls were stored as homozygous by plink2, as the VCF reader counts them.

Only the score's sites are decoded: pgenlib reads one variant at a time, by index.
Samples are named by the `.psam`'s IID column (plink2 puts the VCF's sample names there).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clinpred.pilots.common.errors import FailedPrecondition, InvalidInput
from clinpred.pilots.genomics.scoring_file import normalise_build, normalise_chrom
from clinpred.pilots.genomics.text_stream import InputOrigin, read_lines
from clinpred.pilots.genomics.vcf import CHROMOSOME_LENGTHS, Genotypes, VcfSite, contig_entry, detect_build

# A .pvar line holds a handful of short columns (and an INFO column plink2 may carry over from the
# VCF); a .psam line a few identifiers. Longer lines mean the file is not what it says.
MAX_PVAR_LINE_BYTES = 1 << 20
MAX_PSAM_LINE_BYTES = 64 << 10
_PGENLIB_MISSING = -9.0


def _files(prefix: str | os.PathLike[str], origin: InputOrigin) -> tuple[Path, Path, Path]:
    base = str(prefix)
    for suffix in (".pgen", ".pvar", ".psam"):
        base = base.removesuffix(suffix)
    paths = (Path(base + ".pgen"), Path(base + ".pvar"), Path(base + ".psam"))
    absent = [p.name for p in paths if not p.is_file()]
    if absent:
        raise origin.error(InvalidInput, f"{origin.label}: missing {', '.join(absent)} (a plink2 fileset has all three)")
    return paths


def read_psam(path: Path, origin: InputOrigin) -> tuple[str, ...]:
    """Sample IDs (IID) of a .psam, or of a .fam-like file without a header (FID IID ...)."""
    samples: list[str] = []
    iid_at: int | None = None
    for line in read_lines(path, origin=origin, max_line_bytes=MAX_PSAM_LINE_BYTES):
        fields = line.text.split()
        if not fields:
            continue
        if iid_at is None:
            if fields[0] in ("#IID", "#FID"):
                if "IID" not in fields and fields[0] != "#IID":
                    raise origin.error(InvalidInput, f"{path.name} line {line.number}: no IID column")
                iid_at = 0 if fields[0] == "#IID" else fields.index("IID")
                continue
            iid_at = 1  # no header: .fam column order
        if fields[0].startswith("#"):
            continue
        if len(fields) <= iid_at:
            raise origin.error(InvalidInput, f"{path.name} line {line.number}: fewer columns than the header")
        samples.append(fields[iid_at])
    if not samples:
        raise origin.error(InvalidInput, f"{path.name}: no samples")
    if len(set(samples)) != len(samples):
        raise origin.error(InvalidInput, f"{path.name}: sample IDs (IID) are not unique")
    return tuple(samples)


def read_pgen(
    prefix: str | os.PathLike[str],
    *,
    declared_build: str | None = None,
    sites: Collection[tuple[str, int]] | None = None,
    name: str | None = None,
    field: str | None = None,
) -> Genotypes:
    """The genotypes of PREFIX.pgen/.pvar/.psam; `sites` (normalised chrom, pos) keeps only those positions.

    `declared_build` is checked against the .pvar header like a VCF's; `field` names the input in refusals.
    """
    import pgenlib

    label = name or Path(str(prefix)).name[:100]
    origin = InputOrigin(label, field)
    pgen_path, pvar_path, psam_path = _files(prefix, origin)
    samples = read_psam(psam_path, origin)
    wanted_build = normalise_build(declared_build)
    site_filter = set(sites) if sites is not None else None

    contigs: dict[str, int] = {}
    reference: str | None = None
    columns: dict[str, int] | None = None
    header: list[str] = []
    build: str | None = None
    evidence = "none"
    lengths: dict[str, int] = {}
    kept: list[tuple[int, VcfSite]] = []
    allele_offsets = [0]
    for line in read_lines(pvar_path, origin=origin, max_line_bytes=MAX_PVAR_LINE_BYTES):
        text, number = line.text, line.number
        where = f"{pvar_path.name} line {number}"
        if columns is None:
            if text.startswith("##"):
                entry = contig_entry(text)
                if entry is not None:
                    contigs[entry[0]] = entry[1]
                elif text.startswith("##reference="):
                    reference = text[len("##reference="):]
                continue
            if not text.startswith("#CHROM"):
                raise origin.error(InvalidInput, f"{where}: expected the #CHROM header line (a .pvar with a header)")
            header = text[1:].split("\t")
            columns = {key: header.index(key) for key in ("CHROM", "POS", "REF", "ALT") if key in header}
            if len(columns) != 4:
                raise origin.error(InvalidInput, f"{where}: the header needs CHROM, POS, REF and ALT columns")
            build, evidence = detect_build(contigs, reference, origin=origin)
            if wanted_build is not None and build is not None and build != wanted_build:
                message = f"{label}: the fileset is in {build} (by its {evidence}) but {wanted_build} was declared"
                raise origin.error(FailedPrecondition, message)
            if build is None and wanted_build is not None:
                build, evidence = wanted_build, "declared"
            lengths = CHROMOSOME_LENGTHS.get(build or "", {})
            continue
        fields = text.split("\t")
        if len(fields) < len(header):
            raise origin.error(InvalidInput, f"{where}: {len(fields)} columns, the header has {len(header)}")
        variant = len(allele_offsets) - 1
        alt_text = fields[columns["ALT"]]
        alts = () if alt_text == "." else tuple(a.upper() for a in alt_text.split(","))
        allele_offsets.append(allele_offsets[-1] + 1 + max(len(alts), 1))
        chrom = normalise_chrom(fields[columns["CHROM"]])
        try:
            pos = int(fields[columns["POS"]])
        except ValueError:
            raise origin.error(InvalidInput, f"{where}, column POS: not an integer") from None
        if chrom in lengths and pos > lengths[chrom]:
            message = f"{where}: position lies beyond chromosome {chrom} of {build}; the fileset is in another build"
            raise origin.error(FailedPrecondition, message)
        if site_filter is not None and (chrom, pos) not in site_filter:
            continue
        kept.append((variant, VcfSite(chrom, pos, fields[columns["REF"]].upper(), alts, number)))
    if columns is None:
        raise origin.error(InvalidInput, f"{pvar_path.name}: no #CHROM header line")

    dosages: list[npt.NDArray[np.float64]] = []
    try:
        reader = pgenlib.PgenReader(
            os.fsencode(pgen_path), raw_sample_ct=len(samples),
            allele_idx_offsets=np.array(allele_offsets, dtype=np.uintp),
        )
    except RuntimeError as error:
        raise origin.error(InvalidInput, f"{pgen_path.name}: not a .pgen of this .pvar and .psam ({_reason(error)})") from None
    with reader:
        if reader.get_variant_ct() != len(allele_offsets) - 1:
            raise origin.error(InvalidInput, f"{pgen_path.name}: holds {reader.get_variant_ct()} variants, the .pvar"
                                             f" {len(allele_offsets) - 1}")
        row = np.empty(len(samples), dtype=np.float64)
        for variant, site in kept:
            values = np.empty((len(site.alts), len(samples)))
            for alt in range(len(site.alts)):
                try:
                    reader.read_dosages(variant, row, allele_idx=alt + 1)
                except RuntimeError as error:
                    raise origin.error(InvalidInput, f"{pgen_path.name}: unreadable variant ({_reason(error)})") from None
                values[alt] = np.where(row == _PGENLIB_MISSING, np.nan, row)
            dosages.append(values)
    return Genotypes(samples, tuple(site for _, site in kept), tuple(dosages), build, evidence, label)


def _reason(error: RuntimeError) -> str:
    detail = error.args[0] if error.args else ""
    text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
    return text.strip()[:200] or type(error).__name__
