"""The report of a `make bench` run: targets met or missed, a table of ratios with intervals, plots.

    .venv/bin/python -m bench.report bench/reports/<date>/results.json                    # rebuild report.md and plots
    .venv/bin/python -m bench.report --readme README.md bench/reports/<date>/results.json  # the README's table

Everything here is computed from results.json (raw samples); nothing is measured.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import report, stats

README_BEGIN = "<!-- bench-table -->"
README_END = "<!-- /bench-table -->"
NAN = float("nan")
# "Flat memory" in the sense: ten times the samples may not cost more than half as much memory again.
FLAT_MEMORY_FACTOR = 1.5


def _x(v: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}f}×"


def _interval(lo_hi: tuple[float, float]) -> str:
    lo, hi = lo_hi
    return "n/a" if not (math.isfinite(lo) and math.isfinite(hi)) else f"[{lo:.2f}, {hi:.2f}]"


def _n(v: float, digits: int = 0) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:,.{digits}f}"


@dataclass(frozen=True)
class SideResult:
    summary: stats.Summary
    throughput: float  # items per second of block wall time
    server_cpu_ms: float  # per call
    database_cpu_ms: float  # per call, PostgreSQL backends of the run's database (deterioration only)
    client_cpu_ms: float  # per call, the load generator
    errors: int
    items: list[int]  # per block
    walls: list[float]  # per block


def side_result(side: dict[str, Any], items_per_call: int) -> SideResult:
    rounds = report.latency_rounds(side)
    flat = [x for r in rounds for x in r]
    calls = len(flat)

    def per_call(key: str) -> float:
        return 1000.0 * float(sum(side[key])) / calls if calls and key in side else NAN

    walls = [float(w) for w in side["wall_seconds"]]
    return SideResult(
        summary=stats.summarize(flat) if flat else stats.summarize([NAN]),
        throughput=stats.throughput(calls * items_per_call, sum(walls)),
        server_cpu_ms=per_call("server_cpu_seconds"),
        database_cpu_ms=per_call("database_cpu_seconds"),
        client_cpu_ms=per_call("client_cpu_seconds"),
        errors=int(side["errors"]),
        items=[len(r) * items_per_call for r in rounds],
        walls=walls,
    )


@dataclass(frozen=True)
class Comparison:
    """Ours against one other side in one scenario."""

    key: str
    title: str
    ours_call: str
    other_call: str
    other: str  # "floor", "psycopg", ...
    unit: str
    ours: SideResult
    them: SideResult
    seed: int = 0

    @property
    def throughput_ratio(self) -> float:
        return stats.ratio(self.ours.throughput, self.them.throughput)

    @property
    def throughput_interval(self) -> tuple[float, float]:
        return stats.bootstrap_throughput_ratio_interval(
            self.ours.items, self.ours.walls, self.them.items, self.them.walls, seed=self.seed
        )


def deterioration_comparisons(part: dict[str, Any]) -> list[Comparison]:
    out = []
    for scenario in part["scenarios"]:
        m = part["measurements"][scenario["key"]]
        ours_side, other = scenario["sides"][0], scenario["sides"][1]
        n = int(scenario["items_per_call"])
        out.append(
            Comparison(
                scenario["key"],
                scenario["title"],
                scenario["calls"][ours_side],
                scenario["calls"][other],
                other,
                scenario["unit"],
                side_result(m[ours_side], n),
                side_result(m[other], n),
            )
        )
    return out


@dataclass(frozen=True)
class Target:
    """One target of the issue, with the ratio measured in this run."""

    part: str
    target: str
    measured: float
    interval: tuple[float, float]
    threshold: float
    at_least: bool  # met when measured >= threshold (else when <=)
    shown: str  # how the measurement reads, e.g. "3.1× MLServer's throughput"
    bound: str = ""  # what bounds it, measured (for a missed target)

    @property
    def met(self) -> bool | None:
        if not math.isfinite(self.measured):
            return None
        return self.measured >= self.threshold if self.at_least else self.measured <= self.threshold

    @property
    def verdict(self) -> str:
        met = self.met
        if met is None:
            return "not measured"
        lo, hi = self.interval
        uncertain = math.isfinite(lo) and math.isfinite(hi) and lo <= self.threshold <= hi
        return ("**met**" if met else "**missed**") + (" (interval spans the target)" if uncertain else "")


def _tumor(results: dict[str, Any]) -> dict[str, report.ScenarioResult]:
    part = results.get("tumor")
    return {sr.key: sr for sr in report.analyse(part)} if part else {}


def tumor_targets(results: dict[str, Any]) -> list[Target]:
    by_key = _tumor(results)
    if not by_key:
        return []
    cores = float(results["tumor"]["meta"]["machine"]["cpus"] or 1)
    out = []
    c16 = by_key.get("concurrent-16")
    if c16 is not None:
        cpu_bound = 1000.0 * cores / c16.ours_cpu_ms_per_call if c16.ours_cpu_ms_per_call > 0 else NAN
        bound = (
            f"the floor (health Check, same stack and client) reached {_n(c16.floor_throughput)} calls/s, "
            f"{_x(stats.ratio(c16.floor_throughput, c16.peer_throughput))} the peer; our server spent "
            f"{c16.ours_cpu_ms_per_call:.2f} ms CPU per call (at most {_n(cpu_bound)} calls/s on {cores:.0f} cores "
            f"if it had them all), the load generator {c16.client_cpu_ms_per_call.get('ours', NAN):.2f} ms per call"
        )
        out.append(
            Target(
                "tumour",
                "one case, 16 concurrent clients, full explanation: ≥ 4× MLServer's prediction-only throughput",
                c16.throughput_ratio,
                c16.throughput_interval,
                4.0,
                True,
                f"{_x(c16.throughput_ratio)} ({_n(c16.ours_throughput)} vs {_n(c16.peer_throughput)} cases/s)",
                bound,
            )
        )
        p99 = c16.ours.p99 * 1000.0
        floor_p99 = c16.floor.p99 * 1000.0 if c16.floor is not None else NAN
        out.append(
            Target(
                "tumour",
                "one case, 16 concurrent clients, full explanation: p99 ≤ 15 ms",
                p99,
                (c16.ours_p99_interval[0] * 1000.0, c16.ours_p99_interval[1] * 1000.0),
                15.0,
                False,
                f"p99 {p99:.1f} ms",
                f"the floor's p99 at 16 clients was {floor_p99:.1f} ms (stack and client alone, nothing computed)",
            )
        )
    batch = by_key.get("batch")
    if batch is not None:
        stages = report.stage_means_ms(results["tumor"], "batch")
        parts = ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
        out.append(
            Target(
                "tumour",
                "batch of 100, full explanations: latency ≤ MLServer's prediction-only batch",
                batch.ratios[50],
                batch.p50_interval,
                1.0,
                False,
                f"p50 {_x(batch.ratios[50])} ({batch.ours.p50 * 1000:.1f} vs {batch.peer.p50 * 1000:.1f} ms)",
                f"our server stages per batch (mean ms): {parts or 'not scraped'}, of a {batch.ours.mean * 1000:.1f} ms call",
            )
        )
    stream = by_key.get("stream")
    single = by_key.get("single")
    if stream is not None:
        floor_single = single.floor.p50 * 1000.0 if single is not None and single.floor is not None else NAN
        out.append(
            Target(
                "tumour",
                "stream: ≥ 4× MLServer's unary calls (messages per second, one in flight)",
                stream.throughput_ratio,
                stream.throughput_interval,
                4.0,
                True,
                f"{_x(stream.throughput_ratio)} (p50 {stream.ours.p50 * 1000:.2f} vs {stream.peer.p50 * 1000:.2f} ms)",
                f"one unary health Check on our server takes {floor_single:.2f} ms at p50 with this client: a message "
                "cannot go faster than that round trip",
            )
        )
    return out


def deterioration_targets(results: dict[str, Any]) -> list[Target]:
    part = results.get("deterioration")
    if not part:
        return []
    out = []
    for c in deterioration_comparisons(part):
        if c.key == "polling":
            out.append(
                Target(
                    "deterioration",
                    "polling the latest risk, 16 clients: ≥ 80% of the floor's throughput",
                    c.throughput_ratio,
                    c.throughput_interval,
                    0.8,
                    True,
                    f"{_x(c.throughput_ratio)} ({_n(c.ours.throughput)} vs {_n(c.them.throughput)} calls/s; "
                    f"{100 * part.get('unchanged_share', NAN):.0f}% unchanged)",
                    f"server CPU per call {c.ours.server_cpu_ms:.2f} ms vs the floor's {c.them.server_cpu_ms:.2f} ms; "
                    f"PostgreSQL CPU per call {c.ours.database_cpu_ms:.2f} ms",
                )
            )
        elif c.key == "recording":
            out.append(
                Target(
                    "deterioration",
                    "recording batches of 10 observations, 16 patients at once: ≥ half of plain psycopg's committed inserts",
                    c.throughput_ratio,
                    c.throughput_interval,
                    0.5,
                    True,
                    f"{_x(c.throughput_ratio)} ({_n(c.ours.throughput)} vs {_n(c.them.throughput)} observations/s)",
                    f"per batch: our server CPU {c.ours.server_cpu_ms:.2f} ms, PostgreSQL CPU {c.ours.database_cpu_ms:.2f} ms "
                    f"(psycopg's: {c.them.database_cpu_ms:.2f} ms), p50 {c.ours.summary.p50 * 1000:.1f} vs "
                    f"{c.them.summary.p50 * 1000:.1f} ms",
                )
            )
    return out


def genomics_targets(results: dict[str, Any]) -> list[Target]:
    part = results.get("genomics")
    if not part:
        return []
    out = []
    startup = float(np.median([m["seconds"] for m in part["ours_startup"]]))
    cases = [c for c in part["cases"] if c["variants"] == "PGS000004"]
    for case in cases:
        ours_cpu = float(np.median([m["cpu_seconds"] for m in case["ours"]]))
        ours_s = float(np.median([m["seconds"] for m in case["ours"]]))
        plink_s = float(np.median([m["seconds"] for m in case["plink2"]]))
        out.append(
            Target(
                "genomics",
                f"batch scoring, {case['samples']:,} samples × {case['score_variants']} variants: ≤ 2× plink2's time",
                float(case["time_ratio"]),
                (NAN, NAN),
                2.0,
                False,
                f"{_x(float(case['time_ratio']))} ({ours_s:.2f} vs {plink_s:.2f} s)",
                f"ours spent {ours_cpu:.2f} s of CPU; its floor (interpreter and imports, `--help`) takes {startup:.2f} s",
            )
        )
    if len(cases) >= 2:
        small, large = min(cases, key=lambda c: c["samples"]), max(cases, key=lambda c: c["samples"])
        small_mib = max(m["peak_rss_mib"] for m in small["ours"])
        large_mib = max(m["peak_rss_mib"] for m in large["ours"])
        growth = stats.ratio(large_mib, small_mib)
        added = large["samples"] - small["samples"]
        plink_growth = max(m["peak_rss_mib"] for m in large["plink2"]) - max(m["peak_rss_mib"] for m in small["plink2"])
        out.append(
            Target(
                "genomics",
                f"flat memory: peak at {large['samples']:,} samples ≤ {FLAT_MEMORY_FACTOR}× the peak at {small['samples']:,}",
                growth,
                (NAN, NAN),
                FLAT_MEMORY_FACTOR,
                False,
                f"{_x(growth)} ({large_mib:.0f} vs {small_mib:.0f} MiB; plink2 "
                f"{max(m['peak_rss_mib'] for m in large['plink2']):.0f} vs "
                f"{max(m['peak_rss_mib'] for m in small['plink2']):.0f} MiB)",
                f"ours' peak grows by {1024 * (large_mib - small_mib) / added:.1f} KiB per added sample "
                f"({large_mib - small_mib:.0f} MiB for {added:,} more), plink2's by {1024 * plink_growth / added:.1f} KiB",
            )
        )
    return out


def targets(results: dict[str, Any]) -> list[Target]:
    return tumor_targets(results) + deterioration_targets(results) + genomics_targets(results)


def ratio_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(part, scenario, compared with, ratio [95% interval], context) for every comparison of the run."""
    rows = []
    for sr in _tumor(results).values():
        kind = "p50 latency" if sr.key == "batch" else "throughput"
        value, interval = (sr.ratios[50], sr.p50_interval) if sr.key == "batch" else (sr.throughput_ratio, sr.throughput_interval)
        rows.append(
            (
                "tumour",
                f"{sr.title} ({sr.ours_call})",
                f"MLServer, {sr.peer_call}",
                f"{kind} {_x(value)} {_interval(interval)}",
                f"ours p99 {sr.ours.p99 * 1000:.1f} ms, {_n(sr.ours_throughput)} cases/s; server CPU "
                f"{sr.ours_cpu_ms_per_call:.2f} vs {sr.peer_cpu_ms_per_call:.2f} ms per call",
            )
        )
        if sr.floor is not None:
            rows.append(
                (
                    "tumour",
                    f"{sr.title} ({sr.ours_call})",
                    "floor: health Check, same server",
                    f"throughput {_x(sr.floor_ratio)} {_interval(sr.floor_throughput_interval)}",
                    f"floor {_n(sr.floor_throughput)} calls/s, p99 {sr.floor.p99 * 1000:.1f} ms; client CPU "
                    f"{sr.client_cpu_ms_per_call.get('ours', NAN):.2f} ms per call",
                )
            )
    part = results.get("deterioration")
    if part:
        for c in deterioration_comparisons(part):
            rows.append(
                (
                    "deterioration",
                    f"{c.title} ({c.ours_call})",
                    c.other_call,
                    f"throughput {_x(c.throughput_ratio)} {_interval(c.throughput_interval)}",
                    f"ours {_n(c.ours.throughput)} {c.unit}/s, p99 {c.ours.summary.p99 * 1000:.1f} ms; server CPU "
                    f"{c.ours.server_cpu_ms:.2f} ms, PostgreSQL CPU {c.ours.database_cpu_ms:.2f} ms per call",
                )
            )
    genomics = results.get("genomics")
    if genomics:
        for case in genomics["cases"]:
            rows.append(
                (
                    "genomics",
                    f"`clinpred genomics score`, {case['samples']:,} samples × {case['score_variants']:,} variants",
                    "`plink2 --score`",
                    f"time {_x(float(case['time_ratio']))}, peak memory {_x(float(case['memory_ratio']))}",
                    f"ours {float(np.median([m['seconds'] for m in case['ours']])):.2f} s, "
                    f"{max(m['peak_rss_mib'] for m in case['ours']):.0f} MiB (n={len(case['ours'])})",
                )
            )
    return rows


def failed_calls(results: dict[str, Any]) -> dict[str, int]:
    """Where in the results calls failed, and how many: a side whose calls were refused measured the
    refusals as much as the serving."""
    found: dict[str, int] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "errors" and isinstance(value, int):
                    if value > 0:
                        found[path] = value
                else:
                    walk(value, f"{path}/{key}" if path else str(key))

    walk({k: v for k, v in results.items() if k != "meta"}, "")
    return found


def machine_line(results: dict[str, Any]) -> str:
    meta = results["meta"]
    m = meta["machine"]
    quick = " **Quick smoke run: numbers mean nothing.**" if meta.get("quick") else ""
    failed = failed_calls(results)
    if failed:
        where = ", ".join(f"{path} {count:,}" for path, count in failed.items())
        quick += f" **Calls failed in this run ({where}): its figures are not a measure of serving.**"
    return (
        f"Run {meta['started_utc']} at git {meta['git']} on {m['cpus']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"{m['platform']}; 1-min load average {m['load_average_before'][0]:.2f} before, {m['load_average_after'][0]:.2f} "
        f"after; load generator, servers and any other work share the cores.{quick}"
    )


def summary_table(results: dict[str, Any]) -> str:
    """The targets and the ratios, as the README shows them."""
    lines = [machine_line(results), "", "| target | measured | 95% interval | verdict |", "|---|---|---|---|"]
    for t in targets(results):
        lines.append(f"| {t.part}: {t.target} | {t.shown} | {_interval(t.interval)} | {t.verdict} |")
    lines += ["", "| part | scenario | against | ours / them | context |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in ratio_rows(results)]
    return "\n".join(lines) + "\n"


def plot_concurrency(results: dict[str, Any], path: Path) -> bool:
    """Tumour throughput and p99 against concurrency, ours / peer / floor."""
    by_key = _tumor(results)
    levels = sorted((sr.clients, sr) for sr in by_key.values() if sr.floor is not None)
    if not levels:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    xs = [c for c, _ in levels]
    series = (
        ("ours (full explanation)", "#1f77b4", lambda sr: sr.ours_throughput, lambda sr: sr.ours.p99),
        ("MLServer (prediction only)", "#ff7f0e", lambda sr: sr.peer_throughput, lambda sr: sr.peer.p99),
        ("floor (health Check, our server)", "#7f7f7f", lambda sr: sr.floor_throughput, lambda sr: sr.floor.p99),
    )
    for label, color, throughput, p99 in series:
        left.plot(xs, [throughput(sr) for _, sr in levels], marker="o", color=color, label=label)
        right.plot(xs, [p99(sr) * 1000.0 for _, sr in levels], marker="o", color=color, label=label)
    for ax, ylabel in ((left, "calls per second"), (right, "p99 latency, ms (log)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel("concurrent clients (closed loop)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    right.set_yscale("log")
    left.set_title("Tumour, one case per call: throughput", fontsize=10)
    right.set_title("Tumour, one case per call: p99", fontsize=10)
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_parts(results: dict[str, Any], path: Path) -> bool:
    """Deterioration throughput against its floor and psycopg; genomics time and memory against plink2."""
    part, genomics = results.get("deterioration"), results.get("genomics")
    if not part and not genomics:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    if part:
        comparisons = deterioration_comparisons(part)
        ax = axes[0]
        for i, c in enumerate(comparisons):
            ax.bar([2 * i, 2 * i + 0.8], [c.ours.throughput, c.them.throughput], width=0.7, color=["#1f77b4", "#7f7f7f"])
            ax.text(2 * i + 0.4, max(c.ours.throughput, c.them.throughput), _x(c.throughput_ratio), ha="center", va="bottom")
        ax.set_xticks(
            [x for i in range(len(comparisons)) for x in (2 * i, 2 * i + 0.8)],
            [label for c in comparisons for label in (f"ours: {c.key}", c.other)],
            fontsize=8,
        )
        ax.set_yscale("log")
        ax.set_ylabel("calls/s (polling), observations/s (recording), log")
        ax.set_title("Deterioration on PostgreSQL, 16 clients", fontsize=10)
    else:
        axes[0].set_visible(False)
    if genomics:
        names = [f"{c['samples']:,}×{c['score_variants']:,}" for c in genomics["cases"]]
        x = np.arange(len(names))
        for ax, key, label, agg in (
            (axes[1], "seconds", "wall seconds (median, log)", np.median),
            (axes[2], "peak_rss_mib", "peak resident set, MiB (log)", np.max),
        ):
            ours = [float(agg([m[key] for m in c["ours"]])) for c in genomics["cases"]]
            theirs = [float(agg([m[key] for m in c["plink2"]])) for c in genomics["cases"]]
            ax.bar(x - 0.2, ours, width=0.4, label="clinpred genomics score", color="#1f77b4")
            ax.bar(x + 0.2, theirs, width=0.4, label="plink2 --score", color="#ff7f0e")
            ax.set_xticks(x, names, fontsize=8)
            ax.set_yscale("log")
            ax.set_ylabel(label)
            ax.set_xlabel("samples × score variants")
            ax.legend(fontsize=8, loc="upper left")
            ax.set_title("Genomics batch scoring", fontsize=10)
    else:
        axes[1].set_visible(False)
        axes[2].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _deterioration_section(part: dict[str, Any]) -> list[str]:
    lines = [
        "## Deterioration on PostgreSQL",
        "",
        f"`{part['command']}` on a fresh database of PostgreSQL {part['postgresql']}, made for the run and dropped "
        f"after it; {part['plan']['rounds_done']} rounds of {part['plan']['rounds']} planned. Polling asks with the "
        f"patient's latest version: {100 * part['unchanged_share']:.1f}% of the answers were `unchanged`. Server CPU is "
        "our server's process tree; PostgreSQL CPU is the backends serving the run's database (both sides).",
        "",
        "| scenario | side | calls | p50 ms | p99 ms | throughput | server CPU ms/call | PostgreSQL CPU ms/call "
        "| client CPU ms/call | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in deterioration_comparisons(part):
        for name, s in ((c.ours_call, c.ours), (c.other_call, c.them)):
            lines.append(
                f"| {c.title} | {name} | {s.summary.n} | {s.summary.p50 * 1000:.2f} | {s.summary.p99 * 1000:.2f} "
                f"| {_n(s.throughput)} {c.unit}/s | {_n(s.server_cpu_ms, 3)} | {_n(s.database_cpu_ms, 3)} "
                f"| {_n(s.client_cpu_ms, 3)} | {s.errors} |"
            )
    lines.append("")
    return lines


def _load_generator_section(results: dict[str, Any]) -> list[str]:
    """Was the client the bottleneck? Its CPU per call next to each server's."""
    lines = [
        "## The load generator",
        "",
        "One Python process (grpc.aio) drives every side. Its own CPU per call (user+system of that process "
        "during the block, from psutil) next to what the server spent per call:",
        "",
        "| part | scenario | side | client CPU ms/call | server CPU ms/call | client share of the two |",
        "|---|---|---|---|---|---|",
    ]
    for sr in _tumor(results).values():
        cpu = {"ours": sr.ours_cpu_ms_per_call, "peer": sr.peer_cpu_ms_per_call, "floor": sr.floor_cpu_ms_per_call}
        for side, client in sr.client_cpu_ms_per_call.items():
            share = client / (client + cpu[side]) if math.isfinite(client + cpu[side]) and client + cpu[side] > 0 else NAN
            lines.append(f"| tumour | {sr.title} | {side} | {_n(client, 3)} | {_n(cpu[side], 3)} | {_n(100 * share)}% |")
    part = results.get("deterioration")
    if part:
        for c in deterioration_comparisons(part):
            for side, s in (("ours", c.ours), (c.other, c.them)):
                server = s.server_cpu_ms if side != "psycopg" else s.database_cpu_ms
                total = s.client_cpu_ms + server
                share = s.client_cpu_ms / total if math.isfinite(total) and total > 0 else NAN
                lines.append(
                    f"| deterioration | {c.title} | {side} | {_n(s.client_cpu_ms, 3)} | {_n(server, 3)} | {_n(100 * share)}% |"
                )
    lines += [
        "",
        "On 2 cores the client and the server compete for the same CPU: where the client's share is near half or "
        "more, the client bounds the throughput of that side as much as the server does (psycopg's server column is "
        "PostgreSQL's CPU).",
        "",
    ]
    return lines


def render(results: dict[str, Any], plots: Sequence[str]) -> str:
    meta = results["meta"]
    lines = [f"# clinpred benchmark, {meta['started_utc'][:10]}: every service against its peer and its floor", ""]
    lines += [machine_line(results), ""]
    lines += [
        f"Parts: {', '.join(meta['parts'])}; seconds per part: "
        + ", ".join(f"{k} {v:.0f}" for k, v in meta.get("seconds", {}).items())
        + f"; {meta.get('total_seconds', NAN):.0f} s in all.",
        "",
        *[f"**The {part} part failed:** `{why}`\n" for part, why in results.get("failed", {}).items()],
        "## Targets",
        "",
        "| target | measured | 95% interval | verdict | what bounds it (measured) |",
        "|---|---|---|---|---|",
    ]
    for t in targets(results):
        lines.append(
            f"| {t.part}: {t.target} | {t.shown} | {_interval(t.interval)} | {t.verdict} | {t.bound if t.met is False else ''} |"
        )
    lines += [
        "",
        "Intervals: throughput ratios resample whole rounds (each side's block of a round ran back to back), so they "
        "cover the drift of the shared machine; latency ratios are the bootstrap of the p50 ratio; the genomics rows "
        "are single runs unless `--genomics-repeats` says otherwise.",
        "",
        "## Every ratio of the run",
        "",
        "| part | scenario | against | ours / them | context |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in ratio_rows(results)]
    lines.append("")
    if results.get("tumor") and not results["tumor"].get("prediction_only_offered", True):
        lines += [
            "Prediction only: not measured, this tumour server's `ClassifyRequest` has no detail level to ask for "
            "an answer without explanation.",
            "",
        ]
    lines += [f"![{name}]({name})" for name in plots]
    lines.append("")
    lines += _load_generator_section(results)
    if results.get("deterioration"):
        lines += _deterioration_section(results["deterioration"])
    if results.get("genomics"):
        text = results["genomics"]["markdown"]
        lines += ["## " + text.splitlines()[0].lstrip("# "), *text.splitlines()[1:], ""]
        lines += [f"Peak memory: {results['genomics']['peak_memory']}.", ""]
    if results.get("encrypted"):
        lines += ["## Encrypted and sealed calls", ""]
        for name, run in results["encrypted"].items():
            lines += [f"### {name} (`{run['command']}`)", ""]
            lines += [line for line in run["output"].splitlines() if not line.startswith(("DEVELOPMENT MODE", "written to"))]
            lines.append("")
    if results.get("tumor"):
        tumor_text = report.render(results["tumor"], report.analyse(results["tumor"]))
        lines += ["## Tumour in detail", "", *re.sub(r"^#", "##", tumor_text, flags=re.MULTILINE).splitlines()[1:]]
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any], folder: Path) -> Path:
    plots = []
    if results.get("tumor"):
        analysed = report.analyse(results["tumor"])
        report.plot_latency(results["tumor"], analysed, folder / "latency.png")
        report.plot_breakdown(results["tumor"], analysed, folder / "breakdown.png")
    if plot_concurrency(results, folder / "concurrency.png"):
        plots.append("concurrency.png")
    if plot_parts(results, folder / "parts.png"):
        plots.append("parts.png")
    path = folder / "report.md"
    path.write_text(render(results, plots))
    return path


def update_readme(readme: Path, results: dict[str, Any], report_folder: Path | None = None) -> None:
    """Replace what stands between the README's bench-table markers with this run's table."""
    text = readme.read_text()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"{readme} has no {README_BEGIN} ... {README_END} block")
    table = summary_table(results)
    if report_folder is not None and report_folder.resolve().is_relative_to(readme.resolve().parent):
        table += f"\nThe whole report: `{report_folder.resolve().relative_to(readme.resolve().parent) / 'report.md'}`.\n"
    readme.write_text(text[: begin + len(README_BEGIN)] + "\n" + table + text[end:])
