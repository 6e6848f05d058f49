"""Held-out evaluation of the deterioration model against the standard of care, with patient-bootstrap CIs.

Everything here is computed on the same test children and scoring times:

- Baselines. Bedside PEWS (Parshuram 2009) as scored from the home observations;
  the febrile-neutropenia pathway at home (REFERENCES.md: admit every febrile
  child with neutropenia or expected neutropenia within 7 days of
  chemotherapy), a binary rule with one operating point; and a transparent
  logistic regression on PEWS and the pathway's signals (maximum temperature
  in 24 h, the latest neutrophil count, the number of fever readings in 24 h),
  fitted on the training children.
- Per outcome (any deterioration, sepsis, PICU transfer, unplanned admission):
  AUROC and AUPRC; per alert band: per-event sensitivity within the horizon,
  PPV, alerts per patient-day and per 100 children per day.
- Calibration slope and intercept (logistic recalibration, Cox 1958; the
  intercept with the slope fixed at 1, "calibration-in-the-large"), overall and
  per outcome; PPV per outcome at each band; and a decision curve (net benefit, Vickers & Elkin, Med Decis Making 2006).
- 95 % confidence intervals by a bootstrap over children (resampling whole
  children, so that a child's correlated scoring times stay together),
  vectorised: a replicate is a vector of how many times each child was drawn,
  and AUROC/AUPRC are computed from weighted sums over tied-score groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.stats import norm

from clinpred.pilots.deterioration.features import FEATURE_NAMES

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

OUTCOMES: Final = ("any", "sepsis", "picu_transfer", "unplanned_admission")
OUTCOME_WORDS: Final = {
    "any": "any deterioration (unplanned admission, PICU transfer or sepsis)",
    "sepsis": "sepsis",
    "picu_transfer": "PICU transfer",
    "unplanned_admission": "unplanned admission",
}
FEVER_SINGLE_C: Final = 38.3
NEUTROPENIA_G_L: Final = 0.5
EXPECTED_NEUTROPENIA_DAYS: Final = 7.0
LOGISTIC_INPUTS: Final = ("pews_total", "temperature_c_max_24h", "neutrophils_g_l_last", "fever_readings_24h")
DECISION_THRESHOLDS: Final = tuple(float(t) for t in np.round(np.arange(0.01, 0.301, 0.01), 2))
BOOTSTRAP_REPLICATES: Final = 1000
# Scores that are probabilities (PEWS is a points score and the pathway a yes/no rule): only these calibrate.
CALIBRATED_SCORES: Final = ("model", "logistic")
_COLUMN: Final = {name: k for k, name in enumerate(FEATURE_NAMES)}


def _column(x: npt.NDArray[np.float32], name: str) -> FloatArray:
    return np.asarray(x[:, _COLUMN[name]], dtype=np.float64)


def pathway_alert(x: npt.NDArray[np.float32]) -> BoolArray:
    """The febrile-neutropenia pathway as a rule on feature rows.

    Fever: a reading >= 38.3 C in 24 h, or two readings >= 38.0 C (the home
    record's stand-in for "38.0 C sustained over an hour"). Neutropenia: the
    latest neutrophil count < 0.5 x10^9/L, or chemotherapy within 7 days
    (expected neutropenia). Missing values count as absent, as at home.
    """
    t_max = _column(x, "temperature_c_max_24h")
    fevers = _column(x, "fever_readings_24h")
    anc = _column(x, "neutrophils_g_l_last")
    since_chemo = _column(x, "days_since_chemo")
    febrile = (np.nan_to_num(t_max, nan=0.0) >= FEVER_SINGLE_C) | (np.nan_to_num(fevers, nan=0.0) >= 2)
    neutropenic = (np.nan_to_num(anc, nan=np.inf) < NEUTROPENIA_G_L) | (
        np.nan_to_num(since_chemo, nan=np.inf) <= EXPECTED_NEUTROPENIA_DAYS
    )
    return np.asarray(febrile & neutropenic)


@dataclass(frozen=True)
class PathwayLogistic:
    """Logistic regression on PEWS and the pathway's signals, with the pathway's own fever-by-neutropenia logic.

    Inputs: PEWS, maximum temperature in 24 h, log of the latest neutrophil count, the number of fever
    readings in 24 h, whether the child is (or is expected to be) neutropenic, and that flag times the
    fever readings and times the maximum temperature, so that fever weighs as the pathway weighs it.
    NaN inputs take the training median; a missing neutrophil count also sets its own flag.
    """

    medians: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float
    names: tuple[str, ...]

    @classmethod
    def fit(cls, x: npt.NDArray[np.float32], y: IntArray) -> PathwayLogistic:
        from sklearn.linear_model import LogisticRegression

        raw = np.column_stack([_column(x, n) for n in LOGISTIC_INPUTS])
        medians = tuple(float(np.nanmedian(raw[:, k])) if np.isfinite(raw[:, k]).any() else 0.0 for k in range(raw.shape[1]))
        design, names = cls._design(raw, medians, x)
        model = LogisticRegression(C=1.0, max_iter=5000).fit(design, y)
        return cls(medians, tuple(float(c) for c in model.coef_[0]), float(model.intercept_[0]), names)

    @staticmethod
    def _design(
        raw: FloatArray, medians: tuple[float, ...], x: npt.NDArray[np.float32]
    ) -> tuple[FloatArray, tuple[str, ...]]:
        filled = np.where(np.isnan(raw), np.asarray(medians), raw)
        # Neutrophils act on a log scale (0.1 and 0.4 x10^9/L differ clinically, 3 and 3.3 do not).
        anc = LOGISTIC_INPUTS.index("neutrophils_g_l_last")
        filled[:, anc] = np.log(np.maximum(filled[:, anc], 0.01))
        missing_anc = np.isnan(raw[:, anc]).astype(np.float64)
        since_chemo = _column(x, "days_since_chemo")
        neutropenic = (
            (np.nan_to_num(raw[:, anc], nan=np.inf) < NEUTROPENIA_G_L)
            | (np.nan_to_num(since_chemo, nan=np.inf) <= EXPECTED_NEUTROPENIA_DAYS)
        ).astype(np.float64)
        fevers = filled[:, LOGISTIC_INPUTS.index("fever_readings_24h")]
        # Centred at 37 C so that the interaction is zero for an afebrile child.
        t_excess = filled[:, LOGISTIC_INPUTS.index("temperature_c_max_24h")] - 37.0
        names = (
            *LOGISTIC_INPUTS[:anc],
            "log_neutrophils_g_l_last",
            *LOGISTIC_INPUTS[anc + 1 :],
            "neutrophils_missing",
            "neutropenic_or_chemo_7d",
            "fever_readings_x_neutropenic",
            "temperature_excess_x_neutropenic",
        )
        design = np.column_stack([filled, missing_anc, neutropenic, fevers * neutropenic, t_excess * neutropenic])
        return design, names

    def probability(self, x: npt.NDArray[np.float32]) -> FloatArray:
        raw = np.column_stack([_column(x, n) for n in LOGISTIC_INPUTS])
        design, _ = self._design(raw, self.medians, x)
        return np.asarray(1.0 / (1.0 + np.exp(-(design @ np.asarray(self.coefficients) + self.intercept))))

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": list(self.names),
            "coefficients": dict(zip(self.names, self.coefficients, strict=True)),
            "intercept": self.intercept,
            "missing_filled_with_training_median": dict(zip(LOGISTIC_INPUTS, self.medians, strict=True)),
        }


def event_within_horizon(
    row_patient: IntArray, row_hours: FloatArray, event_patient: IntArray, event_hours: FloatArray, horizon_hours: float
) -> BoolArray:
    """For each scoring row: is there an event of the patient in (t, t + horizon]?"""
    if event_hours.size == 0:
        return np.zeros(row_hours.shape, dtype=bool)
    span = float(max(row_hours.max(initial=0), event_hours.max()) - min(row_hours.min(initial=0), event_hours.min())) + 10 * (
        horizon_hours + 1
    )
    base = float(min(row_hours.min(initial=0), event_hours.min()))
    keys = np.sort(event_patient * span + (event_hours - base))
    query = row_patient * span + (row_hours - base)
    first_after = np.searchsorted(keys, query, side="right")
    last_within = np.searchsorted(keys, query + horizon_hours, side="right")
    return np.asarray(last_within > first_after)


def alert_onsets(flagged: BoolArray, patient: IntArray) -> BoolArray:
    """A row is an alert when it is flagged and the child's previous scoring time was not (as WatchRisk alerts)."""
    previous = np.concatenate([[False], flagged[:-1]])
    same = np.concatenate([[False], patient[1:] == patient[:-1]])
    return np.asarray(flagged & ~(previous & same))


def per_event_sensitivity(
    flagged: BoolArray,
    row_patient: IntArray,
    row_hours: FloatArray,
    event_patient: IntArray,
    event_hours: FloatArray,
    horizon_hours: float,
) -> tuple[int, int]:
    """Events with at least one flagged scoring time in the horizon before them, and the events counted.

    Only events with at least one scoring time in that window count (the others could not be warned of).
    """
    caught = 0
    seen = 0
    for p, h in zip(event_patient, event_hours, strict=True):
        window = (row_patient == p) & (row_hours < h) & (row_hours >= h - horizon_hours)
        if window.any():
            seen += 1
            caught += int(flagged[window].any())
    return caught, seen


def band_burden(flagged: BoolArray, patient: IntArray, interval_hours: float, n_children: int) -> dict[str, float]:
    """Share of scoring times flagged, alerts per patient-day and per 100 children per day."""
    patient_days = flagged.size * interval_hours / 24.0
    alerts = int(alert_onsets(flagged, patient).sum())
    per_day = alerts / patient_days if patient_days else float("nan")
    return {
        "flagged_share": float(flagged.mean()) if flagged.size else float("nan"),
        "alerts": alerts,
        "alerts_per_patient_day": per_day,
        "alerts_per_100_children_per_day": 100.0 * per_day,
        "children": n_children,
    }


def calibration_slope_intercept(y: IntArray, p: FloatArray) -> tuple[float, float]:
    """Logistic recalibration of y on logit(p): slope, and intercept with the slope fixed at 1 (Newton steps)."""
    from sklearn.linear_model import LogisticRegression

    logit = np.log(np.clip(p, 1e-9, 1 - 1e-9) / np.clip(1 - p, 1e-9, 1))
    slope = float(LogisticRegression(C=1e6, max_iter=1000).fit(logit[:, None], y).coef_[0, 0])
    a = 0.0
    for _ in range(50):
        q = 1.0 / (1.0 + np.exp(-(logit + a)))
        step = float((y - q).sum() / max((q * (1 - q)).sum(), 1e-12))
        a += step
        if abs(step) < 1e-10:
            break
    return slope, a


def net_benefit(y: IntArray, flagged_at: list[BoolArray], thresholds: tuple[float, ...]) -> list[float]:
    n = max(y.size, 1)
    out = []
    for t, flagged in zip(thresholds, flagged_at, strict=True):
        tp = float((flagged & (y == 1)).sum())
        fp = float((flagged & (y == 0)).sum())
        out.append(tp / n - fp / n * t / (1 - t))
    return out


def decision_curve(
    y: IntArray, probabilities: dict[str, FloatArray], rule: BoolArray, thresholds: tuple[float, ...] = DECISION_THRESHOLDS
) -> dict[str, Any]:
    curves: dict[str, Any] = {"thresholds": list(thresholds)}
    for name, p in probabilities.items():
        curves[name] = net_benefit(y, [p >= t for t in thresholds], thresholds)
    curves["pathway"] = net_benefit(y, [rule] * len(thresholds), thresholds)
    curves["treat_all"] = net_benefit(y, [np.ones(y.shape, bool)] * len(thresholds), thresholds)
    curves["treat_none"] = [0.0] * len(thresholds)
    return curves


def wilson_interval(events: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (Wilson, J Am Stat Assoc 1927)."""
    if n <= 0:
        return float("nan"), float("nan")
    z = float(norm.ppf(0.5 + level / 2))
    phat = events / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


# ---------------------------------------------------------------------------------------------
# Patient bootstrap


@dataclass(frozen=True)
class _Grouped:
    """Rows of one score grouped by tied value (descending), as patient-by-group incidence matrices."""

    positives: sparse.csr_matrix
    negatives: sparse.csr_matrix


def _grouped(score: FloatArray, y: IntArray, patient: IntArray, n_patients: int) -> _Grouped:
    values, group = np.unique(-score, return_inverse=True)
    shape = (n_patients, values.size)
    pos = sparse.csr_matrix((y.astype(np.float64), (patient, group)), shape=shape)
    neg = sparse.csr_matrix(((1 - y).astype(np.float64), (patient, group)), shape=shape)
    return _Grouped(pos, neg)


def _weighted_auroc_auprc(counts: FloatArray, grouped: _Grouped) -> tuple[FloatArray, FloatArray]:
    """AUROC and AUPRC (average precision) for each row of `counts` (replicates x patients)."""
    pos = np.asarray((grouped.positives.T @ counts.T).T)  # replicates x groups, descending score
    neg = np.asarray((grouped.negatives.T @ counts.T).T)
    total_pos = pos.sum(axis=1)
    total_neg = neg.sum(axis=1)
    neg_below = total_neg[:, None] - np.cumsum(neg, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auroc = (pos * (neg_below + 0.5 * neg)).sum(axis=1) / (total_pos * total_neg)
        tp = np.cumsum(pos, axis=1)
        fp = np.cumsum(neg, axis=1)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        auprc = (pos * precision).sum(axis=1) / total_pos
    return auroc, auprc


def bootstrap_counts(n_patients: int, replicates: int, seed: int) -> FloatArray:
    """How many times each child is drawn in each replicate (replicates x children)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_patients, np.full(n_patients, 1.0 / n_patients), size=replicates).astype(np.float64)


def bootstrap_auc(
    y: IntArray,
    scores: dict[str, FloatArray],
    patient: IntArray,
    counts: FloatArray,
    chunk: int = 100,
) -> dict[str, dict[str, FloatArray]]:
    """Per score: bootstrap replicates of AUROC and AUPRC (NaN where a replicate has no event)."""
    n_patients = counts.shape[1]
    out: dict[str, dict[str, FloatArray]] = {}
    for name, score in scores.items():
        grouped = _grouped(score, y, patient, n_patients)
        aurocs, auprcs = [], []
        for start in range(0, counts.shape[0], chunk):
            a, b = _weighted_auroc_auprc(counts[start : start + chunk], grouped)
            aurocs.append(a)
            auprcs.append(b)
        out[name] = {"auroc": np.concatenate(aurocs), "auprc": np.concatenate(auprcs)}
    return out


def percentile_interval(values: FloatArray) -> list[float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return [float("nan"), float("nan")]
    low, high = np.percentile(finite, [2.5, 97.5])
    return [float(low), float(high)]


def point_auc(y: IntArray, score: FloatArray) -> tuple[float, float]:
    """AUROC and AUPRC of the sample itself (the bootstrap's formulas with every child drawn once)."""
    patient = np.zeros(y.shape, dtype=np.int64)
    auroc, auprc = _weighted_auroc_auprc(np.ones((1, 1)), _grouped(score, y, patient, 1))
    return float(auroc[0]), float(auprc[0])


# ---------------------------------------------------------------------------------------------
# The whole held-out report

AGE_BANDS: Final = ((0.0, 1.0, "under 1 year"), (1.0, 5.0, "1-4 years"), (5.0, 12.0, "5-11 years"), (12.0, 99.0, "12+ years"))


@dataclass(frozen=True)
class HeldOut:
    """Test children's rows, in (child, time) order, and their events."""

    x: npt.NDArray[np.float32]
    y: IntArray
    patient_ids: npt.NDArray[np.str_]
    hours: FloatArray
    pews: FloatArray
    model: FloatArray
    logistic: FloatArray
    event_patient_ids: npt.NDArray[np.str_]
    event_hours: FloatArray
    event_types: npt.NDArray[np.str_]
    sex_of: dict[str, str]
    diagnosis_of: dict[str, str]


def _with_ci(point: float, replicates: FloatArray) -> dict[str, Any]:
    return {"value": point, "ci95": percentile_interval(replicates)}


def _proportion(events: float, n: float) -> dict[str, Any]:
    return {"value": events / n if n else float("nan"), "ci95": list(wilson_interval(events, n)), "n": int(n)}


def evaluate_held_out(
    data: HeldOut,
    *,
    bands: dict[str, float],
    horizon_hours: float,
    interval_hours: float,
    seed: int,
    replicates: int = BOOTSTRAP_REPLICATES,
) -> dict[str, Any]:
    """Baselines, per-outcome and per-band figures with patient-bootstrap CIs (see the module docstring)."""
    unique, patient = np.unique(data.patient_ids, return_inverse=True)
    patient = patient.astype(np.int64)
    index = {str(p): k for k, p in enumerate(unique)}
    known = np.isin(data.event_patient_ids, unique)
    ev_patient = np.array([index[str(p)] for p in data.event_patient_ids[known]], dtype=np.int64)
    ev_hours, ev_types = data.event_hours[known], data.event_types[known]
    rule = pathway_alert(data.x)
    scores = {"model": data.model, "pews": data.pews, "logistic": data.logistic, "pathway": rule.astype(np.float64)}
    counts = bootstrap_counts(unique.size, replicates, seed)

    labels: dict[str, IntArray] = {"any": data.y}
    for outcome in OUTCOMES[1:]:
        mask = ev_types == outcome
        labels[outcome] = event_within_horizon(patient, data.hours, ev_patient[mask], ev_hours[mask], horizon_hours).astype(
            np.int64
        )

    outcomes: dict[str, Any] = {}
    boot_any: dict[str, dict[str, FloatArray]] = {}
    for outcome, y in labels.items():
        boot = bootstrap_auc(y, scores, patient, counts)
        if outcome == "any":
            boot_any = boot
        entry: dict[str, Any] = {"positives": int(y.sum()), "rows": int(y.size)}
        for name, score in scores.items():
            auroc, auprc = point_auc(y, score)
            entry[name] = {
                "auroc": _with_ci(auroc, boot[name]["auroc"]),
                "auprc": _with_ci(auprc, boot[name]["auprc"]),
            }
        if 0 < entry["positives"] < entry["rows"]:
            # The probabilities are of any deterioration: against one outcome, the intercept says by how much
            # they overstate that outcome's own risk, and the slope whether they spread its risks rightly.
            entry["calibration"] = {
                name: dict(zip(("slope", "intercept"), calibration_slope_intercept(y, scores[name]), strict=True))
                for name in CALIBRATED_SCORES
            }
        outcomes[outcome] = entry

    any_entry = outcomes["any"]
    baseline_names = ("pews", "pathway", "logistic")
    best = max(baseline_names, key=lambda n: any_entry[n]["auroc"]["value"])
    gain_auroc = boot_any["model"]["auroc"] - boot_any[best]["auroc"]
    gain_auprc = boot_any["model"]["auprc"] - boot_any[best]["auprc"]
    headline = {
        "best_baseline": best,
        "auroc_gain": _with_ci(any_entry["model"]["auroc"]["value"] - any_entry[best]["auroc"]["value"], gain_auroc),
        "auprc_gain": _with_ci(any_entry["model"]["auprc"]["value"] - any_entry[best]["auprc"]["value"], gain_auprc),
        "auroc_gain_over_pews": _with_ci(
            any_entry["model"]["auroc"]["value"] - any_entry["pews"]["auroc"]["value"],
            boot_any["model"]["auroc"] - boot_any["pews"]["auroc"],
        ),
        "bootstrap": {"replicates": replicates, "seed": seed, "unit": "child", "children": int(unique.size)},
    }

    n_children = int(unique.size)
    flags = {
        "medium_or_higher": data.model >= bands["medium"],
        "high": data.model >= bands["high"],
        "pathway": rule,
    }
    operating: dict[str, Any] = {}
    for name, flagged in flags.items():
        point: dict[str, Any] = band_burden(flagged, patient, interval_hours, n_children)
        tp = float((flagged & (data.y == 1)).sum())
        point["ppv"] = _proportion(tp, float(flagged.sum()))
        point["specificity"] = _proportion(float((~flagged & (data.y == 0)).sum()), float((data.y == 0).sum()))
        point["sensitivity_rows"] = _proportion(tp, float(data.y.sum()))
        # Share of flagged scoring times followed within the horizon by this outcome.
        point["ppv_per_outcome"] = {
            outcome: _proportion(float((flagged & (labels[outcome] == 1)).sum()), float(flagged.sum()))
            for outcome in OUTCOMES[1:]
        }
        per_event: dict[str, Any] = {}
        for outcome in OUTCOMES[1:]:
            mask = ev_types == outcome
            caught, seen = per_event_sensitivity(flagged, patient, data.hours, ev_patient[mask], ev_hours[mask], horizon_hours)
            per_event[outcome] = _proportion(float(caught), float(seen))
        point["per_event_sensitivity"] = per_event
        operating[name] = point

    calibration = {}
    for name in CALIBRATED_SCORES:
        slope, intercept = calibration_slope_intercept(data.y, scores[name])
        calibration[name] = {"slope": slope, "intercept": intercept}

    return {
        "headline": headline,
        "outcomes": outcomes,
        "operating_points": operating,
        "calibration": calibration,
        "decision_curve": decision_curve(data.y, {"model": data.model, "logistic": data.logistic}, rule),
        "subgroups": _subgroups(data, patient, unique),
    }


def _subgroups(data: HeldOut, patient: IntArray, unique: npt.NDArray[np.str_]) -> dict[str, Any]:
    age = _column(data.x, "age_years")
    groups: dict[str, BoolArray] = {}
    for low, high, words in AGE_BANDS:
        groups[f"age {words}"] = (age >= low) & (age < high)
    sex = np.array([data.sex_of.get(str(p), "unknown") for p in unique])[patient]
    for value in sorted(set(sex.tolist())):
        groups[f"sex {value}"] = sex == value
    diagnosis = np.array([data.diagnosis_of.get(str(p), "unknown") for p in unique])[patient]
    for value in sorted(set(diagnosis.tolist())):
        groups[f"diagnosis {value}"] = diagnosis == value
    out: dict[str, Any] = {}
    for name, mask in groups.items():
        y = data.y[mask]
        entry: dict[str, Any] = {
            "children": int(np.unique(patient[mask]).size),
            "rows": int(mask.sum()),
            "positives": int(y.sum()),
        }
        # Fewer than 20 events make an AUROC too unstable to report.
        if y.sum() >= 20 and y.sum() < y.size:
            entry["model_auroc"] = point_auc(y, data.model[mask])[0]
            entry["logistic_auroc"] = point_auc(y, data.logistic[mask])[0]
            entry["pews_auroc"] = point_auc(y, data.pews[mask])[0]
            entry["observed_rate"] = float(y.mean())
            entry["mean_predicted"] = float(data.model[mask].mean())
        out[name] = entry
    return out
