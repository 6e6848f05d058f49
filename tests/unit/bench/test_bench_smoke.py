"""The benchmark's statistics and report on synthetic samples: no servers, no clocks, no timing assertions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import load, ours, report, stats


def test_percentiles_interpolate_between_order_statistics() -> None:
    samples = [float(x) for x in range(1, 101)]  # 1..100
    p = stats.percentiles(samples)
    assert p[50] == pytest.approx(50.5)
    assert p[90] == pytest.approx(90.1)
    assert p[99] == pytest.approx(99.01)
    with pytest.raises(ValueError):
        stats.percentiles([])


def test_summary_and_latency_ratios() -> None:
    ours_s = stats.summarize([2.0] * 99 + [20.0])
    peer_s = stats.summarize([1.0] * 99 + [4.0])
    assert ours_s.n == 100 and ours_s.min == 2.0 and ours_s.max == 20.0
    assert ours_s.mean == pytest.approx(2.18)
    ratios = stats.latency_ratios(ours_s, peer_s)
    assert ratios[50] == pytest.approx(2.0)
    assert ratios[99] == pytest.approx(ours_s.p99 / peer_s.p99)
    assert math.isnan(stats.ratio(1.0, 0.0))
    assert math.isnan(stats.throughput(0, 1.0)) and stats.throughput(100, 0.5) == 200.0


def test_bootstrap_interval_brackets_the_ratio_and_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    ours_samples = rng.lognormal(np.log(3.0), 0.2, 400)
    peer_samples = rng.lognormal(np.log(1.5), 0.2, 400)
    point = float(np.median(ours_samples) / np.median(peer_samples))
    low, high = stats.bootstrap_ratio_interval(ours_samples, peer_samples, n_boot=500, seed=7)
    assert low < point < high
    assert low > 1.6 and high < 2.4
    assert (low, high) == stats.bootstrap_ratio_interval(ours_samples, peer_samples, n_boot=500, seed=7)


def test_paired_round_ratios_and_their_spread() -> None:
    ours_rounds = [[2.0, 2.0, 2.0], [3.0, 3.0], []]
    peer_rounds = [[1.0, 1.0, 1.0], [1.0, 2.0], [1.0]]
    per_round = stats.paired_round_ratios(ours_rounds, peer_rounds)
    assert per_round == pytest.approx([2.0, 2.0])  # the empty round is skipped
    assert stats.spread([1.0, 3.0, float("nan"), 2.0]) == (2.0, 1.0, 3.0)
    with pytest.raises(ValueError):
        stats.paired_round_ratios([[1.0]], [])


def test_stage_totals_parse_prometheus_text() -> None:
    text = "\n".join(
        [
            "# TYPE clinpred_stage_duration_seconds histogram",
            'clinpred_stage_duration_seconds_bucket{le="0.001",service="tumor",stage="predict"} 3.0',
            'clinpred_stage_duration_seconds_sum{service="tumor",stage="predict"} 0.5',
            'clinpred_stage_duration_seconds_count{service="tumor",stage="predict"} 10.0',
            'clinpred_stage_duration_seconds_sum{service="tumor",stage="explain"} 0.25',
            'clinpred_stage_duration_seconds_count{service="tumor",stage="explain"} 10.0',
        ]
    )
    totals = ours.parse_stage_totals(text)
    assert totals == {"predict": (0.5, 10.0), "explain": (0.25, 10.0)}
    delta = ours.stage_delta({"predict": (0.1, 2.0)}, totals)
    assert delta["predict"] == pytest.approx((0.4, 8.0))


FACTORS = {"ours": 1.5, "peer": 1.0, "floor": 0.5}  # synthetic cost of a call relative to the peer


def synthetic_tumor_results(plan: load.Plan, wall_noise: float = 0.0) -> dict[str, Any]:
    """Each side's calls cost FACTORS[side] times the peer's; `wall_noise` jitters each block's wall time."""
    rng = np.random.default_rng(0)
    measurements = {}
    for scenario in load.scenarios(plan):
        scale = 0.03 if scenario.key == "batch" else 0.002
        measurements[scenario.key] = {
            side: {
                "latency_us": [
                    [round(x * 1e6) for x in rng.lognormal(np.log(scale * FACTORS[side]), 0.3, 20)] for _ in range(plan.rounds)
                ],
                "wall_seconds": [
                    20 * scale * FACTORS[side] * (1 + wall_noise * float(rng.uniform(-1, 1))) for _ in range(plan.rounds)
                ],
                "server_cpu_seconds": [10 * scale * FACTORS[side]] * plan.rounds,
                "client_cpu_seconds": [5 * scale] * plan.rounds,
                "errors": 0,
            }
            for side in scenario.sides
        }
    versions = {"python": "3.11"}
    return {
        "meta": {
            "started_utc": "2026-01-01T00:00:00+00:00",
            "git": "abc1234",
            "machine": {
                "cpus": 2,
                "cpu_model": "synthetic",
                "memory_gib": 1.0,
                "load_average_before": [1.0, 1.0, 1.0],
                "load_average_after": [1.0, 1.0, 1.0],
                "platform": "synthetic",
            },
            "ours": {"versions": versions, "api_workers": 1, "command": "clinpred serve tumor", "model": "wdbc-xgboost"},
            "peer": {
                "versions": versions,
                "parallel_workers": 0,
                "omp_num_threads": 1,
                "command": "mlserver start",
                "model": "booster.json",
            },
            "quick": True,
        },
        "plan": plan.__dict__ | {"rounds_done": plan.rounds},
        "scenarios": [s.__dict__ for s in load.scenarios(plan)],
        "measurements": measurements,
        "measured_seconds": 1.0,
        "stages": {"single": {"decode": [0.1, 100.0], "predict": [0.2, 100.0], "explain": [0.2, 100.0], "encode": [0.1, 100.0]}},
        "load_average": [[1.0, 1.0, 1.0]] * plan.rounds,
        "parity": {"cases": 150.0, "max_abs_diff": 2e-7},
        "sizes": {k: {"ours": 100, "peer": 10} for k in ("request_single", "response_single", "request_batch", "response_batch")},
        "prediction_only_offered": True,
    }


def test_report_from_synthetic_results(tmp_path: Path) -> None:
    plan = load.Plan(rounds=3)
    results = synthetic_tumor_results(plan)
    analysed = report.analyse(results)
    assert [sr.key for sr in analysed] == [
        "single",
        "concurrent-4",
        "concurrent-16",
        "concurrent-64",
        "prediction-only-16",
        "batch",
        "stream",
    ]
    for sr in analysed:
        assert sr.ratios[50] == pytest.approx(sr.ours.p50 / sr.peer.p50)
        assert sr.throughput_ratio == pytest.approx(1 / 1.5)
        assert sr.throughput_interval == pytest.approx((1 / 1.5, 1 / 1.5))  # no wall noise: every round agrees
        assert len(sr.rounds_p50) == plan.rounds
        # The floor runs beside every concurrency level, not beside batch, stream or prediction only.
        assert (sr.floor is not None) == sr.key.startswith(("single", "concurrent"))
        if sr.floor is not None:
            assert sr.floor_ratio == pytest.approx(0.5 / 1.5)
            assert sr.floor_cpu_ms_per_call == pytest.approx(1000 * 10 * 0.002 * 0.5 / 20)
    path = report.write(results, tmp_path)
    text = path.read_text()
    assert "## Ratios ours / peer" in text and "noisy" in text and "throughput ours / floor" in text
    assert "| one case, 16 concurrent clients | floor | 60 |" in text  # 3 rounds of 20 synthetic calls
    assert (tmp_path / "latency.png").stat().st_size > 0 and (tmp_path / "breakdown.png").stat().st_size > 0


def test_plan_scenarios_and_side_order() -> None:
    plan = load.Plan(rounds=1, single_calls=3, concurrency=(2, 8), concurrent_calls=8, batch_calls=1, stream_messages=5)
    keys = {s.key: s for s in load.scenarios(plan)}
    assert list(keys) == ["single", "concurrent-2", "concurrent-8", "prediction-only-16", "batch", "stream"]
    assert [plan.block_calls(s) for s in keys.values()] == [3, 10, 40, 80, 1, 5]  # at least 5 calls per client
    assert plan.calls_per_round() == 3 * (3 + 10 + 40) + 2 * (80 + 1 + 5)
    assert plan.calls_per_round(prediction_only=False) == 3 * (3 + 10 + 40) + 2 * (1 + 5)
    assert plan.max_clients == 16
    orders = [load.rotated(["a", "b", "c"], r) for r in range(4)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert load.cycle(["a", "b", "c"], 2, 4) == ["c", "a", "b", "c"]


def test_prediction_only_requests_follow_the_public_schema() -> None:
    from clinpred.services.api.tumor.v1 import tumor_pb2

    request = ours.classify_request(["a"], np.array([1.0]), "c1")
    asked = ours.prediction_only(request)
    enums = [f for f in tumor_pb2.ClassifyRequest.DESCRIPTOR.fields if f.enum_type is not None]
    none_fields = [f for f in enums if any(v.name.endswith("NONE") for v in f.enum_type.values)]
    if not none_fields:  # this server version has no detail level: the scenario is left out, not faked
        assert asked is None
        return
    assert asked is not None and asked.tumor_case == request.tumor_case
    value = getattr(asked, none_fields[0].name)
    assert none_fields[0].enum_type.values_by_number[value].name.endswith("NONE")


def test_the_sealed_call_benchmark_counts_the_bytes_sealing_adds(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import sealed
    from clinpred.services.common.sealed import ENC_BYTES

    monkeypatch.setattr("sys.argv", ["bench.sealed", "--calls", "3"])
    sealed.main()
    printed = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line.split("|")[2:5] for line in printed.splitlines() if line.startswith("| ")}
    plain_up, sealed_up, added_up = (int(cell.replace(",", "")) for cell in rows["request"])
    # The request gains the HPKE encapsulation, the 15-byte header, the AEAD tag, the creation time,
    # the response secret and the method name: fixed costs, whatever the request.
    method = len("/clinpred.tumor.v1.TumorClassificationService/Classify")
    assert added_up == sealed_up - plain_up
    assert ENC_BYTES + 15 + 16 + 8 + 32 + 2 + method <= added_up <= ENC_BYTES + 15 + 16 + 8 + 32 + 2 + method + 8
    assert "client: seal the request" in printed and "server: open it" in printed
