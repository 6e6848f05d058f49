"""Bedside PEWS against the published table, at every band edge of every item and age band.

The expected bounds are parsed from the table's text as it appears in
REFERENCES.md (Parshuram 2009, Table 1), not from the implementation's tuples.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from clinpred.pilots.deterioration.observations import Observation, latest_measurements
from clinpred.pilots.deterioration.pews import AGE_BANDS, ITEM_SIGNALS, ITEMS, bedside_pews, bedside_pews_items

# Copied verbatim from /work/shared/clinical/REFERENCES.md.
PUBLISHED = {
    "0 to <3 months": (
        ">110 and <150 / >=150 or <=110 / >=180 or <=90 / >=190 or <=80",
        ">60 and <80 / >=80 or <=60 / >=100 or <=50 / >=130 or <=45",
        ">29 and <61 / >=61 or <=29 / >=81 or <=19 / >=91 or <=15",
    ),
    "3 to <12 months": (
        ">100 and <150 / >=150 or <=100 / >=170 or <=80 / >=180 or <=70",
        ">80 and <100 / >=100 or <=80 / >=120 or <=70 / >=150 or <=60",
        ">24 and <51 / >=51 or <=24 / >=71 or <=19 / >=81 or <=15",
    ),
    "1 to 4 years": (
        ">90 and <120 / >=120 or <=90 / >=150 or <=70 / >=170 or <=60",
        ">90 and <110 / >=110 or <=90 / >=125 or <=75 / >=160 or <=65",
        ">19 and <41 / >=41 or <=19 / >=61 or <=15 / >=71 or <=12",
    ),
    ">4 to 12 years": (
        ">70 and <110 / >=110 or <=70 / >=130 or <=60 / >=150 or <=50",
        ">90 and <120 / >=120 or <=90 / >=140 or <=80 / >=170 or <=70",
        ">19 and <31 / >=31 or <=19 / >=41 or <=14 / >=51 or <=10",
    ),
    ">12 years": (
        ">60 and <100 / >=100 or <=60 / >=120 or <=50 / >=140 or <=40",
        ">100 and <130 / >=130 or <=100 / >=150 or <=85 / >=190 or <=75",
        ">11 and <17 / >=17 or <=11 / >=23 or <=10 / >=30 or <=9",
    ),
}
BANDED_ITEMS = ("heart_rate", "systolic_bp", "respiratory_rate")
# Ages on both sides of every age-band edge, with the band each belongs to.
AGES = (
    (0.0, 0),
    (0.2499, 0),
    (0.25, 1),
    (0.9999, 1),
    (1.0, 2),
    (4.0, 2),
    (4.0001, 3),
    (12.0, 3),
    (12.0001, 4),
    (17.9, 4),
)


def _bounds(cell: str) -> dict[int, tuple[float, float]]:
    """{score: (upper bound, lower bound)} for scores 1, 2 and 4 of one table cell."""
    parts = [p.strip() for p in cell.split("/")]
    zero = re.fullmatch(r">(\d+) and <(\d+)", parts[0])
    assert zero is not None
    out = {}
    for score, part in zip((1, 2, 4), parts[1:], strict=True):
        match = re.fullmatch(r">=(\d+) or <=(\d+)", part)
        assert match is not None
        out[score] = (float(match.group(1)), float(match.group(2)))
    assert (float(zero.group(2)), float(zero.group(1))) == out[1]
    return out


def _cases() -> list[tuple[float, str, float, int]]:
    previous = {1: 0, 2: 1, 4: 2}
    cases = []
    for age, band in AGES:
        cells = PUBLISHED[AGE_BANDS[band]]
        for item, cell in zip(BANDED_ITEMS, cells, strict=True):
            for score, (upper, lower) in _bounds(cell).items():
                cases += [
                    (age, item, upper, score),
                    (age, item, upper - 0.5, previous[score]),
                    (age, item, lower, score),
                    (age, item, lower + 0.5, previous[score]),
                ]
    return cases


@pytest.mark.parametrize(("age", "item", "value", "expected"), _cases())
def test_banded_item_edges(age: float, item: str, value: float, expected: int) -> None:
    score = bedside_pews(age, **{item: value})
    assert getattr(score, item) == expected
    assert score.total == expected


@pytest.mark.parametrize(("age", "band"), AGES)
def test_age_band_edges(age: float, band: int) -> None:
    assert bedside_pews(age).age_band == AGE_BANDS[band]


@pytest.mark.parametrize(("seconds", "expected"), [(0.5, 0), (2.9, 0), (2.99, 0), (3.0, 4), (3.5, 4), (8.0, 4)])
def test_capillary_refill_edges(seconds: float, expected: int) -> None:
    assert bedside_pews(5.0, capillary_refill_s=seconds).capillary_refill == expected


@pytest.mark.parametrize(("effort", "expected"), [(0, 0), (1, 1), (2, 2), (3, 4)])
def test_respiratory_effort_levels(effort: float, expected: int) -> None:
    assert bedside_pews(5.0, respiratory_effort=effort).respiratory_effort == expected


@pytest.mark.parametrize(("spo2", "expected"), [(100, 0), (95, 0), (94.5, 0), (94, 1), (91, 1), (90.5, 1), (90, 2), (80, 2)])
def test_oxygen_saturation_edges(spo2: float, expected: int) -> None:
    assert bedside_pews(5.0, spo2=spo2).oxygen_saturation == expected


@pytest.mark.parametrize(
    ("flow", "fio2", "expected"),
    [
        (0.0, None, 0),
        (0.1, None, 2),
        (3.9, None, 2),
        (4.0, None, 4),
        (10.0, None, 4),
        (None, 21, 0),
        (None, 49, 2),
        (None, 50, 4),
    ],
)
def test_oxygen_therapy_edges(flow: float | None, fio2: float | None, expected: int) -> None:
    assert bedside_pews(5.0, oxygen_flow_l_min=flow, oxygen_fio2_percent=fio2).oxygen_therapy == expected


def test_missing_items_score_zero_and_are_named() -> None:
    score = bedside_pews(5.0, heart_rate=160)
    assert score.total == 4
    assert set(score.missing_items) == set(ITEMS) - {"heart_rate"}


def test_total_is_sum_of_items_and_maximum_is_26() -> None:
    worst = bedside_pews(
        5.0,
        heart_rate=200,
        systolic_bp=60,
        respiratory_rate=60,
        capillary_refill_s=5,
        respiratory_effort=3,
        spo2=85,
        oxygen_flow_l_min=6,
    )
    assert worst.total == sum(worst.items().values()) == 26
    assert worst.missing_items == ()


def test_vectorised_equals_scalar() -> None:
    rng = np.random.default_rng(3)
    n = 300
    age = rng.uniform(0, 18, n)
    columns = {
        "heart_rate": rng.uniform(30, 220, n),
        "systolic_bp": rng.uniform(40, 200, n),
        "respiratory_rate": rng.uniform(5, 100, n),
        "capillary_refill_s": rng.uniform(0, 6, n),
        "respiratory_effort": rng.integers(0, 4, n).astype(float),
        "spo2": rng.uniform(80, 100, n),
        "oxygen_flow_l_min": rng.choice([0.0, 1.0, 5.0], n),
    }
    batch = bedside_pews_items(age, *columns.values())
    for k in range(n):
        single = bedside_pews(float(age[k]), **{name: float(v[k]) for name, v in columns.items()})
        assert single.total == batch["total"][k]


def test_each_item_is_scored_from_the_newest_measurement_within_the_window() -> None:
    at = datetime(2026, 11, 1, 19, 0, tzinfo=UTC)
    window = timedelta(hours=24)
    observations = [
        Observation("too-old", at - window - timedelta(seconds=1), heart_rate=90.0, systolic_bp=100.0),
        Observation("edge", at - window, systolic_bp=95.0),
        Observation("evening-a", at - timedelta(hours=1), heart_rate=150.0),
        Observation("evening-b", at - timedelta(hours=1), heart_rate=151.0, spo2=92.0),
        Observation("later", at + timedelta(seconds=1), heart_rate=180.0, respiratory_rate=60.0),
    ]
    latest = latest_measurements(observations, ("heart_rate", "systolic_bp", "spo2", "respiratory_rate"), at, window)
    # The window includes its edge; of two equally new sets the first counts; nothing after `at` counts.
    assert {signal: obs.observation_id for signal, obs in latest.items()} == {
        "heart_rate": "evening-a",
        "systolic_bp": "edge",
        "spo2": "evening-b",
    }
    assert set(ITEM_SIGNALS) == set(ITEMS) and len(set(ITEM_SIGNALS.values())) == len(ITEMS)
