"""Windowed features at a scoring time from a patient's observation history.

One implementation serves training (many patients and scoring times at once,
vectorised with `searchsorted` over a sorted (patient, time) key) and online
scoring (one patient, one time, see `features_at`). Only
observations at or before the scoring time are used, so a feature can never
see the future.

Per signal (value columns of the observation schema):
    `<s>_last`             latest value at or before the scoring time
    `<s>_hours_since_last` staleness in hours (NaN: never measured)
    `<s>_mean_6h`          mean over (t-6h, t]
    `<s>_max_24h`, `<s>_min_24h`  extremes over (t-24h, t]
    `<s>_delta_24h`        latest minus the mean over (t-24h, t-6h]: the recent trend
    `<s>_vs_7d`            latest minus the mean over (t-7d, t-24h]: change from the child's own baseline
    `<s>_missing_24h`      1 when no value in (t-24h, t]
Which of these exist per signal is in `SIGNAL_FEATURES`. Also age-normalised
z-scores of heart and respiratory rate against Fleming centiles, count of
fever readings (>= 38.0 C) and of observation sets in 24 h, days since the
last chemotherapy, patient context, and the Bedside PEWS of the latest items
(each item's latest value if at most 24 h old, else scored 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from clinpred.pilots.deterioration.observations import (
    AVPU_LEVELS,
    DIAGNOSIS_GROUPS,
    SIGNALS,
    TREATMENT_INTENSITIES,
    PatientHistory,
)
from clinpred.pilots.deterioration.pews import bedside_pews_items
from clinpred.pilots.deterioration.reference_ranges import Signal, fleming_z

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EPOCH: Final = datetime(2025, 1, 1, tzinfo=UTC)
HOURS_PER_YEAR: Final = 365.25 * 24.0
SHORT_WINDOW_H: Final = 6.0
DAY_WINDOW_H: Final = 24.0
BASELINE_WINDOW_H: Final = 168.0
PEWS_MAX_AGE_H: Final = 24.0
FEVER_C: Final = 38.0

_FULL = ("last", "hours_since_last", "mean_6h", "max_24h", "min_24h", "delta_24h", "vs_7d", "missing_24h")
SIGNAL_FEATURES: Final[dict[str, tuple[str, ...]]] = {
    "heart_rate": _FULL,
    "respiratory_rate": _FULL,
    "temperature_c": _FULL,
    "spo2": _FULL,
    "systolic_bp": ("last", "hours_since_last", "min_24h", "vs_7d", "missing_24h"),
    "capillary_refill_s": ("last", "hours_since_last", "max_24h"),
    "respiratory_effort": ("last", "hours_since_last", "max_24h"),
    "avpu": ("hours_since_last", "max_24h"),
    "oxygen_flow_l_min": ("last",),
    "neutrophils_g_l": ("last", "hours_since_last"),
    "crp_mg_l": ("last", "hours_since_last"),
    "haemoglobin_g_l": ("last", "hours_since_last"),
    "platelets_g_l": ("last", "hours_since_last"),
}
PEWS_INPUTS: Final = (
    "heart_rate",
    "systolic_bp",
    "respiratory_rate",
    "capillary_refill_s",
    "respiratory_effort",
    "spo2",
    "oxygen_flow_l_min",
)
DERIVED_FEATURES: Final = (
    "heart_rate_z_last",
    "heart_rate_z_max_24h",
    "respiratory_rate_z_last",
    "respiratory_rate_z_max_24h",
    "fever_readings_24h",
    "observation_sets_24h",
    "pews_total",
)
CONTEXT_FEATURES: Final = (
    "age_years",
    "days_since_chemo",
    "treatment_intensity",
    "central_line",
    *(f"diagnosis_{group}" for group in DIAGNOSIS_GROUPS),
)
FEATURE_NAMES: Final[tuple[str, ...]] = (
    *(f"{signal}_{kind}" for signal, kinds in SIGNAL_FEATURES.items() for kind in kinds),
    *DERIVED_FEATURES,
    *CONTEXT_FEATURES,
)
SIGNAL_COLUMNS: Final = tuple(SIGNAL_FEATURES)
_NUMERIC_SIGNALS: Final = tuple(name for name in SIGNAL_COLUMNS if name != "avpu")
# The longest any feature aggregates over; before it, only each signal's latest value counts (`last`,
# `hours_since_last`), so a score reads this much of a history and one observation per signal before it.
WIDEST_FEATURE_WINDOW: Final = timedelta(hours=BASELINE_WINDOW_H)


@dataclass(frozen=True)
class ObservationArrays:
    """Observations sorted by (patient, time): `hours` since EPOCH, one float array per signal (NaN = missing)."""

    patient_index: IntArray
    hours: FloatArray
    values: dict[str, FloatArray]


@dataclass(frozen=True)
class PatientContext:
    """Per-patient arrays indexed by patient index, plus chemotherapy times sorted by (patient, time)."""

    birth_hours: FloatArray
    treatment_intensity: FloatArray
    central_line: FloatArray
    diagnosis: IntArray
    chemo_patient: IntArray
    chemo_hours: FloatArray


def to_hours(timestamps: pd.Series | pd.DatetimeIndex | Sequence[datetime]) -> FloatArray:
    """UTC timestamps to float hours since EPOCH."""
    index = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True))
    nanos = index.as_unit("ns").asi8.astype(np.float64)
    return (nanos - pd.Timestamp(EPOCH).value) / 3.6e12


def _context_codes(patients: pd.DataFrame) -> tuple[FloatArray, FloatArray, IntArray]:
    intensity = patients["treatment_intensity"].map(TREATMENT_INTENSITIES.index).to_numpy(np.float64)
    central = patients["central_line"].astype(bool).to_numpy(np.float64)
    diagnosis = patients["diagnosis_group"].map(DIAGNOSIS_GROUPS.index).to_numpy(np.int64)
    return np.asarray(intensity, np.float64), np.asarray(central, np.float64), np.asarray(diagnosis, np.int64)


def arrays_from_tables(
    observations: pd.DataFrame, patients: pd.DataFrame, chemotherapy: pd.DataFrame | None
) -> tuple[ObservationArrays, PatientContext, dict[str, int]]:
    """Arrays for `compute_features` from loaded tables; also returns patient_id -> patient index."""
    patient_ids = patients["patient_id"].astype(str).tolist()
    index_of = {pid: i for i, pid in enumerate(patient_ids)}
    obs = observations.assign(_p=observations["patient_id"].astype(str).map(index_of))
    obs = obs[obs["_p"].notna()]
    hours = to_hours(obs["observed_at"])
    pidx = obs["_p"].to_numpy(np.int64)
    order = np.lexsort((hours, pidx))
    values: dict[str, FloatArray] = {}
    for name in SIGNAL_COLUMNS:
        if name == "avpu":
            column = (
                obs["avpu"]
                .astype("string")
                .str.upper()
                .map(lambda v: float(AVPU_LEVELS.index(v)) if isinstance(v, str) and v in AVPU_LEVELS else np.nan)
            )
            values[name] = column.to_numpy(np.float64)[order]
        else:
            values[name] = obs[name].to_numpy(np.float64, na_value=np.nan)[order]
    arrays = ObservationArrays(pidx[order], hours[order], values)
    intensity, central, diagnosis = _context_codes(patients)
    if chemotherapy is not None and len(chemotherapy):
        chemo = chemotherapy[chemotherapy["patient_id"].astype(str).isin(index_of)]
        unordered_p = chemo["patient_id"].astype(str).map(index_of).to_numpy(np.int64)
        unordered_h = to_hours(chemo["administered_at"])
        chemo_order = np.lexsort((unordered_h, unordered_p))
        chemo_p: IntArray = np.asarray(unordered_p[chemo_order], dtype=np.int64)
        chemo_h: FloatArray = unordered_h[chemo_order]
    else:
        chemo_p, chemo_h = np.zeros(0, np.int64), np.zeros(0, np.float64)
    context = PatientContext(
        birth_hours=to_hours(patients["birth_date"]),
        treatment_intensity=intensity,
        central_line=central,
        diagnosis=diagnosis,
        chemo_patient=chemo_p,
        chemo_hours=chemo_h,
    )
    return arrays, context, index_of


def arrays_from_history(history: PatientHistory) -> tuple[ObservationArrays, PatientContext]:
    """The same arrays for one patient (index 0), built without pandas for speed."""
    observations = sorted(history.observations, key=lambda o: o.observed_at)
    epoch = EPOCH.timestamp()
    hours = np.array([(o.observed_at.timestamp() - epoch) / 3600.0 for o in observations], dtype=np.float64)
    # One C-level attribute fetch per observation; numpy reads None as NaN.
    numeric = attrgetter(*_NUMERIC_SIGNALS)
    table = np.array([numeric(o) for o in observations], dtype=np.float64).reshape(len(observations), len(_NUMERIC_SIGNALS))
    values: dict[str, FloatArray] = {name: table[:, k].copy() for k, name in enumerate(_NUMERIC_SIGNALS)}
    values["avpu"] = np.array(
        [
            float(AVPU_LEVELS.index(o.avpu.strip().upper())) if o.avpu and o.avpu.strip().upper() in AVPU_LEVELS else np.nan
            for o in observations
        ],
        dtype=np.float64,
    )
    values = {name: values[name] for name in SIGNAL_COLUMNS}
    patient = history.patient
    birth = datetime(patient.birth_date.year, patient.birth_date.month, patient.birth_date.day, tzinfo=UTC)
    chemo = np.sort(np.array([(c.timestamp() - epoch) / 3600.0 for c in history.chemotherapy_at], dtype=np.float64))
    context = PatientContext(
        birth_hours=np.array([(birth.timestamp() - epoch) / 3600.0]),
        treatment_intensity=np.array([float(TREATMENT_INTENSITIES.index(patient.treatment_intensity))]),
        central_line=np.array([1.0 if patient.central_line else 0.0]),
        diagnosis=np.array([DIAGNOSIS_GROUPS.index(patient.diagnosis_group)], dtype=np.int64),
        chemo_patient=np.zeros(chemo.shape, dtype=np.int64),
        chemo_hours=chemo,
    )
    return ObservationArrays(np.zeros(hours.shape, dtype=np.int64), hours, values), context


# Up to this many scoring points, window extremes are reduced point by point (see `_KeyedSeries.extreme`).
_ROWS_SCANNED_ONE_BY_ONE: Final = 16


class _KeyedSeries:
    """Non-missing values of one signal, addressable by (patient, time) ranges."""

    def __init__(self, patient: IntArray, hours: FloatArray, values: FloatArray, span: float, origin: float) -> None:
        present = ~np.isnan(values)
        self.keys = patient[present] * span + (hours[present] - origin)
        self.values = values[present]
        self.cumsum = np.concatenate([[0.0], np.cumsum(self.values)])
        self.span, self.origin = span, origin

    def bounds(self, patient: IntArray, hours: FloatArray, back_hours: float) -> tuple[IntArray, IntArray]:
        """Index range [lo, hi) of values in (t - back_hours, t] of the same patient."""
        base = patient * self.span
        hi = np.searchsorted(self.keys, base + (hours - self.origin), side="right")
        lo = np.searchsorted(self.keys, base + (hours - back_hours - self.origin), side="right")
        return lo.astype(np.int64), hi.astype(np.int64)

    def patient_start(self, patient: IntArray) -> IntArray:
        return np.searchsorted(self.keys, patient * self.span, side="left").astype(np.int64)

    def mean(self, lo: IntArray, hi: IntArray) -> FloatArray:
        count = hi - lo
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, (self.cumsum[hi] - self.cumsum[lo]) / np.maximum(count, 1), np.nan)

    def extreme(self, lo: IntArray, hi: IntArray, largest: bool) -> FloatArray:
        count = hi - lo
        out = np.full(lo.shape, np.nan)
        if not len(self.values):
            return out
        if len(lo) <= _ROWS_SCANNED_ONE_BY_ONE:
            # A few scoring points (online: one): one reduction per point beats a numpy step per value.
            reduce = np.max if largest else np.min
            for row, (start, stop) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
                if stop > start:
                    out[row] = reduce(self.values[start:stop])
            return out
        pick = np.fmax if largest else np.fmin
        for k in range(int(count.max(initial=0))):
            inside = k < count
            candidate = np.where(inside, self.values[np.minimum(lo + k, len(self.values) - 1)], np.nan)
            out = pick(out, candidate)
        return out

    def count_at_least(self, lo: IntArray, hi: IntArray, threshold: float) -> FloatArray:
        flags = np.concatenate([[0.0], np.cumsum(self.values >= threshold)])
        return (flags[hi] - flags[lo]).astype(np.float64)


def compute_features(
    observations: ObservationArrays,
    context: PatientContext,
    score_patient: IntArray,
    score_hours: FloatArray,
) -> dict[str, FloatArray]:
    """Every feature in FEATURE_NAMES for each (patient index, hours since EPOCH) scoring point."""
    score_patient = np.asarray(score_patient, dtype=np.int64)
    score_hours = np.asarray(score_hours, dtype=np.float64)
    all_hours = np.concatenate([observations.hours, score_hours, [0.0]])
    origin = float(all_hours.min()) - 2 * BASELINE_WINDOW_H
    span = float(all_hours.max()) - origin + 2 * BASELINE_WINDOW_H
    out: dict[str, FloatArray] = {}
    latest: dict[str, tuple[FloatArray, FloatArray]] = {}
    for name, kinds in SIGNAL_FEATURES.items():
        series = _KeyedSeries(observations.patient_index, observations.hours, observations.values[name], span, origin)
        start = series.patient_start(score_patient)
        lo_day, hi = series.bounds(score_patient, score_hours, DAY_WINDOW_H)
        lo_day = np.maximum(lo_day, start)
        has_last = hi > start
        last_index = np.clip(hi - 1, 0, max(len(series.values) - 1, 0))
        last = np.where(has_last, series.values[last_index] if len(series.values) else np.nan, np.nan)
        last_key = series.keys[last_index] if len(series.keys) else np.zeros(hi.shape)
        hours_since = np.where(has_last, score_patient * span + (score_hours - origin) - last_key, np.nan)
        latest[name] = (last, hours_since)
        columns: dict[str, FloatArray] = {"last": last, "hours_since_last": hours_since}
        if "mean_6h" in kinds:
            lo_short, _ = series.bounds(score_patient, score_hours, SHORT_WINDOW_H)
            columns["mean_6h"] = series.mean(np.maximum(lo_short, start), hi)
        if "max_24h" in kinds or name in ("heart_rate", "respiratory_rate"):
            columns["max_24h"] = series.extreme(lo_day, hi, largest=True)
        if "min_24h" in kinds:
            columns["min_24h"] = series.extreme(lo_day, hi, largest=False)
        if "delta_24h" in kinds:
            lo_short, _ = series.bounds(score_patient, score_hours, SHORT_WINDOW_H)
            columns["delta_24h"] = last - series.mean(lo_day, np.maximum(lo_short, lo_day))
        if "vs_7d" in kinds:
            lo_week, _ = series.bounds(score_patient, score_hours, BASELINE_WINDOW_H)
            columns["vs_7d"] = last - series.mean(np.maximum(lo_week, start), lo_day)
        if "missing_24h" in kinds:
            columns["missing_24h"] = (hi == lo_day).astype(np.float64)
        if name == "temperature_c":
            out["fever_readings_24h"] = series.count_at_least(lo_day, hi, FEVER_C)
        for kind in kinds:
            out[f"{name}_{kind}"] = columns[kind]
        if name in ("heart_rate", "respiratory_rate"):
            out[f"{name}_max_24h_raw"] = columns["max_24h"]

    age = (score_hours - context.birth_hours[score_patient]) / HOURS_PER_YEAR
    rates: tuple[Signal, ...] = ("heart_rate", "respiratory_rate")
    for name in rates:
        out[f"{name}_z_last"] = fleming_z(name, out[f"{name}_last"], age)
        out[f"{name}_z_max_24h"] = fleming_z(name, out.pop(f"{name}_max_24h_raw"), age)

    any_vital = np.zeros(observations.hours.shape, dtype=bool)
    for name in (*PEWS_INPUTS, "temperature_c"):
        any_vital |= ~np.isnan(observations.values[name])
    sets = _KeyedSeries(observations.patient_index, observations.hours, np.where(any_vital, 1.0, np.nan), span, origin)
    lo_sets, hi_sets = sets.bounds(score_patient, score_hours, DAY_WINDOW_H)
    out["observation_sets_24h"] = (hi_sets - np.maximum(lo_sets, sets.patient_start(score_patient))).astype(np.float64)

    fresh = {name: np.where(latest[name][1] <= PEWS_MAX_AGE_H, latest[name][0], np.nan) for name in PEWS_INPUTS}
    out["pews_total"] = bedside_pews_items(age, *(fresh[name] for name in PEWS_INPUTS))["total"].astype(np.float64)

    out["age_years"] = age
    out["days_since_chemo"] = _days_since_chemo(context, score_patient, score_hours)
    out["treatment_intensity"] = context.treatment_intensity[score_patient]
    out["central_line"] = context.central_line[score_patient]
    diagnosis = context.diagnosis[score_patient]
    for code, group in enumerate(DIAGNOSIS_GROUPS):
        out[f"diagnosis_{group}"] = (diagnosis == code).astype(np.float64)
    return {name: out[name] for name in FEATURE_NAMES}


def _days_since_chemo(context: PatientContext, patient: IntArray, hours: FloatArray) -> FloatArray:
    if not len(context.chemo_hours):
        return np.full(hours.shape, np.nan)
    span = 1e7  # hours; far beyond any follow-up, keeps patients' key ranges apart
    keys = context.chemo_patient * span + context.chemo_hours
    query = patient * span + hours
    position = np.searchsorted(keys, query, side="right") - 1
    safe = np.clip(position, 0, None)
    same_patient = (position >= 0) & (context.chemo_patient[safe] == patient)
    return np.where(same_patient, (hours - context.chemo_hours[safe]) / 24.0, np.nan)


def feature_matrix(features: dict[str, FloatArray]) -> npt.NDArray[np.float32]:
    """Columns in FEATURE_NAMES order, float32 (the ONNX model's input type)."""
    return np.column_stack([features[name] for name in FEATURE_NAMES]).astype(np.float32)


def features_at(history: PatientHistory, at: datetime) -> dict[str, FloatArray]:
    """Online path: the features of one patient at one time, as one-row columns (what `feature_matrix` takes)."""
    arrays, context = arrays_from_history(history)
    hours = (at.timestamp() - EPOCH.timestamp()) / 3600.0
    return compute_features(arrays, context, np.zeros(1, dtype=np.int64), np.array([hours]))


def features_for_history(history: PatientHistory, at: datetime) -> dict[str, float]:
    """The features of one patient at one time, by name."""
    return {name: float(values[0]) for name, values in features_at(history, at).items()}


FEATURE_UNITS: Final[dict[str, str]] = {
    **{
        f"{signal}_{kind}": ("h" if kind == "hours_since_last" else "{flag}" if kind == "missing_24h" else SIGNALS[signal].unit)
        for signal, kinds in SIGNAL_FEATURES.items()
        for kind in kinds
    },
    "heart_rate_z_last": "{z}",
    "heart_rate_z_max_24h": "{z}",
    "respiratory_rate_z_last": "{z}",
    "respiratory_rate_z_max_24h": "{z}",
    "fever_readings_24h": "{count}",
    "observation_sets_24h": "{count}",
    "pews_total": "{score}",
    "age_years": "a",
    "days_since_chemo": "d",
    "treatment_intensity": "{0 low,1 medium,2 high}",
    "central_line": "{flag}",
    **{f"diagnosis_{g}": "{flag}" for g in DIAGNOSIS_GROUPS},
}

_KIND_WORDS: Final = {
    "last": "latest {s}",
    "hours_since_last": "hours since the last {s}",
    "mean_6h": "mean {s} over 6 h",
    "max_24h": "highest {s} in 24 h",
    "min_24h": "lowest {s} in 24 h",
    "delta_24h": "change in {s} over the last day",
    "vs_7d": "{s} compared with the child's own week",
    "missing_24h": "no {s} in 24 h",
}
FEATURE_DESCRIPTIONS: Final[dict[str, str]] = {
    **{
        f"{signal}_{kind}": _KIND_WORDS[kind].format(s=SIGNALS[signal].description)
        for signal, kinds in SIGNAL_FEATURES.items()
        for kind in kinds
    },
    "heart_rate_z_last": "heart rate for age (z-score vs Fleming centiles)",
    "heart_rate_z_max_24h": "highest heart rate for age in 24 h (z-score)",
    "respiratory_rate_z_last": "respiratory rate for age (z-score vs Fleming centiles)",
    "respiratory_rate_z_max_24h": "highest respiratory rate for age in 24 h (z-score)",
    "fever_readings_24h": "number of readings >= 38.0 C in 24 h",
    "observation_sets_24h": "number of observation sets in 24 h",
    "pews_total": "Bedside PEWS of the latest observations",
    "age_years": "age",
    "days_since_chemo": "days since the last chemotherapy",
    "treatment_intensity": "treatment intensity",
    "central_line": "central venous line",
    **{f"diagnosis_{g}": f"diagnosis group {g.replace('_', ' ')}" for g in DIAGNOSIS_GROUPS},
}
