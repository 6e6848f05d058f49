"""Statistics of latency samples: percentiles, ratios ours/peer, bootstrap intervals.

Pure functions on plain sequences (seconds or any unit, as long as both sides
use the same one); no servers, no clocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

QUANTILES: tuple[int, ...] = (50, 90, 99)


@dataclass(frozen=True)
class Summary:
    """Distribution of one set of latency samples."""

    n: int
    mean: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float

    def quantile(self, q: int) -> float:
        return float(getattr(self, f"p{q}"))

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def percentiles(samples: Sequence[float] | np.ndarray, qs: Sequence[int] = QUANTILES) -> dict[int, float]:
    """Percentiles by linear interpolation between order statistics (numpy's default)."""
    values = np.asarray(samples, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no samples")
    return {int(q): float(v) for q, v in zip(qs, np.percentile(values, list(qs)), strict=True)}


def summarize(samples: Sequence[float] | np.ndarray) -> Summary:
    values = np.asarray(samples, dtype=np.float64)
    p = percentiles(values, QUANTILES)
    return Summary(
        n=int(values.size),
        mean=float(values.mean()),
        p50=p[50],
        p90=p[90],
        p99=p[99],
        min=float(values.min()),
        max=float(values.max()),
    )


def ratio(ours: float, peer: float) -> float:
    """ours / peer; NaN when the peer value is not positive (no meaningful ratio)."""
    if not np.isfinite(peer) or peer <= 0.0:
        return float("nan")
    return float(ours) / float(peer)


def latency_ratios(ours: Summary, peer: Summary, qs: Sequence[int] = QUANTILES) -> dict[int, float]:
    """Per percentile, ours/peer: above 1 means ours takes longer."""
    return {int(q): ratio(ours.quantile(q), peer.quantile(q)) for q in qs}


def throughput(count: int, seconds: float) -> float:
    """Items per second; NaN for an empty or zero-length interval."""
    if seconds <= 0.0 or count <= 0:
        return float("nan")
    return count / seconds


def bootstrap_ratio_interval(
    ours: Sequence[float] | np.ndarray,
    peer: Sequence[float] | np.ndarray,
    q: float = 50.0,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of percentile(ours, q) / percentile(peer, q).

    Each side is resampled with replacement independently; deterministic for a
    given seed. It reflects sampling noise only, not drift of a shared machine
    (see `paired_round_ratios` for that).
    """
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(peer, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("no samples")
    rng = np.random.default_rng(seed)
    qa = np.percentile(a[rng.integers(0, a.size, size=(n_boot, a.size))], q, axis=1)
    qb = np.percentile(b[rng.integers(0, b.size, size=(n_boot, b.size))], q, axis=1)
    ratios = qa / qb
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return float(low), float(high)


def paired_round_ratios(
    ours_rounds: Sequence[Sequence[float]],
    peer_rounds: Sequence[Sequence[float]],
    q: float = 50.0,
) -> list[float]:
    """percentile(ours, q) / percentile(peer, q) within each round.

    Rounds run ours and peer back to back, so each ratio sees nearly the same
    machine load; their spread shows how much the shared machine moved the result.
    """
    if len(ours_rounds) != len(peer_rounds):
        raise ValueError("ours and peer need the same number of rounds")
    out = []
    for a, b in zip(ours_rounds, peer_rounds, strict=True):
        if len(a) == 0 or len(b) == 0:
            continue
        out.append(ratio(float(np.percentile(a, q)), float(np.percentile(b, q))))
    return out


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max) of finite values; NaNs when there are none."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        nan = float("nan")
        return nan, nan, nan
    return float(np.median(finite)), float(min(finite)), float(max(finite))


def timed_ms(call: Callable[[], object], calls: int) -> list[float]:
    """Milliseconds of each of `calls` runs of `call`, after one untimed warm-up run."""
    call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def bootstrap_quantile_interval(
    samples: Sequence[float] | np.ndarray, q: float = 99.0, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of one side's percentile q (sampling noise only)."""
    values = np.asarray(samples, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no samples")
    rng = np.random.default_rng(seed)
    boots = np.percentile(values[rng.integers(0, values.size, size=(n_boot, values.size))], q, axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(boots, [tail, 100.0 - tail])
    return float(low), float(high)


def throughput_ratio(
    ours_items: Sequence[float], ours_walls: Sequence[float], peer_items: Sequence[float], peer_walls: Sequence[float]
) -> float:
    """(items per second of ours over all its blocks) / (the same of the peer)."""
    return ratio(
        throughput(int(sum(ours_items)), float(sum(ours_walls))), throughput(int(sum(peer_items)), float(sum(peer_walls)))
    )


def bootstrap_throughput_ratio_interval(
    ours_items: Sequence[float],
    ours_walls: Sequence[float],
    peer_items: Sequence[float],
    peer_walls: Sequence[float],
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap interval of the throughput ratio, resampling whole rounds (paired).

    Block i of ours and block i of the peer ran in the same round, back to back; resampling
    rounds keeps that pairing, so the interval covers how the shared machine moved from round
    to round as well as the noise within them. NaNs when there are fewer than two rounds.
    """
    oi, ow = np.asarray(ours_items, dtype=np.float64), np.asarray(ours_walls, dtype=np.float64)
    pi, pw = np.asarray(peer_items, dtype=np.float64), np.asarray(peer_walls, dtype=np.float64)
    n = min(oi.size, pi.size)
    if n < 2:
        nan = float("nan")
        return nan, nan
    oi, ow, pi, pw = oi[:n], ow[:n], pi[:n], pw[:n]
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    ratios = (oi[idx].sum(axis=1) / ow[idx].sum(axis=1)) / (pi[idx].sum(axis=1) / pw[idx].sum(axis=1))
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return float(low), float(high)
