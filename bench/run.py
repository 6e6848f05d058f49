"""The tumour part of the benchmark: ours (clinpred tumour service) against MLServer and the floor, same run.

    .venv/bin/python -m bench.run                 # the tumour part alone; writes bench/reports/<UTC date>/
    .venv/bin/python -m bench.run --quick         # a smoke run of well under a minute
    .venv/bin/python bench/run.py --help

`make bench` (bench.suite) runs this with every other part. The report holds ratios ours/peer and
ours/floor; see bench/README.md for how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
from tqdm import tqdm

from bench import load, ours, peer, report
from bench.processes import LOOPBACK, ManagedServer, free_ports

REPO = Path(__file__).resolve().parent.parent
REPORTS = Path(__file__).resolve().parent / "reports"
BOOSTER = REPO / "models" / "tumor" / "wdbc-xgboost" / "1.0.0" / "booster.json"
OUR_PACKAGES = ("clinpred", "bentoml", "grpcio", "protobuf", "onnxruntime", "xgboost-cpu", "xgboost", "numpy")
QUICK = load.Plan(
    rounds=2,
    single_calls=20,
    concurrency=(4, 16),
    concurrent_calls=64,
    prediction_only_clients=4,
    batch_calls=2,
    stream_messages=20,
    warmup_calls=20,
    max_seconds=20.0,
)


def concurrency_levels(text: str) -> tuple[int, ...]:
    levels = tuple(int(x) for x in text.split(",") if x.strip())
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of client counts, each at least 1")
    return levels


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    d = load.Plan()
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny plan for a smoke run (numbers mean little)")
    p.add_argument("--rounds", type=int, default=d.rounds, help="rounds; each runs every scenario on both sides")
    p.add_argument("--single-calls", type=int, default=d.single_calls, help="sequential one-case calls per block")
    p.add_argument(
        "--concurrency",
        type=concurrency_levels,
        default=d.concurrency,
        help="concurrent client counts besides 1 (comma-separated), each against ours, the peer and the floor",
    )
    p.add_argument("--concurrent-calls", type=int, default=d.concurrent_calls, help="calls per concurrent block, all clients")
    p.add_argument(
        "--prediction-only-clients",
        type=int,
        default=d.prediction_only_clients,
        help="concurrent clients of the prediction-only reference (0 leaves it out)",
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="cases per batch call")
    p.add_argument("--batch-calls", type=int, default=d.batch_calls, help="batch calls per block")
    p.add_argument("--stream-messages", type=int, default=d.stream_messages, help="stream messages per block")
    p.add_argument("--warmup-calls", type=int, default=d.warmup_calls, help="untimed one-case calls per side first")
    p.add_argument("--max-seconds", type=float, default=d.max_seconds, help="stop after the round that passes this budget")
    p.add_argument("--seed", type=int, default=d.seed, help="order of the WDBC cases and bootstrap resampling")
    p.add_argument("--api-workers", type=int, default=1, help="our BentoML API worker processes")
    p.add_argument(
        "--peer-workers",
        type=int,
        default=0,
        help="MLServer parallel_workers: 0 = inference inside the gRPC process, like ours (its own default, 1, adds an IPC hop)",
    )
    p.add_argument(
        "--peer-threads",
        type=int,
        default=1,
        help="OMP_NUM_THREADS for MLServer's XGBoost (ours runs its models single-threaded); 0 = XGBoost's default, all cores",
    )
    p.add_argument("--peer-venv", type=Path, default=peer.PEER_VENV, help="MLServer's virtual environment")
    p.add_argument("--no-install", action="store_true", help="fail instead of installing the peer when it is missing")
    p.add_argument("--out", type=Path, default=None, help="report folder (default bench/reports/<UTC date>[-HHMMSS])")
    p.add_argument("--startup-timeout", type=float, default=240.0, help="seconds to wait for each server")
    return p.parse_args(argv)


def plan_from(args: argparse.Namespace) -> load.Plan:
    if args.quick:
        return QUICK
    return load.Plan(
        rounds=args.rounds,
        single_calls=args.single_calls,
        concurrency=args.concurrency,
        concurrent_calls=args.concurrent_calls,
        prediction_only_clients=args.prediction_only_clients,
        batch_size=args.batch_size,
        batch_calls=args.batch_calls,
        stream_messages=args.stream_messages,
        warmup_calls=args.warmup_calls,
        max_seconds=args.max_seconds,
        seed=args.seed,
    )


def out_dir(args: argparse.Namespace, now: dt.datetime) -> Path:
    if args.out is not None:
        return Path(args.out)
    folder = REPORTS / now.strftime("%Y-%m-%d")
    if folder.exists():
        folder = REPORTS / now.strftime("%Y-%m-%d-%H%M%S")
    return folder


def our_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in OUR_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # e.g. the project installs XGBoost as xgboost-cpu
    return out


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev.stdout.strip() + (" (work tree has uncommitted changes)" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def microseconds(rounds: list[list[float]]) -> list[list[int]]:
    return [[round(x * 1e6) for x in r] for r in rounds]


def serialize(measurements: dict[str, dict[str, load.Measurement]]) -> dict[str, Any]:
    return {
        key: {
            side: {
                "latency_us": microseconds(m.rounds),
                "wall_seconds": [round(b.wall, 6) for b in m.blocks],
                "server_cpu_seconds": [round(b.cpu, 4) for b in m.blocks],
                "client_cpu_seconds": [round(b.client_cpu, 4) for b in m.blocks],
                "errors": m.errors,
            }
            for side, m in sides.items()
        }
        for key, sides in measurements.items()
    }


async def drive(
    plan: load.Plan,
    ours_server: ManagedServer,
    peer_server: ManagedServer,
    ours_target: str,
    peer_target: str,
    ours_metrics_port: int,
    messages: peer.V2Messages,
) -> dict[str, Any]:
    generator = load.LoadGenerator(plan, ours_target, peer_target, messages, ours_server.pid, peer_server.pid, ours_metrics_port)
    await generator.open()
    try:
        names = await generator.feature_names()
        cases = load.Cases(names, plan.seed)
        requests = load.build_requests(cases, messages, plan)
        parity = await generator.check_same_model(requests)
        sizes = generator.payload_sizes(requests) | await generator.response_sizes(requests)
        prediction_only = bool(requests.ours_prediction_only)
        total = 2 * plan.warmup_calls + plan.rounds * plan.calls_per_round(prediction_only)
        with tqdm(total=total, unit="call", desc="tumour: warm-up", dynamic_ncols=True) as bar:

            def advance(calls: int) -> None:
                bar.update(calls)

            await generator.warm_up(requests, advance)
            bar.set_description(f"tumour: round 1/{plan.rounds}")

            def on_round(done: int) -> None:
                bar.set_description(f"tumour: round {min(done + 1, plan.rounds)}/{plan.rounds}")

            started = time.monotonic()
            measurements = await generator.run(requests, advance, on_round)
            measured_seconds = time.monotonic() - started
            rounds_done = len(next(iter(measurements.values()))[load.OURS].blocks)
            if rounds_done < plan.rounds:
                bar.total = bar.n
                bar.set_description(f"stopped after {rounds_done} rounds (time budget)")
                bar.refresh()
    finally:
        await generator.close()
    return {
        "measurements": serialize(measurements),
        "rounds_done": rounds_done,
        "measured_seconds": measured_seconds,
        "stages": {k: {s: list(v) for s, v in d.items()} for k, d in generator.stages.items()},
        "load_average": [list(x) for x in generator.load_average],
        "parity": parity,
        "sizes": sizes,
        "scenarios": [s.__dict__ for s in load.scenarios(plan, prediction_only)],
        "prediction_only_offered": prediction_only,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start both servers, drive every scenario, stop them; the run's results (as results.json holds them)."""
    plan = plan_from(args)
    now = dt.datetime.now(dt.UTC)
    state = peer.BENCH_STATE / "run"
    logs = state / "logs"

    if not peer.installed(args.peer_venv):
        if args.no_install:
            raise SystemExit(f"MLServer is not installed in {args.peer_venv}; run `python -m bench.peer install`")
        print(f"installing the peer into {args.peer_venv} (bench/peer-requirements.txt; once) ...", flush=True)
        peer.install(args.peer_venv)
    peer_versions = peer.versions(args.peer_venv)
    messages = peer.V2Messages(peer.v2_descriptor(args.peer_venv))

    ours_port, ours_metrics, peer_grpc, peer_http, peer_metrics = free_ports(5)
    ours_server = ours.clinpred_server(ours_port, ours_metrics, args.api_workers, state / "clinpred", logs / "clinpred.log")
    peer_config = peer.PeerConfig(peer_grpc, peer_http, peer_metrics, args.peer_workers, BOOSTER, args.peer_threads or None)
    peer_server = peer.mlserver_server(state / "mlserver", peer_config, logs / "mlserver.log", args.peer_venv)
    ours_target, peer_target = f"{LOOPBACK}:{ours_port}", f"{LOOPBACK}:{peer_grpc}"

    load_before = psutil.getloadavg()
    revision = git_revision()
    print(f"starting servers (logs in {logs}) ...", flush=True)
    with ours_server, peer_server:
        ours_server.wait_until(lambda: ours.is_serving(ours_server), args.startup_timeout, "'clinpred is serving'")
        peer_server.wait_until(
            lambda: peer_model_ready(peer_target, messages), args.startup_timeout, "a V2 answer from the model"
        )
        print(f"ours: pid {ours_server.pid} at {ours_target}; peer: pid {peer_server.pid} at {peer_target}", flush=True)
        outcome = asyncio.run(drive(plan, ours_server, peer_server, ours_target, peer_target, ours_metrics, messages))
    print("servers stopped", flush=True)

    results: dict[str, Any] = {
        "meta": {
            "started_utc": now.isoformat(timespec="seconds"),
            "git": revision,
            "machine": {
                "cpus": os.cpu_count(),
                "cpu_model": cpu_model(),
                "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                "load_average_before": list(load_before),
                "load_average_after": list(psutil.getloadavg()),
                "platform": platform.platform(),
            },
            "ours": {
                "versions": our_versions(),
                "api_workers": args.api_workers,
                "command": "clinpred serve tumor --insecure-development",
                "model": ours.MODEL_NAME,
            },
            "peer": {
                "versions": peer_versions,
                "parallel_workers": args.peer_workers,
                "omp_num_threads": args.peer_threads or "default (all cores)",
                "command": "mlserver start",
                "model": str(BOOSTER.relative_to(REPO)),
            },
            "quick": bool(args.quick),
        },
        "plan": plan.__dict__ | {"rounds_done": outcome.pop("rounds_done")},
        **outcome,
    }
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = measure(args)
    folder = out_dir(args, dt.datetime.fromisoformat(results["meta"]["started_utc"]))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, separators=(",", ":")) + "\n")
    path = report.write(results, folder)
    print(f"report: {path}")
    return 0


def peer_model_ready(target: str, messages: peer.V2Messages) -> bool:
    import grpc
    import numpy as np

    with grpc.insecure_channel(target) as channel:
        infer = channel.unary_unary(
            f"/{peer.V2_SERVICE}/ModelInfer",
            request_serializer=messages.ModelInferRequest.SerializeToString,
            response_deserializer=messages.ModelInferResponse.FromString,
        )
        answer = infer(messages.infer_request(np.zeros((1, 30))), timeout=5)
    return len(messages.predictions(answer)) == 1


if __name__ == "__main__":
    sys.exit(main())
