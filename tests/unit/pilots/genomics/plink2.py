"""plink2, the reference our score sums must equal, run the way pgsc_calc runs it.

Install (Debian): `apt-get update && apt-get install -y plink2 liblapack3`.

pgsc_calc matches variants itself, writes a scoring file of the matched
variants keyed by `chrom:pos:ref:alt` IDs, and then runs plink2. The same
here (`write_plink2_inputs` + `plink2_score_command`):

    plink2 --vcf FILE dosage=DS --vcf-half-call missing
           --set-all-var-ids @:#:$r:$a --new-id-max-allele-len 1000 missing
           [--read-freq FREQ.afreq]
           --score SCORE.tsv 1 2 3 header-read cols=+scoresums list-variants
           --threads 1 --out PREFIX

- `dosage=DS`: score DS dosages when a record has them, GT otherwise
  (plink2 stores dosages in 1/16384 units; `vcf` rounds the same way).
- `--vcf-half-call missing`: `0/.` is missing (plink2's default is to stop).
- `--set-all-var-ids`: the IDs the matched scoring file refers to;
  `--new-id-max-allele-len 1000 missing` because indels of PGS files exceed
  plink2's default 23-character allele limit.
- `--read-freq`: mean imputation of missing genotypes uses these
  frequencies (the scoring file's `allelefrequency_effect`, or the cohort's
  own where the file has none). Without it plink2 computes them from the
  samples, and refuses to with fewer than 50 samples.
- `cols=+scoresums`: the `SCORE_SUM` column; plink2 2.00a3.5 writes it with
  6 significant digits, so a sum near 1.5 is printed to +-5e-6.
  `plink2_score_command(per_variant=True)` writes one score column per
  variant instead (`--score FILE 1 2 header-read --score-col-nums 3-N`):
  each column is one weight x dosage product, exact for hard calls and
  within 5e-8 otherwise, which checks every per-variant contribution and
  the sum to better than 1e-6.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

from clinpred.pilots.common.errors import FailedPrecondition
from clinpred.pilots.genomics.matching import MatchResult
from clinpred.pilots.genomics.scoring import EffectDosages

PLINK2_INSTALL = "apt-get update && apt-get install -y plink2 liblapack3"


def plink2_executable() -> str:
    found = shutil.which("plink2")
    if found is None:
        raise FailedPrecondition(f"plink2 is not on PATH; install it with: {PLINK2_INSTALL}")
    return found


def plink2_variant_id(match: MatchResult, site_index: int) -> str:
    site = match.genotypes.sites[site_index]
    return f"{site.chrom}:{site.pos}:{site.ref}:{','.join(site.alts)}"


def write_plink2_inputs(
    effect: EffectDosages, directory: Path, *, per_variant: bool = False
) -> tuple[Path, Path | None]:
    """The matched scoring file (ID, VCF-spelled effect allele, weight[s]) and, if needed, an .afreq file."""
    match = effect.match
    directory.mkdir(parents=True, exist_ok=True)
    score_path = directory / "matched_score.tsv"
    freq_rows: list[list[str]] = []
    with score_path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        names = [f"V{i}" for i in range(len(match.matches))] if per_variant else [match.scoring_file.pgs_id]
        writer.writerow(["ID", "effect_allele", *names])
        for row, variant in enumerate(match.matches):
            site = match.genotypes.sites[variant.site_index]
            allele = site.alts[variant.alt_index] if variant.effect_is_alt else site.ref
            variant_id = plink2_variant_id(match, variant.site_index)
            weight = repr(float(effect.weights[row]))
            if per_variant:
                weights = ["0"] * len(match.matches)
                weights[row] = weight
            else:
                weights = [weight]
            writer.writerow([variant_id, allele, *weights])
            frequency = float(effect.effect_frequency[row])
            # plink2's .afreq of a multiallelic site lists one frequency per ALT, which the score file cannot fill.
            if frequency == frequency and len(site.alts) == 1:
                alt_frequency = frequency if variant.effect_is_alt else 1.0 - frequency
                freq_rows.append([site.chrom, variant_id, site.ref, ",".join(site.alts), repr(alt_frequency)])
    if not freq_rows:
        return score_path, None
    freq_path = directory / "matched_score.afreq"
    with freq_path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["#CHROM", "ID", "REF", "ALT", "ALT_FREQS"])
        writer.writerows(freq_rows)
    return score_path, freq_path


def plink2_score_command(
    vcf_path: Path,
    score_path: Path,
    out_prefix: Path,
    *,
    freq_path: Path | None = None,
    variant_count: int | None = None,
    no_mean_imputation: bool = False,
) -> list[str]:
    """The command line; `variant_count` (per-variant score file) adds `--score-col-nums 3-N`."""
    columns = ["1", "2"] if variant_count is not None else ["1", "2", "3"]
    score = ["--score", str(score_path), *columns, "header-read", "cols=+scoresums", "list-variants"]
    if no_mean_imputation:
        score.insert(-2, "no-mean-imputation")
    command = [
        plink2_executable(),
        "--vcf", str(vcf_path), "dosage=DS",
        "--vcf-half-call", "missing",
        "--set-all-var-ids", "@:#:$r:$a",
        "--new-id-max-allele-len", "1000", "missing",
    ]
    if freq_path is not None:
        command += ["--read-freq", str(freq_path)]
    command += score
    if variant_count is not None:
        command += ["--score-col-nums", f"3-{variant_count + 2}"]
    command += ["--threads", "1", "--memory", "1000", "--out", str(out_prefix)]
    return command


def read_plink2_sscore(path: Path) -> dict[str, dict[str, float]]:
    """sample -> column -> value, from a .sscore file."""
    with path.open() as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader)
        iid = header.index("#IID") if "#IID" in header else header.index("IID")
        return {
            row[iid]: {name: float(value) for name, value in zip(header, row, strict=True) if name not in ("#FID", "#IID", "IID")}
            for row in reader
        }


def run_plink2_score(
    effect: EffectDosages, vcf_path: Path, work_dir: Path, *, per_variant: bool = False, read_freq: bool = True
) -> dict[str, dict[str, float]]:
    """Run plink2 on the same VCF and matched variants; its .sscore columns per sample.

    `read_freq=False` lets plink2 estimate imputation frequencies from the samples itself.
    """
    score_path, freq_path = write_plink2_inputs(effect, work_dir, per_variant=per_variant)
    if not read_freq:
        freq_path = None
    out_prefix = work_dir / ("per_variant" if per_variant else "score")
    command = plink2_score_command(
        vcf_path, score_path, out_prefix, freq_path=freq_path,
        variant_count=len(effect.match.matches) if per_variant else None,
    )
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        log = out_prefix.with_suffix(".log")
        detail = log.read_text()[-2000:] if log.exists() else completed.stderr[-2000:]
        raise FailedPrecondition(f"plink2 failed (exit {completed.returncode}): {detail}")
    return read_plink2_sscore(out_prefix.with_suffix(".sscore"))
