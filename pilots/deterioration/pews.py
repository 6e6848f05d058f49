"""Bedside Paediatric Early Warning Score: Parshuram et al., Crit Care 2009;13:R135, Table 1.

Seven items scored 0, 1, 2 or 4 (total 0-26). For heart rate, systolic blood
pressure and respiratory rate each age band has an "upper" and a "lower"
bound per score: a value scores 4 if >= upper4 or <= lower4, else 2 if
>= upper2 or <= lower2, else 1 if >= upper1 or <= lower1, else 0 (the 0
range is the open interval between lower1 and upper1). Both bounds are
inclusive, exactly as in the table's ">=" and "<=".

Age bands, with age as exact decimal years (3 months = 0.25 years):
0 <= age < 0.25 ("0 to <3 months"), 0.25 <= age < 1 ("3 to <12 months"),
1 <= age <= 4 ("1 to 4 years"), 4 < age <= 12 (">4 to 12 years"),
age > 12 (">12 years").

Other items: capillary refill < 3 s = 0, >= 3 s = 4; respiratory effort
normal/mild/moderate/severe-or-apnoea = 0/1/2/4; SpO2 > 94 % = 0, 90 < SpO2 <= 94
= 1 (the table's "91-94" for integer readings), <= 90 = 2; oxygen therapy room
air = 0, flow < 4 L/min (or FiO2 < 50 %) = 2, >= 4 L/min (or >= 50 %) = 4.

A missing item scores 0, which is how the score is used at the bedside (an
unmeasured item adds nothing); `missing_items` says which ones were missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

AGE_BANDS: Final = ("0 to <3 months", "3 to <12 months", "1 to 4 years", ">4 to 12 years", ">12 years")
ITEMS: Final = (
    "heart_rate",
    "systolic_bp",
    "respiratory_rate",
    "capillary_refill",
    "respiratory_effort",
    "oxygen_saturation",
    "oxygen_therapy",
)
# The observation signal each item scores (oxygen therapy: the flow; FiO2 is not an observation signal).
ITEM_SIGNALS: Final = {
    "heart_rate": "heart_rate",
    "systolic_bp": "systolic_bp",
    "respiratory_rate": "respiratory_rate",
    "capillary_refill": "capillary_refill_s",
    "respiratory_effort": "respiratory_effort",
    "oxygen_saturation": "spo2",
    "oxygen_therapy": "oxygen_flow_l_min",
}

# Per age band: (upper1, upper2, upper4), (lower1, lower2, lower4).
_HEART_RATE: Final = (
    ((150, 180, 190), (110, 90, 80)),
    ((150, 170, 180), (100, 80, 70)),
    ((120, 150, 170), (90, 70, 60)),
    ((110, 130, 150), (70, 60, 50)),
    ((100, 120, 140), (60, 50, 40)),
)
_SYSTOLIC_BP: Final = (
    ((80, 100, 130), (60, 50, 45)),
    ((100, 120, 150), (80, 70, 60)),
    ((110, 125, 160), (90, 75, 65)),
    ((120, 140, 170), (90, 80, 70)),
    ((130, 150, 190), (100, 85, 75)),
)
_RESPIRATORY_RATE: Final = (
    ((61, 81, 91), (29, 19, 15)),
    ((51, 71, 81), (24, 19, 15)),
    ((41, 61, 71), (19, 15, 12)),
    ((31, 41, 51), (19, 14, 10)),
    ((17, 23, 30), (11, 10, 9)),
)


@dataclass(frozen=True)
class BedsidePews:
    """Total and item breakdown of one Bedside PEWS.

    `values` pairs each item with the observed value it scored (None when not
    measured); for oxygen therapy the flow in L/min, or FiO2 in % when given.
    """

    total: int
    age_band: str
    heart_rate: int
    systolic_bp: int
    respiratory_rate: int
    capillary_refill: int
    respiratory_effort: int
    oxygen_saturation: int
    oxygen_therapy: int
    missing_items: tuple[str, ...]
    values: tuple[tuple[str, float | None], ...] = ()

    def items(self) -> dict[str, int]:
        return {item: int(getattr(self, item)) for item in ITEMS}

    def value_of(self, item: str) -> float | None:
        return dict(self.values).get(item)


def age_band_index(age_years: npt.ArrayLike) -> IntArray:
    """Index into AGE_BANDS for each age (exact decimal years)."""
    age = np.asarray(age_years, dtype=np.float64)
    band = np.where(age < 0.25, 0, np.where(age < 1.0, 1, np.where(age <= 4.0, 2, np.where(age <= 12.0, 3, 4))))
    return band.astype(np.int64)


BandTable = tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...]


def _banded_item(values: FloatArray, band: IntArray, table: BandTable) -> IntArray:
    bounds = np.asarray(table, dtype=np.float64)[band]  # shape (n, 2, 3)
    upper, lower = bounds[:, 0, :], bounds[:, 1, :]
    score = np.zeros(values.shape, dtype=np.int64)
    for column, points in ((0, 1), (1, 2), (2, 4)):
        hit = (values >= upper[:, column]) | (values <= lower[:, column])
        score = np.where(hit, points, score)
    return np.where(np.isnan(values), 0, score)


def bedside_pews_items(
    age_years: npt.ArrayLike,
    heart_rate: npt.ArrayLike,
    systolic_bp: npt.ArrayLike,
    respiratory_rate: npt.ArrayLike,
    capillary_refill_s: npt.ArrayLike,
    respiratory_effort: npt.ArrayLike,
    spo2: npt.ArrayLike,
    oxygen_flow_l_min: npt.ArrayLike,
    oxygen_fio2_percent: npt.ArrayLike | None = None,
) -> dict[str, IntArray]:
    """Vectorised item scores (NaN = not measured = 0); keys are ITEMS plus "total"."""
    age = np.atleast_1d(np.asarray(age_years, dtype=np.float64))
    band = age_band_index(age)

    def as_array(values: npt.ArrayLike) -> FloatArray:
        return np.broadcast_to(np.asarray(values, dtype=np.float64), age.shape).astype(np.float64)

    crt = as_array(capillary_refill_s)
    effort = as_array(respiratory_effort)
    sat = as_array(spo2)
    flow = as_array(oxygen_flow_l_min)
    fio2 = as_array(np.nan if oxygen_fio2_percent is None else oxygen_fio2_percent)

    effort_points = np.select([effort >= 3, effort >= 2, effort >= 1], [4, 2, 1], default=0)
    high_o2 = (flow >= 4) | (fio2 >= 50)
    any_o2 = (flow > 0) | (fio2 > 21)
    items: dict[str, IntArray] = {
        "heart_rate": _banded_item(as_array(heart_rate), band, _HEART_RATE),
        "systolic_bp": _banded_item(as_array(systolic_bp), band, _SYSTOLIC_BP),
        "respiratory_rate": _banded_item(as_array(respiratory_rate), band, _RESPIRATORY_RATE),
        "capillary_refill": np.where(crt >= 3, 4, 0).astype(np.int64),
        "respiratory_effort": np.where(np.isnan(effort), 0, effort_points).astype(np.int64),
        "oxygen_saturation": np.select([sat <= 90, sat <= 94], [2, 1], default=0).astype(np.int64),
        "oxygen_therapy": np.select([high_o2, any_o2], [4, 2], default=0).astype(np.int64),
    }
    items["total"] = np.sum(np.stack([items[name] for name in ITEMS]), axis=0).astype(np.int64)
    return items


def bedside_pews(
    age_years: float,
    *,
    heart_rate: float | None = None,
    systolic_bp: float | None = None,
    respiratory_rate: float | None = None,
    capillary_refill_s: float | None = None,
    respiratory_effort: float | None = None,
    spo2: float | None = None,
    oxygen_flow_l_min: float | None = None,
    oxygen_fio2_percent: float | None = None,
) -> BedsidePews:
    """Bedside PEWS of one observation set; a None item is not measured and scores 0."""

    def value(v: float | None) -> float:
        return np.nan if v is None else float(v)

    items = bedside_pews_items(
        age_years,
        value(heart_rate),
        value(systolic_bp),
        value(respiratory_rate),
        value(capillary_refill_s),
        value(respiratory_effort),
        value(spo2),
        value(oxygen_flow_l_min),
        value(oxygen_fio2_percent),
    )
    inputs = {
        "heart_rate": heart_rate,
        "systolic_bp": systolic_bp,
        "respiratory_rate": respiratory_rate,
        "capillary_refill": capillary_refill_s,
        "respiratory_effort": respiratory_effort,
        "oxygen_saturation": spo2,
        "oxygen_therapy": oxygen_flow_l_min if oxygen_fio2_percent is None else oxygen_fio2_percent,
    }
    return BedsidePews(
        total=int(items["total"][0]),
        age_band=AGE_BANDS[int(age_band_index(age_years)[()])],
        missing_items=tuple(name for name, v in inputs.items() if v is None),
        values=tuple((name, None if v is None else float(v)) for name, v in inputs.items()),
        **{name: int(items[name][0]) for name in ITEMS},
    )
