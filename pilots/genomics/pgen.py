"""plink2 filesets (PREFIX.pgen, .pvar, .psam) as `Genotypes`: what biobank-scale cohorts come in.

Genotypes are read with pgenlib, plink2's own reader (the `.pgen` format is plink2's compressed
binary, which only its library decodes); the `.pvar` (variants, with the `##contig` header plink2
copies from the VCF it imported) and the `.psam` (samples) are text and go through the same
bounded line reader as VCFs. The answers equal those of the VCF the fileset was made from:

- the genome build is witnessed by the `.pvar` header exactly as by a VCF's (`genome_build.BuildWitness`);
- dosages are plink2's stored ones (hard calls, or DS imported with `dosage=DS`, already in
  1/16384 units), and a missing call is NaN, as the VCF reader gives;
- haploid calls were stored as homozygous by plink2, as the VCF reader counts them.

Only the score's sites are decoded: pgenlib reads one variant at a time, by index.
Samples are named by the `.psam`'s IID column (plink2 puts the VCF's sample names there).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from pathlib import Path

import numpy as np

from clinpred.pilots.common.errors import InvalidInput
from clinpred.pilots.genomics.genome_build import BuildWitness
from clinpred.pilots.genomics.scoring_file import normalise_chrom
from clinpred.pilots.genomics.text_stream import InputOrigin, read_lines
from clinpred.pilots.genomics.vcf import GenotypeHeader, Genotypes, Record, VcfSite

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
    Every kept site is held in memory; `PgenRecords` hands them over one at a time instead.
    """
    records = PgenRecords(prefix, declared_build=declared_build, sites=sites, name=name, field=field)
    header = records.header
    kept = list(records)
    return Genotypes(header.samples, tuple(site for site, _ in kept), tuple(values for _, values in kept),
                     header.build, header.build_evidence, header.name)


class PgenRecords:
    """A plink2 fileset as a stream: `header` (the .psam and .pvar, read at once), then its kept records.

    The .pvar is read whole first (a few short columns per variant: what pgenlib needs to open the
    .pgen); genotypes are then decoded one kept variant at a time, in file order.
    """

    def __init__(
        self,
        prefix: str | os.PathLike[str],
        *,
        declared_build: str | None = None,
        sites: Collection[tuple[str, int]] | None = None,
        name: str | None = None,
        field: str | None = None,
    ) -> None:
        label = name or Path(str(prefix)).name[:100]
        self.origin = origin = InputOrigin(label, field)
        self.pgen_path, pvar_path, psam_path = _files(prefix, origin)
        samples = read_psam(psam_path, origin)
        site_filter = set(sites) if sites is not None else None
        witness = BuildWitness(declared_build, "fileset", origin)
        columns: dict[str, int] | None = None
        header: list[str] = []
        self.kept: list[tuple[int, VcfSite]] = []
        self.allele_offsets = [0]
        for line in read_lines(pvar_path, origin=origin, max_line_bytes=MAX_PVAR_LINE_BYTES):
            text, number = line.text, line.number
            where = f"{pvar_path.name} line {number}"
            if columns is None:
                if text.startswith("##"):
                    witness.read_meta_line(text)
                    continue
                if not text.startswith("#CHROM"):
                    raise origin.error(InvalidInput, f"{where}: expected the #CHROM header line (a .pvar with a header)")
                header = text[1:].split("\t")
                columns = {key: header.index(key) for key in ("CHROM", "POS", "REF", "ALT") if key in header}
                if len(columns) != 4:
                    raise origin.error(InvalidInput, f"{where}: the header needs CHROM, POS, REF and ALT columns")
                witness.settle()
                continue
            fields = text.split("\t")
            if len(fields) < len(header):
                raise origin.error(InvalidInput, f"{where}: {len(fields)} columns, the header has {len(header)}")
            variant = len(self.allele_offsets) - 1
            alt_text = fields[columns["ALT"]]
            alts = () if alt_text == "." else tuple(a.upper() for a in alt_text.split(","))
            self.allele_offsets.append(self.allele_offsets[-1] + 1 + max(len(alts), 1))
            chrom = normalise_chrom(fields[columns["CHROM"]])
            try:
                pos = int(fields[columns["POS"]])
            except ValueError:
                raise origin.error(InvalidInput, f"{where}, column POS: not an integer") from None
            witness.check_position(chrom, pos, where)
            if site_filter is not None and (chrom, pos) not in site_filter:
                continue
            self.kept.append((variant, VcfSite(chrom, pos, fields[columns["REF"]].upper(), alts, number)))
        if columns is None:
            raise origin.error(InvalidInput, f"{pvar_path.name}: no #CHROM header line")
        self.header = GenotypeHeader(samples, witness.build, witness.evidence, label)

    def __iter__(self) -> Iterator[Record]:
        import pgenlib

        origin, pgen_path, n_samples = self.origin, self.pgen_path, len(self.header.samples)
        variants = len(self.allele_offsets) - 1
        try:
            reader = pgenlib.PgenReader(
                os.fsencode(pgen_path), raw_sample_ct=n_samples,
                allele_idx_offsets=np.array(self.allele_offsets, dtype=np.uintp),
            )
        except RuntimeError as error:
            message = f"{pgen_path.name}: not a .pgen of this .pvar and .psam ({_reason(error)})"
            raise origin.error(InvalidInput, message) from None
        with reader:
            if reader.get_variant_ct() != variants:
                raise origin.error(InvalidInput, f"{pgen_path.name}: holds {reader.get_variant_ct()} variants, the .pvar"
                                                 f" {variants}")
            row = np.empty(n_samples, dtype=np.float64)
            for variant, site in self.kept:
                values = np.empty((len(site.alts), n_samples))
                for alt in range(len(site.alts)):
                    try:
                        reader.read_dosages(variant, row, allele_idx=alt + 1)
                    except RuntimeError as error:
                        raise origin.error(InvalidInput, f"{pgen_path.name}: unreadable variant ({_reason(error)})") from None
                    values[alt] = np.where(row == _PGENLIB_MISSING, np.nan, row)
                yield site, values


def _reason(error: RuntimeError) -> str:
    detail = error.args[0] if error.args else ""
    text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
    return text.strip()[:200] or type(error).__name__
