"""Batch polygenic scoring: `clinpred genomics score` against `plink2 --score`, same files, same machine.

    .venv/bin/python -m bench.genomics_scoring            # writes bench/reports/<UTC date>/genomics/
    .venv/bin/python -m bench.genomics_scoring --quick    # small cohorts, a smoke run

Cases (simulated VCFs, GT hard calls with 1% missing, GRCh37 contig header):
- 5,000 and 50,000 samples at the 313 variants of PGS000004 (the real scoring file);
- 1,000 samples at a simulated 100,000-variant score.

Both tools run as a user runs them, each as a child process, on the same VCF: ours is
`clinpred genomics score --vcf FILE --pgs SCORE --build GRCh37` (table to a file), plink2 is
run the way pgsc_calc runs it (a matched scoring file keyed by chrom:pos:ref:alt, `--read-freq`
with the scoring file's frequencies, so both mean-impute missing calls alike). Time is wall
clock of the child, peak memory its maximum resident set (`os.wait4`). Every run's score sums
are compared between the two (plink2 prints 6 significant digits), so a fast wrong answer fails.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn

if __package__ in (None, ""):  # `python bench/genomics_scoring.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
REPORTS = Path(__file__).resolve().parent / "reports"
PGS000004 = REPO.parent / "shared" / "data" / "pgs" / "PGS000004_hm.txt"
MISSING_SHARE = 0.01
_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}
# Cells of the simulated VCF: 0/0, 0/1, 1/1 and missing, each with the tab that follows it.
_CELLS = np.array([b"0/0\t", b"0/1\t", b"1/1\t", b"./.\t"], dtype="S4")


@dataclass(frozen=True)
class ScoreVariant:
    chrom: str
    pos: int
    effect: str
    other: str
    weight: float
    frequency: float  # of the effect allele


@dataclass(frozen=True)
class Case:
    name: str
    samples: int
    variants: str  # "PGS000004" or "simulated:N"


@dataclass(frozen=True)
class Measurement:
    tool: str
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float


@dataclass(frozen=True)
class CaseResult:
    case: Case
    vcf_bytes: int
    score_variants: int
    ours: list[Measurement]
    plink2: list[Measurement]
    max_abs_difference: float  # of the score sums, ours vs plink2 (plink2 prints 6 significant digits)

    @property
    def time_ratio(self) -> float:
        return median_seconds(self.ours) / median_seconds(self.plink2)

    @property
    def memory_ratio(self) -> float:
        return max_rss(self.ours) / max_rss(self.plink2)


def median_seconds(runs: Sequence[Measurement]) -> float:
    return statistics.median(m.seconds for m in runs)


def median_cpu(runs: Sequence[Measurement]) -> float:
    return statistics.median(m.cpu_seconds for m in runs)


def max_rss(runs: Sequence[Measurement]) -> float:
    return max(m.peak_rss_mib for m in runs)


def pgs000004_variants(path: Path = PGS000004) -> list[ScoreVariant]:
    """The GRCh37 variants of the real scoring file, strand-ambiguous ones included (both tools drop them)."""
    variants: list[ScoreVariant] = []
    with path.open() as handle:
        rows = csv.DictReader((line for line in handle if not line.startswith("#")), delimiter="\t")
        for row in rows:
            variants.append(ScoreVariant(row["chr_name"], int(row["chr_position"]), row["effect_allele"],
                                         row["other_allele"], float(row["effect_weight"]),
                                         float(row["allelefrequency_effect"])))
    return variants


def simulated_variants(count: int, seed: int = 11) -> list[ScoreVariant]:
    """A genome-wide-like score: SNVs at distinct positions of chromosomes 1-22, small weights."""
    rng = np.random.default_rng(seed)
    lengths = _grch37_autosome_lengths()
    share = np.array(lengths, dtype=np.float64) / sum(lengths)
    per_chrom = rng.multinomial(count, share)
    pairs = [("A", "C"), ("A", "G"), ("C", "A"), ("C", "T"), ("G", "A"), ("G", "T"), ("T", "C"), ("T", "G")]
    variants: list[ScoreVariant] = []
    for chrom, (length, n) in enumerate(zip(lengths, per_chrom, strict=True), start=1):
        positions = np.sort(rng.choice(length - 20_000, size=int(n), replace=False)) + 10_000
        for pos in positions:
            effect, other = pairs[int(rng.integers(len(pairs)))]
            variants.append(ScoreVariant(str(chrom), int(pos), effect, other, float(np.round(rng.normal(0, 0.01), 6)),
                                         float(np.round(rng.uniform(0.05, 0.95), 4))))
    return variants


def _grch37_autosome_lengths() -> list[int]:
    from clinpred.pilots.genomics.vcf import GRCH37_LENGTHS

    return [GRCH37_LENGTHS[str(c)] for c in range(1, 23)]


def write_scoring_file(variants: Sequence[ScoreVariant], path: Path, pgs_id: str) -> None:
    """A PGS Catalog format 2.0 scoring file (GRCh37 positions, with effect allele frequencies)."""
    with path.open("w") as handle:
        handle.write(f"###PGS CATALOG SCORING FILE\n#format_version=2.0\n#pgs_id={pgs_id}\n#pgs_name={pgs_id}\n"
                     f"#trait_reported=simulated\n#genome_build=GRCh37\n#variants_number={len(variants)}\n"
                     "#weight_type=beta\n")
        handle.write("chr_name\tchr_position\teffect_allele\tother_allele\teffect_weight\tallelefrequency_effect\n")
        for v in variants:
            handle.write(f"{v.chrom}\t{v.pos}\t{v.effect}\t{v.other}\t{v.weight!r}\t{v.frequency!r}\n")


def _sort_key(v: ScoreVariant) -> tuple[int, int]:
    return (int(v.chrom) if v.chrom.isdigit() else 100, v.pos)


def write_vcf(variants: Sequence[ScoreVariant], samples: int, path: Path, seed: int = 5) -> None:
    """Genotypes drawn from each variant's frequency (REF = other allele, ALT = effect allele), 1% missing."""
    from clinpred.pilots.genomics.vcf import GRCH37_LENGTHS

    rng = np.random.default_rng(seed)
    with path.open("wb") as handle:
        handle.write(b"##fileformat=VCFv4.2\n")
        for chrom, length in GRCH37_LENGTHS.items():
            handle.write(f"##contig=<ID={chrom},length={length}>\n".encode())
        handle.write(b'##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        names = "\t".join(f"S{k:06d}" for k in range(samples))
        handle.write(f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{names}\n".encode())
        for v in sorted({(x.chrom, x.pos): x for x in variants}.values(), key=_sort_key):
            codes = rng.binomial(2, v.frequency, samples)
            codes[rng.random(samples) < MISSING_SHARE] = 3
            cells = _CELLS[codes].tobytes()
            handle.write(f"{v.chrom}\t{v.pos}\t.\t{v.other}\t{v.effect}\t.\tPASS\t.\tGT\t".encode())
            handle.write(cells[:-1] + b"\n")


def write_plink2_inputs(variants: Sequence[ScoreVariant], directory: Path) -> tuple[Path, Path]:
    """What pgsc_calc hands plink2: the matched variants by chrom:pos:ref:alt, and their frequencies.

    Matched = not strand-ambiguous (A/T, C/G), as both pgsc_calc and our matcher exclude them by default;
    the simulated VCF carries every variant with REF = other allele and ALT = effect allele.
    """
    score_path, freq_path = directory / "plink2_score.tsv", directory / "plink2.afreq"
    with score_path.open("w") as score, freq_path.open("w") as freq:
        score.write("ID\teffect_allele\tSCORE\n")
        freq.write("#CHROM\tID\tREF\tALT\tALT_FREQS\n")
        for v in variants:
            if len(v.effect) == 1 and len(v.other) == 1 and _COMPLEMENT.get(v.effect) == v.other:
                continue
            variant_id = f"{v.chrom}:{v.pos}:{v.other}:{v.effect}"
            score.write(f"{variant_id}\t{v.effect}\t{v.weight!r}\n")
            freq.write(f"{v.chrom}\t{variant_id}\t{v.other}\t{v.effect}\t{v.frequency!r}\n")
    return score_path, freq_path


# Runs the command as its own grandchild and prints the grandchild's rusage. Why: Linux keeps a
# process's peak resident set across exec, so a child spawned straight from this (numpy-laden)
# process would report at least this process's peak; the launcher is a bare interpreter (-S -I),
# a few MiB, and its fork starts from that.
_LAUNCHER = """
import os, sys
report = int(sys.argv[1])
pid = os.fork()
if pid == 0:
    os.close(report)
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
os.write(report, ("%d %r %r %d" % (os.waitstatus_to_exitcode(status), usage.ru_utime, usage.ru_stime,
                                usage.ru_maxrss)).encode())
"""


def run_measured(command: Sequence[str], stdout: Path | None = None, env: dict[str, str] | None = None) -> Measurement:
    """Run a child to completion; its wall time, CPU time and peak resident set (`wait4` of the tool itself)."""
    read_end, write_end = os.pipe()
    with open(stdout or os.devnull, "wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-S", "-I", "-c", _LAUNCHER, str(write_end), *command], stdout=out,
                                 stderr=subprocess.PIPE, env=env, pass_fds=(write_end,))
        os.close(write_end)
        _, errors = child.communicate()
        seconds = time.perf_counter() - started
    with os.fdopen(read_end, "rb") as report:
        fields = report.read().decode().split()
    if child.returncode != 0 or len(fields) != 4 or fields[0] != "0":
        raise RuntimeError(f"{command[0]} failed: {errors.decode(errors='replace')[-2000:]}")
    # ru_maxrss is in KiB on Linux.
    return Measurement(Path(command[0]).name, seconds, float(fields[1]) + float(fields[2]), int(fields[3]) / 1024)


def ours_command(vcf: Path, scoring: Path) -> list[str]:
    return [sys.executable, "-m", "clinpred.cli.main", "genomics", "score", "--vcf", str(vcf), "--pgs", str(scoring),
            "--build", "GRCh37"]


def plink2_command(vcf: Path, score: Path, freq: Path, out: Path, threads: int) -> list[str]:
    return ["plink2", "--vcf", str(vcf), "--vcf-half-call", "missing", "--set-all-var-ids", "@:#:$r:$a",
            "--new-id-max-allele-len", "1000", "missing", "--read-freq", str(freq),
            "--score", str(score), "1", "2", "3", "header-read", "cols=+scoresums",
            "--threads", str(threads), "--out", str(out)]


def read_our_sums(path: Path) -> dict[str, float]:
    with path.open() as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return {row["sample"]: float(row["score_sum"]) for row in rows}


def read_plink2_sums(path: Path) -> dict[str, float]:
    with path.open() as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return {row["#IID"] if "#IID" in row else row["IID"]: float(row["SCORE_SUM"]) for row in rows}


def largest_difference(ours: dict[str, float], theirs: dict[str, float]) -> float:
    if ours.keys() != theirs.keys():
        raise RuntimeError("the two tools scored different samples")
    a = np.array([ours[k] for k in theirs])
    b = np.array(list(theirs.values()))
    return float(np.max(np.abs(a - b))) if len(a) else 0.0


def run_case(case: Case, work: Path, repeats: int, threads: int, progress: tqdm[NoReturn]) -> CaseResult:
    variants = pgs000004_variants() if case.variants == "PGS000004" else simulated_variants(
        int(case.variants.split(":")[1]))
    folder = work / case.name
    folder.mkdir(parents=True, exist_ok=True)
    vcf = folder / "cohort.vcf"
    if case.variants == "PGS000004":
        scoring = PGS000004  # the real file, harmonized columns and all
    else:
        scoring = folder / "score.txt"
        write_scoring_file(variants, scoring, case.variants.replace(":", "_"))
    write_vcf(variants, case.samples, vcf)
    plink_score, plink_freq = write_plink2_inputs(variants, folder)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ours_runs: list[Measurement] = []
    plink_runs: list[Measurement] = []
    difference = 0.0
    for _ in range(repeats):
        progress.set_postfix_str(f"{case.name}: clinpred")
        ours_runs.append(run_measured(ours_command(vcf, scoring), folder / "ours.tsv", env))
        progress.update()
        progress.set_postfix_str(f"{case.name}: plink2")
        plink_runs.append(run_measured(plink2_command(vcf, plink_score, plink_freq, folder / "plink2", threads)))
        progress.update()
        difference = max(difference, largest_difference(read_our_sums(folder / "ours.tsv"),
                                                        read_plink2_sums(folder / "plink2.sscore")))
    if difference > 5e-5:
        raise RuntimeError(f"{case.name}: score sums differ from plink2's by up to {difference:g}")
    return CaseResult(case, vcf.stat().st_size, len(variants), ours_runs, plink_runs, difference)


def markdown(results: Sequence[CaseResult], startup: Sequence[Measurement], machine: str, threads: int,
             repeats: int) -> str:
    lines = [
        "# Genomics batch scoring: clinpred genomics score vs plink2 --score",
        "",
        f"Machine: {machine}. plink2 with `--threads {threads}`; median of {repeats} run(s) each, peak = largest"
        " maximum resident set of the child process.",
        "",
        f"Floor of ours: `clinpred genomics score --help` (interpreter and imports, no work) takes"
        f" {median_seconds(startup):.2f} s (CPU {statistics.median(m.cpu_seconds for m in startup):.2f} s),"
        f" {max_rss(startup):.0f} MiB.",
        "",
        "| case | samples | score variants | VCF MiB | ours s (CPU) | plink2 s (CPU) | time ours/plink2 | ours MiB"
        " | plink2 MiB | memory ours/plink2 | max abs diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.case.name} | {r.case.samples:,} | {r.score_variants:,} | {r.vcf_bytes / 2**20:.1f}"
            f" | {median_seconds(r.ours):.2f} ({median_cpu(r.ours):.2f}) | {median_seconds(r.plink2):.2f}"
            f" ({median_cpu(r.plink2):.2f}) | {r.time_ratio:.2f}x"
            f" | {max_rss(r.ours):.0f} | {max_rss(r.plink2):.0f} | {r.memory_ratio:.2f}x | {r.max_abs_difference:.1e} |"
        )
    return "\n".join(lines) + "\n"


def results_json(
    results: Sequence[CaseResult], startup: Sequence[Measurement], machine: str, threads: int
) -> dict[str, object]:
    return {
        "machine": machine,
        "plink2_threads": threads,
        "ours_startup": [asdict(m) for m in startup],
        "cases": [
            {**asdict(r.case), "vcf_bytes": r.vcf_bytes, "score_variants": r.score_variants,
             "ours": [asdict(m) for m in r.ours], "plink2": [asdict(m) for m in r.plink2],
             "time_ratio": r.time_ratio, "memory_ratio": r.memory_ratio, "max_abs_difference": r.max_abs_difference}
            for r in results
        ],
    }


def machine_description() -> str:
    return f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


CASES = (Case("pgs000004-5k", 5_000, "PGS000004"), Case("pgs000004-50k", 50_000, "PGS000004"),
         Case("simulated100k-1k", 1_000, "simulated:100000"))
QUICK_CASES = (Case("pgs000004-500", 500, "PGS000004"), Case("simulated2k-200", 200, "simulated:2000"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.genomics_scoring", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small cohorts: a smoke run (numbers mean little)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each tool per case (median reported)")
    parser.add_argument("--plink2-threads", type=int, default=1, help="plink2 --threads (ours is single-threaded)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default bench/reports/<UTC date>/genomics)")
    parser.add_argument("--work", type=Path, default=None, help="where the simulated files go (default: a temporary folder)")
    args = parser.parse_args(argv)
    cases = QUICK_CASES if args.quick else CASES
    out = args.out or REPORTS / dt.datetime.now(dt.UTC).strftime("%Y-%m-%d") / "genomics"
    machine = machine_description()
    with tempfile.TemporaryDirectory(prefix="clinpred-genomics-bench-") as scratch:
        work = args.work or Path(scratch)
        with tqdm(total=len(cases) * args.repeats * 2 + args.repeats, desc="genomics scoring", unit="run") as progress:
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            startup = []
            for _ in range(args.repeats):
                startup.append(run_measured([*ours_command(Path("-"), Path("-"))[:5], "--help"], env=env))
                progress.update()
            results = [run_case(case, work, args.repeats, args.plink2_threads, progress) for case in cases]
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(results, startup, machine, args.plink2_threads, args.repeats)
    (out / "report.md").write_text(text)
    (out / "results.json").write_text(json.dumps(results_json(results, startup, machine, args.plink2_threads), indent=2) + "\n")
    print(text)
    print(f"wrote {out / 'report.md'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
