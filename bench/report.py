"""Turn a run's results.json into report.md and PNG plots (the tumour part's here, the whole run's in bench.suite_report).

.venv/bin/python -m bench.report bench/reports/<date>/results.json                    # regenerate a report
.venv/bin/python -m bench.report --readme README.md bench/reports/<date>/results.json  # the README's table
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # `python bench/report.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stats

OURS, PEER, FLOOR = "ours", "peer", "floor"
STAGE_ORDER = ("decode", "predict", "explain", "encode")

EXTRAS: tuple[tuple[str, str], ...] = (
    (
        "decode a named-feature map and check every feature: 30 present, none unknown, finite, physically possible "
        "(`INVALID_ARGUMENT` with `BadRequest` otherwise)",
        "a bare `[n, 30]` tensor, position-coded, unchecked",
    ),
    ("flag values outside the training range (`out_of_range`)", "-"),
    ("ONNX Runtime probabilities, then **calibration**", "raw booster probability (XGBoost `predict`)"),
    ("**split-conformal prediction set** at 95% coverage, with its plain-words statement", "-"),
    (
        "**exact TreeSHAP for all 30 features** on the native booster (1500 trees), base value and margin, "
        "top three reasons in words",
        "-",
    ),
    ("model name, version and package SHA-256 in every answer; error, metrics and audit interceptors", "model name and version"),
)

WHAT_OURS_DOES_MORE = (
    "Per case, our answer carries what the peer's does not (the peer returns one float32, "
    "P(malignant) of the raw booster):\n\n| step on our side | the peer |\n|---|---|\n"
    + "\n".join(f"| {ours} | {peer} |" for ours, peer in EXTRAS)
    + "\n\nSo the ratios above are the price of those extras *plus* any difference in serving stacks "
    "(BentoML's gRPC server and interceptors vs MLServer's grpc.aio server), not a like-for-like "
    "comparison of two servers doing the same work. The server-side stage times of our service "
    "(from its own Prometheus histograms) show how much of our time the extras take."
)


@dataclass(frozen=True)
class ScenarioResult:
    key: str
    title: str
    ours_call: str
    peer_call: str
    items_per_call: int
    ours: stats.Summary
    peer: stats.Summary
    ratios: dict[int, float]
    p50_interval: tuple[float, float]
    rounds_p50: list[float]
    rounds_spread: tuple[float, float, float]
    ours_throughput: float  # items per second
    peer_throughput: float
    ours_cpu_ms_per_call: float
    peer_cpu_ms_per_call: float
    client_cpu_ms_per_call: dict[str, float]  # the load generator's own CPU per call, while driving each side
    errors: dict[str, int]
    clients: int = 1
    throughput_interval: tuple[float, float] = (math.nan, math.nan)  # ours/peer, rounds resampled
    ours_p99_interval: tuple[float, float] = (math.nan, math.nan)
    floor: stats.Summary | None = None  # grpc.health.v1 Check on our server, when measured
    floor_throughput: float = math.nan
    floor_throughput_interval: tuple[float, float] = (math.nan, math.nan)  # ours/floor
    floor_cpu_ms_per_call: float = math.nan

    @property
    def throughput_ratio(self) -> float:
        return stats.ratio(self.ours_throughput, self.peer_throughput)

    @property
    def cpu_ratio(self) -> float:
        return stats.ratio(self.ours_cpu_ms_per_call, self.peer_cpu_ms_per_call)

    @property
    def floor_ratio(self) -> float:
        """Our throughput over the floor's: the share of what this serving stack can do at all."""
        return stats.ratio(self.ours_throughput, self.floor_throughput)


def latency_rounds(side: dict[str, Any]) -> list[list[float]]:
    """Per-call latencies in seconds, per round (results.json stores whole microseconds)."""
    if "latency_us" in side:
        return [[x / 1e6 for x in r] for r in side["latency_us"]]
    return [list(r) for r in side["latency_seconds"]]


def analyse(results: dict[str, Any]) -> list[ScenarioResult]:
    seed = int(results["plan"]["seed"])
    out = []
    for scenario in results["scenarios"]:
        key = scenario["key"]
        m = results["measurements"][key]
        sides: dict[str, dict[str, Any]] = {}
        for side in (s for s in (OURS, PEER, FLOOR) if s in m):
            rounds = latency_rounds(m[side])
            flat = [x for r in rounds for x in r]
            calls = len(flat)
            wall = float(sum(m[side]["wall_seconds"]))
            cpu = float(sum(m[side]["server_cpu_seconds"]))
            sides[side] = {
                "rounds": rounds,
                "flat": flat,
                "summary": stats.summarize(flat),
                "throughput": stats.throughput(calls * int(scenario["items_per_call"]), wall),
                "cpu_ms": 1000.0 * cpu / calls if calls else float("nan"),
                "client_cpu_ms": (
                    1000.0 * float(sum(m[side]["client_cpu_seconds"])) / calls
                    if calls and "client_cpu_seconds" in m[side]
                    else float("nan")
                ),
                "errors": int(m[side]["errors"]),
                "items": [len(r) * int(scenario["items_per_call"]) for r in rounds],
                "walls": [float(w) for w in m[side]["wall_seconds"]],
            }
        ours, peer = sides[OURS], sides[PEER]
        floor = sides.get(FLOOR)
        per_round = stats.paired_round_ratios(ours["rounds"], peer["rounds"])
        out.append(
            ScenarioResult(
                key=key,
                title=scenario["title"],
                ours_call=scenario["ours_call"],
                peer_call=scenario["peer_call"],
                items_per_call=int(scenario["items_per_call"]),
                ours=ours["summary"],
                peer=peer["summary"],
                ratios=stats.latency_ratios(ours["summary"], peer["summary"]),
                p50_interval=stats.bootstrap_ratio_interval(ours["flat"], peer["flat"], seed=seed),
                rounds_p50=per_round,
                rounds_spread=stats.spread(per_round),
                ours_throughput=ours["throughput"],
                peer_throughput=peer["throughput"],
                ours_cpu_ms_per_call=ours["cpu_ms"],
                peer_cpu_ms_per_call=peer["cpu_ms"],
                client_cpu_ms_per_call={side: v["client_cpu_ms"] for side, v in sides.items()},
                errors={side: v["errors"] for side, v in sides.items()},
                clients=int(scenario.get("clients", 1)),
                throughput_interval=stats.bootstrap_throughput_ratio_interval(
                    ours["items"], ours["walls"], peer["items"], peer["walls"], seed=seed
                ),
                ours_p99_interval=stats.bootstrap_quantile_interval(ours["flat"], 99.0, seed=seed),
                floor=floor["summary"] if floor else None,
                floor_throughput=floor["throughput"] if floor else math.nan,
                floor_throughput_interval=(
                    stats.bootstrap_throughput_ratio_interval(
                        ours["items"], ours["walls"], floor["items"], floor["walls"], seed=seed
                    )
                    if floor
                    else (math.nan, math.nan)
                ),
                floor_cpu_ms_per_call=floor["cpu_ms"] if floor else math.nan,
            )
        )
    return out


def _x(v: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}f}×"


def _ms(seconds: float) -> str:
    return f"{1000.0 * seconds:.2f}"


def _num(v: float, digits: int = 0) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:,.{digits}f}"


def stage_means_ms(results: dict[str, Any], key: str) -> dict[str, float]:
    """Mean server-side seconds per call of each of our stages, in ms."""
    stages = results.get("stages", {}).get(key, {})
    out = {}
    for name in STAGE_ORDER:
        if name in stages:
            total, count = stages[name]
            if count > 0:
                out[name] = 1000.0 * total / count
    return out


def plot_latency(results: dict[str, Any], analysed: list[ScenarioResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter

    n = len(analysed)
    cols = 2
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3.6 * rows), squeeze=False)
    colors = {OURS: "#1f77b4", PEER: "#ff7f0e"}
    for ax, sr in zip(axes.flat, analysed, strict=False):
        m = results["measurements"][sr.key]
        for side, label in ((OURS, f"ours: {sr.ours_call}"), (PEER, f"peer: {sr.peer_call}")):
            values = np.sort(np.asarray([x for r in latency_rounds(m[side]) for x in r]) * 1000.0)
            if values.size == 0:
                continue
            ecdf = np.arange(1, values.size + 1) / values.size
            ax.step(values, ecdf, where="post", color=colors[side], label=label)
            summary = sr.ours if side == OURS else sr.peer
            for q, style in ((50, "--"), (99, ":")):
                ax.axvline(summary.quantile(q) * 1000.0, color=colors[side], linestyle=style, linewidth=0.9)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(_plain_formatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("latency per call, ms (log scale); dashed p50, dotted p99")
        ax.set_ylabel("fraction of calls ≤ x")
        ax.set_title(f"{sr.title}: p50 ours/peer = {_x(sr.ratios[50])}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle("Client-observed latency per call (ECDF), same run, loopback, grpc.aio client", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _stage_panel(ax: Any, results: dict[str, Any], sr: ScenarioResult, heading: str) -> None:
    """Ours stacked by server stage (+ the rest of the call) next to the peer's whole call; means, ms, linear."""
    palette = {"decode": "#9ecae1", "predict": "#3182bd", "explain": "#e6550d", "encode": "#fdae6b"}
    stages = stage_means_ms(results, sr.key)
    start = 0.0
    for stage, value in stages.items():
        ax.barh(0, value, left=start, color=palette.get(stage, "grey"), label=f"ours server: {stage}")
        start += value
    ours_total, peer_total = sr.ours.mean * 1000.0, sr.peer.mean * 1000.0
    ax.barh(0, max(ours_total - start, 0.0), left=start, color="#bdbdbd", label="ours: gRPC, BentoML, interceptors, client")
    ax.barh(1, peer_total, color="#ff7f0e", label="peer: whole call, client-observed")
    for y, total in ((0, ours_total), (1, peer_total)):
        ax.text(total, y, f" {total:.2f}", va="center", fontsize=8)
    ax.set_yticks([0, 1], ["ours", "peer"])
    ax.invert_yaxis()
    ax.set_xlim(0, max(ours_total, peer_total) * 1.18)
    ax.set_xlabel("mean ms per call")
    ax.set_title(heading, fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)


def plot_breakdown(results: dict[str, Any], analysed: list[ScenarioResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    by_key = {sr.key: sr for sr in analysed}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), gridspec_kw={"width_ratios": [1, 1, 1.2]})
    panels = [(k, t) for k, t in (("single", "one case"), ("batch", "one batch call")) if k in by_key]
    for ax, (key, title) in zip(axes[:2], panels, strict=False):
        sr = by_key[key]
        _stage_panel(ax, results, sr, f"Where the time goes: {title}" + (f" of {sr.items_per_call}" if key == "batch" else ""))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8, frameon=False)

    right = axes[2]
    for sr in analysed:
        if sr.rounds_p50:
            right.plot(range(1, len(sr.rounds_p50) + 1), sr.rounds_p50, marker="o", markersize=3, label=sr.title)
    right.axhline(1.0, color="black", linewidth=0.8)
    right.set_yscale("log")
    right.yaxis.set_major_formatter(_plain_formatter())
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlabel("round")
    right.set_ylabel("p50 ours / peer within the round (log)")
    right.set_title("Per-round ratio: how much the shared machine moved it", fontsize=10)
    loads = results.get("load_average") or []
    if loads:
        twin = right.twinx()
        twin.plot(range(1, len(loads) + 1), [x[0] for x in loads], color="grey", linestyle=":", label="1-min load average")
        twin.set_ylabel("1-min load average (grey, dotted)", color="grey")
        twin.set_ylim(bottom=0)
    right.legend(fontsize=7, loc="upper left")
    right.grid(True, which="both", alpha=0.3)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plain_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:g}")


def observations(results: dict[str, Any], analysed: list[ScenarioResult]) -> list[str]:
    """Plain statements that follow from the numbers: direction per scenario, client limits, our biggest stage."""
    out = []
    for sr in analysed:
        finite = [r for r in sr.rounds_p50 if math.isfinite(r)]
        faster = sum(r < 1.0 for r in finite)
        slower = sum(r > 1.0 for r in finite)
        n = len(finite)
        if n and slower == n:
            verdict = f"ours slower in every one of {n} rounds"
        elif n and faster == n:
            verdict = f"ours faster in every one of {n} rounds"
        elif n and max(faster, slower) >= 0.8 * n:
            word = "faster" if faster > slower else "slower"
            verdict = f"ours {word} in {max(faster, slower)} of {n} rounds"
        else:
            verdict = f"no consistent difference: ours faster in {faster}, slower in {slower} of {n} rounds"
        line = f"{sr.title}: p50 ratio {_x(sr.ratios[50])}, {verdict}."
        client = max(sr.client_cpu_ms_per_call.values())
        if math.isfinite(client) and client >= max(sr.ours_cpu_ms_per_call, sr.peer_cpu_ms_per_call):
            line += (
                f" The load generator spent about as much CPU per call ({client:.2f} ms) as either server or more:"
                " on 2 cores the client is a large part of what is measured here, on both sides."
            )
        out.append(line)
    for key, label in (("single", "one case"), ("batch", "a batch")):
        stages = stage_means_ms(results, key)
        found = next((s for s in analysed if s.key == key), None)
        if not stages or found is None:
            continue
        total = sum(stages.values())
        top = max(stages, key=lambda k: stages[k])
        out.append(
            f"Ours, {label}: server-side stages take {total:.2f} ms on average, {100 * total / (found.ours.mean * 1000):.0f}% "
            f"of the client-observed mean; the largest is {top} ({100 * stages[top] / total:.0f}% of the stages)."
        )
    return out


def render(results: dict[str, Any], analysed: list[ScenarioResult]) -> str:
    meta = results["meta"]
    plan = results["plan"]
    machine = meta["machine"]
    lines: list[str] = []
    add = lines.append
    add(f"# Tumour service benchmark: ours vs MLServer, {meta['started_utc'][:10]}")
    add("")
    if meta.get("quick"):
        add("**Quick smoke run: far too few calls for the numbers to mean anything.**")
        add("")
    add(
        f"Run {meta['started_utc']} at git {meta['git']}, on {machine['cpus']} cores ({machine['cpu_model']}), "
        f"{machine['memory_gib']} GiB. **Shared machine, noisy:** other work ran at the same time "
        f"(1-min load average {machine['load_average_before'][0]:.2f} before, {machine['load_average_after'][0]:.2f} after, "
        f"on {machine['cpus']} cores); the client, both servers and that other work compete for the same cores. "
        "Read the ratios, not the milliseconds, and mind the per-round spread."
    )
    add("")
    add(
        f"{plan['rounds_done']} rounds (of {plan['rounds']} planned; budget {plan['max_seconds']:.0f} s, "
        f"measured {results['measured_seconds']:.0f} s). Each round runs every scenario, every side back to back, "
        "in an order that rotates from round to round; the same cases go to ours and the peer (WDBC, seeded order "
        f"{plan['seed']}); {plan['warmup_calls']} untimed warm-up calls per side first."
    )
    add("")
    add("## Ratios ours / peer")
    add("")
    add("Latency ratio above 1: ours takes longer. Throughput ratio below 1: ours serves fewer.")
    add("")
    add(
        "| scenario | ours | peer | p50 ratio | 95% bootstrap | per-round p50 ratio: median [min, max] | p90 ratio | p99 ratio "
        "| throughput ratio [95% bootstrap of rounds] | server CPU per call ratio | throughput ours / floor |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for sr in analysed:
        med, lo, hi = sr.rounds_spread
        add(
            f"| {sr.title} | {sr.ours_call} | {sr.peer_call} | **{_x(sr.ratios[50])}** "
            f"| {_x(sr.p50_interval[0])}–{_x(sr.p50_interval[1])} | {_x(med)} [{_x(lo)}, {_x(hi)}] "
            f"| {_x(sr.ratios[90])} | {_x(sr.ratios[99])} | **{_x(sr.throughput_ratio)}** "
            f"[{_x(sr.throughput_interval[0])}, {_x(sr.throughput_interval[1])}] | {_x(sr.cpu_ratio)} "
            f"| {_x(sr.floor_ratio)} |"
        )
    add("")
    add(
        "The floor is `grpc.health.v1.Health/Check` on our own running tumour server, through the same client: a trivial "
        "handler on the same serving stack (BentoML's gRPC server, our interceptors), so ours / floor is the share of "
        "what this stack and this client can do at all that our answer leaves."
    )
    add("")
    add(
        "The bootstrap interval reflects sampling noise only; the per-round range shows how much the shared machine "
        "moved the ratio from one round to the next, which is usually the larger uncertainty. "
        "Server CPU per call: user+system CPU seconds of each server's whole process tree during its blocks, divided by "
        "its calls (less sensitive to waiting for a core than wall-clock latency)."
    )
    add("")
    add("What this run shows (generated from the numbers above):")
    add("")
    for line in observations(results, analysed):
        add(f"- {line}")
    add("")
    stream = next((sr for sr in analysed if sr.key == "stream"), None)
    if stream is not None:
        add(
            "Streaming: MLServer's `ModelStreamInfer` runs a model's `predict_stream`, which mlserver-xgboost does not "
            "implement; the default answers only the first message of a stream. So the peer's side of the stream row is "
            "its sequential unary `ModelInfer`, the nearest thing it offers: the row compares our per-message stream latency "
            "(one message in flight) with the peer's per-call unary latency."
        )
        add("")
    add("![latency distributions](latency.png)")
    add("")
    add("## Latency and throughput in this run (context for the ratios; this machine, this load only)")
    add("")
    add(
        "| scenario | side | calls | p50 ms | p90 ms | p99 ms | mean ms | throughput (cases/s) "
        "| server CPU ms per call | client CPU ms per call | errors |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for sr in analysed:
        rows = [
            ("ours", sr.ours, sr.ours_throughput, sr.ours_cpu_ms_per_call),
            ("peer", sr.peer, sr.peer_throughput, sr.peer_cpu_ms_per_call),
        ]
        if sr.floor is not None:
            rows.append(("floor", sr.floor, sr.floor_throughput, sr.floor_cpu_ms_per_call))
        for side, s, tp, cpu in rows:
            add(
                f"| {sr.title} | {side} | {s.n} | {_ms(s.p50)} | {_ms(s.p90)} | {_ms(s.p99)} | {_ms(s.mean)} "
                f"| {_num(tp)} | {_num(cpu, 3)} | {_num(sr.client_cpu_ms_per_call.get(side, math.nan), 3)} | {sr.errors[side]} |"
            )
    add("")
    add(
        "Throughput is cases per second of the block's wall time (a batch call counts its 100 cases); with one client "
        "it is the inverse of mean latency, with concurrent clients it is what the server sustained for that many "
        "clients in a closed loop."
    )
    add("")
    add("## Where our time goes")
    add("")
    for key, label in (("single", "one case"), ("batch", "one batch call")):
        stages = stage_means_ms(results, key)
        found = next((s for s in analysed if s.key == key), None)
        if not stages or found is None:
            continue
        total = sum(stages.values())
        parts = ", ".join(f"{k} {v:.3f}" for k, v in stages.items())
        add(
            f"- {label}: server stages (mean ms) {parts}; sum {total:.3f} ms of a client-observed mean of "
            f"{found.ours.mean * 1000:.3f} ms (the peer's whole call: {found.peer.mean * 1000:.3f} ms)."
        )
    add("")
    add(
        "`predict` is ONNX Runtime + calibration + conformal set + range flags; `explain` is exact TreeSHAP for 30 features; "
        "`decode`/`encode` are the checked proto conversions. The rest is gRPC, BentoML, our interceptors and the "
        "Python client."
    )
    add("")
    add("![breakdown](breakdown.png)")
    add("")
    add("## What the two sides do")
    add("")
    add(WHAT_OURS_DOES_MORE)
    add("")
    parity = results["parity"]
    add(
        f"Same model: over {int(parity['cases'])} cases, the peer's P(malignant) and the sigmoid of our explanation's margin "
        f"(the log-odds of the uncalibrated booster) differ by at most {parity['max_abs_diff']:.1e} "
        "(the peer answers in float32)."
    )
    add("")
    sizes = results["sizes"]
    add("| serialized bytes | ours | peer |")
    add("|---|---|---|")
    for key, label in (
        ("request_single", "request, one case"),
        ("response_single", "answer, one case"),
        ("request_batch", f"request, batch of {plan['batch_size']}"),
        ("response_batch", f"answer, batch of {plan['batch_size']}"),
    ):
        add(f"| {label} | {sizes[key][OURS]:,} | {sizes[key][PEER]:,} |")
    add("")
    add("## Setup")
    add("")
    ours_meta, peer_meta = meta["ours"], meta["peer"]
    add(
        f"- Ours: `{ours_meta['command']} --api-workers {ours_meta['api_workers']}` (BentoML `serve-grpc`), "
        + ", ".join(f"{k} {v}" for k, v in ours_meta["versions"].items())
        + "."
    )
    add(
        f"- Peer: `{peer_meta['command']}` with `parallel_workers` {peer_meta['parallel_workers']} "
        f"(MLServer's default is 1; 0 runs inference inside the gRPC process, as ours does, and answered faster here), "
        f"OMP_NUM_THREADS {peer_meta.get('omp_num_threads', 'default')} (ours runs ONNX Runtime and XGBoost single-threaded), "
        f"mlserver-xgboost serving `{peer_meta['model']}` (the same file our package holds) over the V2 inference protocol "
        "on gRPC, in its own venv: " + ", ".join(f"{k} {v}" for k, v in peer_meta["versions"].items()) + "."
    )
    add(
        "- Client: one Python process, grpc.aio, loopback only; one connection per client and side; request messages built "
        "before timing; each call's latency covers serialization, the round trip and parsing the answer, on both sides."
    )
    add(f"- Plan: {plan_line(plan)}, per side and round.")
    add("- Raw samples: `results.json` here; `python -m bench.report results.json` rebuilds this page from it.")
    add("")
    return "\n".join(lines)


def plan_line(plan: dict[str, Any]) -> str:
    if "concurrency" in plan:
        concurrent = (
            f"{plan['concurrent_calls']} calls shared by {', '.join(str(c) for c in plan['concurrency'])} concurrent clients"
        )
    else:  # results.json of runs before the concurrency levels
        concurrent = f"{plan['concurrent_clients']} clients × {plan['concurrent_calls_per_client']} calls"
    return (
        f"{plan['single_calls']} sequential calls, {concurrent}, {plan['batch_calls']} batch calls of "
        f"{plan['batch_size']}, {plan['stream_messages']} stream messages"
    )


def write(results: dict[str, Any], folder: Path) -> Path:
    analysed = analyse(results)
    plot_latency(results, analysed, folder / "latency.png")
    plot_breakdown(results, analysed, folder / "breakdown.png")
    path = folder / "report.md"
    path.write_text(render(results, analysed))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report",
        description="Rebuild report.md and plots from results.json (of `make bench` or of `bench.run`), "
        "or with --readme, the README's benchmark table.",
    )
    parser.add_argument("results", type=Path)
    parser.add_argument(
        "--readme", type=Path, default=None, help="replace the table between this file's <!-- bench-table --> markers"
    )
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    if results.get("kind") == "clinpred-bench-suite/1":
        from bench import suite_report

        if args.readme is not None:
            suite_report.update_readme(args.readme, results, args.results.parent)
            print(f"{args.readme}: benchmark table of {results['meta']['started_utc']}")
            return 0
        print(suite_report.write(results, args.results.parent))
        return 0
    if args.readme is not None:
        parser.error("--readme needs the results.json of `make bench`")
    print(write(results, args.results.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
