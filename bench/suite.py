"""`make bench`: every service against its peer and its floor, in one run, as ratios.

    .venv/bin/python -m bench.suite                  # about 10 minutes on 2 cores; writes bench/reports/<UTC date>/
    .venv/bin/python -m bench.suite --quick          # a smoke run of about a minute; numbers mean little
    .venv/bin/python -m bench.suite --only tumor,deterioration

Parts, run one after the other so that they do not load the machine for each other:

- tumor: the tumour service against MLServer (same booster) and the floor, concurrency 1 to 64,
  full explanation and prediction only, batch of 100, stream (bench.run, bench.load);
- deterioration: polling and recording on PostgreSQL against the floor and plain psycopg
  (bench.deterioration);
- genomics: `clinpred genomics score` against `plink2 --score` (bench.genomics_scoring);
- encrypted: sealed calls and encrypted tumour and genomics calls, server time and bytes per call
  (bench.sealed, bench.encrypted_tumor, bench.encrypted_genomics).

One results.json holds every raw sample; report.md, the PNG plots and the README's table are made
from it by bench.report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/suite.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
from tqdm import tqdm

from bench import deterioration, genomics_scoring, run, suite_report

REPO = Path(__file__).resolve().parent.parent
PARTS = ("tumor", "deterioration", "genomics", "encrypted")
# Budgets of the default run (seconds of measuring, servers' start-up aside): about 10 minutes in all.
TUMOR_SECONDS = 180.0
DETERIORATION_SECONDS = 60.0
ENCRYPTED = (
    ("sealed", ["bench.sealed", "--calls", "300"], ["bench.sealed", "--calls", "20"]),
    ("encrypted_tumor", ["bench.encrypted_tumor", "--calls", "20"], ["bench.encrypted_tumor", "--calls", "3"]),
    ("encrypted_genomics", ["bench.encrypted_genomics", "--calls", "8"], ["bench.encrypted_genomics", "--calls", "3"]),
)


def parts_of(text: str) -> tuple[str, ...]:
    chosen = tuple(p.strip().replace("tumour", "tumor") for p in text.split(",") if p.strip())
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(PARTS)} (comma-separated); unknown: {', '.join(unknown)}")
    return tuple(p for p in PARTS if p in chosen)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.suite", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run of every part (about a minute); numbers mean little")
    p.add_argument("--only", type=parts_of, default=PARTS, help=f"parts to run, comma-separated, among {','.join(PARTS)}")
    p.add_argument("--out", type=Path, default=None, help="report folder (default bench/reports/<UTC date>[-HHMMSS])")
    p.add_argument(
        "--postgres-url", default=deterioration.DEFAULT_POSTGRES_URL, help="PostgreSQL server for the deterioration part"
    )
    p.add_argument("--genomics-repeats", type=int, default=1, help="runs of each genomics tool per case (median reported)")
    p.add_argument("--tumor-seconds", type=float, default=TUMOR_SECONDS, help="time budget of the tumour rounds")
    p.add_argument(
        "--deterioration-seconds", type=float, default=DETERIORATION_SECONDS, help="time budget of the deterioration rounds"
    )
    return p.parse_args(argv)


def tumor_part(args: argparse.Namespace) -> dict[str, Any]:
    tumor_args = ["--max-seconds", str(args.tumor_seconds)]
    if args.quick:
        tumor_args.append("--quick")
    return run.measure(run.parse_args(tumor_args))


def deterioration_part(args: argparse.Namespace) -> dict[str, Any]:
    plan = deterioration.QUICK if args.quick else deterioration.Plan(max_seconds=args.deterioration_seconds)
    return deterioration.measure(plan, args.postgres_url)


def genomics_part(args: argparse.Namespace) -> dict[str, Any]:
    cases = genomics_scoring.QUICK_CASES if args.quick else genomics_scoring.CASES
    repeats = max(1, args.genomics_repeats)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with (
        tempfile.TemporaryDirectory(prefix="clinpred-genomics-bench-") as scratch,
        tqdm(total=len(cases) * repeats * 2 + repeats, desc="genomics scoring", unit="run", dynamic_ncols=True) as bar,
    ):
        startup = []
        for _ in range(repeats):
            startup.append(
                genomics_scoring.run_measured([*genomics_scoring.ours_command(Path("-"), Path("-"))[:5], "--help"], env=env)
            )
            bar.update()
        results = [genomics_scoring.run_case(case, Path(scratch), repeats, 1, bar) for case in cases]
    machine = genomics_scoring.machine_description()
    return genomics_scoring.results_json(results, startup, machine, 1) | {
        "repeats": repeats,
        "markdown": genomics_scoring.markdown(results, startup, machine, 1, repeats),
        "peak_memory": "maximum resident set of the tool's own process (os.wait4 ru_maxrss, via a bare launcher)",
    }


def encrypted_part(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out: dict[str, Any] = {}
    for name, full, quick in tqdm(ENCRYPTED, desc="encrypted and sealed calls", unit="part", dynamic_ncols=True):
        command = [sys.executable, "-m", *(quick if args.quick else full)]
        if name == "encrypted_tumor":
            command += ["--out", str(folder)]
        started = time.monotonic()
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[2:])} failed:\n{done.stderr[-3000:]}")
        out[name] = {"command": " ".join(["python", *command[1:]]), "seconds": time.monotonic() - started, "output": done.stdout}
    return out


def meta(args: argparse.Namespace, now: dt.datetime, load_before: tuple[float, float, float], git: str) -> dict[str, Any]:
    return {
        "started_utc": now.isoformat(timespec="seconds"),
        "git": git,
        "quick": bool(args.quick),
        "parts": list(args.only),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": run.cpu_model(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average_before": list(load_before),
            "load_average_after": list(psutil.getloadavg()),
            "platform": platform.platform(),
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    now = dt.datetime.now(dt.UTC)
    folder = run.out_dir(args, now)
    folder.mkdir(parents=True, exist_ok=True)
    load_before = psutil.getloadavg()
    git = run.git_revision()  # the code that runs, before anyone can commit during the run
    started = time.monotonic()
    results: dict[str, Any] = {"kind": "clinpred-bench-suite/1"}
    seconds: dict[str, float] = {}
    failed: dict[str, str] = {}
    for part in args.only:
        t0 = time.monotonic()
        print(f"== {part}", flush=True)
        try:
            if part == "tumor":
                results["tumor"] = tumor_part(args)
            elif part == "deterioration":
                results["deterioration"] = deterioration_part(args)
            elif part == "genomics":
                results["genomics"] = genomics_part(args)
            else:
                results["encrypted"] = encrypted_part(args, folder)
        except Exception as error:  # one part failing must not lose the others' results
            failed[part] = f"{type(error).__name__}: {error}"[-2000:]
            print(f"{part} failed: {failed[part]}", file=sys.stderr, flush=True)
        seconds[part] = round(time.monotonic() - t0, 1)
    if failed:
        results["failed"] = failed
    results["meta"] = meta(args, now, load_before, git) | {
        "seconds": seconds,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    (folder / "results.json").write_text(json.dumps(results, separators=(",", ":")) + "\n")
    path = suite_report.write(results, folder)
    print(suite_report.summary_table(results))
    print(f"report: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
