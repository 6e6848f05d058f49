"""Training the deterioration model: LightGBM, calibration, conformal sets, evaluation against PEWS, package.

Task: at a scoring time t, predict any deterioration event (unplanned
admission, PICU transfer or sepsis) in (t, t + horizon]. Scoring times are a
grid every `interval_hours` while the child is monitored at home:
    - at least one observation in the last 24 h (the child is being watched),
    - no event between the last observation and t (the child is not in hospital),
    - the outcome is known: an event falls in the horizon, or the patient's
      follow-up (last observation, last event, `monitoring_end` if given)
      extends to t + horizon; otherwise the row is censored and dropped.

Patients are split (never their rows) into train / calibration / test
(60/20/20 by default). The booster learns on train; the Platt map, the
conformal thresholds and the risk bands are fitted on calibration; every
reported metric comes from test patients. Bedside PEWS is scored on the same
test rows from the same observations (each item's latest value at most 24 h
old; a missing item scores 0), so AUROCs are side by side.

Calibration uses the shared `pilots/common/calibration.py` (Platt on the
log-odds). Conformal sets are class-conditional (see `conformal.py` for why
the shared marginal version does not fit a rare outcome).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from tqdm.auto import tqdm

from clinpred.pilots.common.calibration import brier_score, expected_calibration_error, fit_calibrator
from clinpred.pilots.common.errors import FieldViolation, InvalidInput
from clinpred.pilots.common.explanation import treeshap_contributions
from clinpred.pilots.common.model_package import ModelPackage, ModelPackageWriter, next_version
from clinpred.pilots.common.onnx import OnnxParityError, max_parity_error, onnx_session
from clinpred.pilots.common.schema import FeatureSpec, ModelSchema
from clinpred.pilots.deterioration.cohort import (
    check_references,
    load_chemotherapy,
    load_events,
    load_observations,
    load_patients,
)
from clinpred.pilots.deterioration.conformal import CLASSES, coverage_report, fit_class_conditional
from clinpred.pilots.deterioration.evaluation import (
    HeldOut,
    PathwayLogistic,
    band_burden,
    evaluate_held_out,
    wilson_interval,
)
from clinpred.pilots.deterioration.features import (
    BASELINE_WINDOW_H,
    DAY_WINDOW_H,
    FEATURE_DESCRIPTIONS,
    FEATURE_NAMES,
    FEATURE_UNITS,
    PEWS_MAX_AGE_H,
    SHORT_WINDOW_H,
    ObservationArrays,
    arrays_from_tables,
    compute_features,
    feature_matrix,
    to_hours,
)
from clinpred.pilots.deterioration.observations import SIGNALS
from clinpred.pilots.deterioration.package_format import (
    ONNX_INPUT,
    ONNX_PROBABILITIES,
    PILOT,
    onnx_positive_probability,
)
from clinpred.pilots.deterioration.transparency import transparency_document
from clinpred.pilots.deterioration.venn_abers import calibration_check, fit_venn_abers

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_NAME: Final = "home-deterioration"
PARITY_TOLERANCE: Final = 1e-5
STALE_OBSERVATION_H: Final = 24.0
DEFAULT_PARAMS: Final[dict[str, Any]] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}


@dataclass(frozen=True)
class ScoringSet:
    """Rows for training or evaluation: one per (patient, scoring time)."""

    x: npt.NDArray[np.float32]
    y: IntArray
    patient_ids: npt.NDArray[np.str_]
    hours: FloatArray
    pews: FloatArray


@dataclass(frozen=True)
class TrainingReport:
    package: ModelPackage
    metrics: dict[str, Any]


def _keys(patient: IntArray, hours: FloatArray, span: float) -> FloatArray:
    return patient.astype(np.float64) * span + hours


def scoring_points(
    arrays: ObservationArrays,
    event_patient: IntArray,
    event_hours: FloatArray,
    follow_up_end: FloatArray,
    *,
    horizon_hours: float,
    interval_hours: float,
) -> tuple[IntArray, FloatArray, IntArray]:
    """Scoring (patient index, hours) pairs and their labels under the rules in the module docstring."""
    n_patients = follow_up_end.shape[0]
    pidx, hours = arrays.patient_index, arrays.hours
    starts = np.searchsorted(pidx, np.arange(n_patients), side="left")
    ends = np.searchsorted(pidx, np.arange(n_patients), side="right")
    grid_patient: list[IntArray] = []
    grid_hours: list[FloatArray] = []
    for p in np.nonzero(ends > starts)[0]:
        first, last = hours[starts[p]], hours[ends[p] - 1]
        times = np.arange(np.ceil(first / interval_hours) * interval_hours, last + STALE_OBSERVATION_H, interval_hours)
        grid_patient.append(np.full(times.shape, p, dtype=np.int64))
        grid_hours.append(times)
    if not grid_patient:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
    sp, sh = np.concatenate(grid_patient), np.concatenate(grid_hours)
    origin = min(float(hours.min()), float(sh.min()), float(event_hours.min(initial=np.inf))) - 1.0
    top = max(float(hours.max()), float(sh.max()), float(event_hours.max(initial=-np.inf))) + horizon_hours
    span = top - origin + 1.0
    obs_keys = _keys(pidx, hours - origin, span)
    query = _keys(sp, sh - origin, span)
    last_obs = np.searchsorted(obs_keys, query, side="right") - 1
    last_obs_hours = hours[np.clip(last_obs, 0, None)]
    watched = (last_obs >= 0) & (pidx[np.clip(last_obs, 0, None)] == sp) & (sh - last_obs_hours <= STALE_OBSERVATION_H)

    order = np.lexsort((event_hours, event_patient))
    ev_p, ev_h = event_patient[order], event_hours[order]
    ev_keys = _keys(ev_p, ev_h - origin, span)
    before = np.searchsorted(ev_keys, query, side="right") - 1
    safe_before = np.clip(before, 0, max(ev_h.size - 1, 0))
    has_before = (before >= 0) & (ev_p[safe_before] == sp) if ev_h.size else np.zeros(sp.shape, bool)
    at_home = ~(has_before & (ev_h[safe_before] > last_obs_hours)) if ev_h.size else np.ones(sp.shape, bool)

    after = before + 1
    safe_after = np.clip(after, 0, max(ev_h.size - 1, 0))
    if ev_h.size:
        has_after = (after < ev_h.size) & (ev_p[safe_after] == sp)
        label = has_after & (ev_h[safe_after] <= sh + horizon_hours)
    else:
        label = np.zeros(sp.shape, bool)
    known = label | (sh + horizon_hours <= follow_up_end[sp])
    keep = watched & at_home & known
    return sp[keep], sh[keep], label[keep].astype(np.int64)


def build_scoring_set(
    observations: pd.DataFrame,
    patients: pd.DataFrame,
    events: pd.DataFrame,
    chemotherapy: pd.DataFrame | None = None,
    *,
    horizon_hours: float = 24.0,
    interval_hours: float = 6.0,
) -> ScoringSet:
    """Features, labels and PEWS at every scoring time of loaded (validated) tables."""
    arrays, context, index_of = arrays_from_tables(observations, patients, chemotherapy)
    events = events[events["patient_id"].astype(str).isin(index_of)]
    ev_p: IntArray = np.asarray(events["patient_id"].astype(str).map(index_of), dtype=np.int64)
    ev_h = to_hours(events["event_time"])
    n = len(index_of)
    follow_up_end = np.full(n, -np.inf)
    np.maximum.at(follow_up_end, arrays.patient_index, arrays.hours)
    if ev_h.size:
        np.maximum.at(follow_up_end, ev_p, ev_h)
    if "monitoring_end" in patients.columns:
        declared = to_hours(patients["monitoring_end"])
        follow_up_end = np.fmax(follow_up_end, declared)
    sp, sh, y = scoring_points(arrays, ev_p, ev_h, follow_up_end, horizon_hours=horizon_hours, interval_hours=interval_hours)
    features = compute_features(arrays, context, sp, sh)
    ids = np.asarray(patients["patient_id"].astype(str).to_numpy())[sp]
    return ScoringSet(feature_matrix(features), y, ids.astype(np.str_), sh, features["pews_total"])


def split_patients(
    patient_ids: npt.ArrayLike, seed: int, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
) -> dict[str, npt.NDArray[np.bool_]]:
    """Row masks of train / calibration / test, assigning whole patients at random (by seed)."""
    ids = np.asarray(patient_ids)
    unique = np.unique(ids)
    order = np.random.default_rng(seed).permutation(unique.size)
    n_train = round(fractions[0] * unique.size)
    n_cal = round(fractions[1] * unique.size)
    groups = {
        "train": unique[order[:n_train]],
        "calibration": unique[order[n_train : n_train + n_cal]],
        "test": unique[order[n_train + n_cal :]],
    }
    return {name: np.isin(ids, members) for name, members in groups.items()}


def _auroc(y: IntArray, score: FloatArray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score)) if 0 < y.sum() < y.size else float("nan")


def _auprc(y: IntArray, score: FloatArray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, score)) if y.sum() > 0 else float("nan")


def positive_class_ece(y: IntArray, p: FloatArray, n_bins: int = 10) -> float:
    """ECE of the positive-class probability over equal-count bins (suits a rare outcome)."""
    order = np.argsort(p, kind="stable")
    ece = 0.0
    for chunk in np.array_split(order, n_bins):
        if chunk.size:
            ece += chunk.size / p.size * abs(float(y[chunk].mean()) - float(p[chunk].mean()))
    return float(ece)


def to_onnx(booster: Any, n_features: int) -> bytes:
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    model = convert_lightgbm(
        booster, initial_types=[(ONNX_INPUT, FloatTensorType([None, n_features]))], zipmap=False, target_opset=15
    )
    _round_thresholds_down(model, booster)
    # The converter names graphs with a random UUID and lists opsets in set order (hash-seeded):
    # fixed here so that the same booster always gives the same bytes, hence the same package hash.
    model.graph.name = "deterioration_lightgbm"
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    for domain, version in opsets:
        model.opset_import.add(domain=domain, version=version)
    return bytes(model.SerializeToString())


def _round_thresholds_down(model: Any, booster: Any) -> None:
    """Makes ONNX float32 split thresholds decide exactly like LightGBM's float64 ones.

    The converter rounds each threshold t to the NEAREST float32. When that
    rounds up, a float32 input equal to the rounded value goes left in ONNX
    and right in LightGBM, flipping a leaf (seen: 0.018 in log-odds). For a
    float32 input x, `x <= t` holds exactly when `x <= largest float32 <= t`,
    so each threshold is replaced by that value, found by matching the ONNX
    node to LightGBM's threshold of the same tree and feature.
    """
    with np.errstate(over="ignore"):  # LightGBM's "always" thresholds (~1e300) become inf in both
        _round_thresholds_down_unchecked(model, booster)


def _round_thresholds_down_unchecked(model: Any, booster: Any) -> None:
    node = next(n for n in model.graph.node if n.op_type.startswith("TreeEnsemble"))
    attrs = {a.name: a for a in node.attribute}
    exact: dict[tuple[int, int, float], float] = {}
    for tree_index, tree in enumerate(booster.dump_model()["tree_info"]):
        stack = [tree["tree_structure"]]
        while stack:
            split = stack.pop()
            if "split_feature" not in split:
                continue
            if split["decision_type"] != "<=":
                raise OnnxParityError("only numerical '<=' splits can be exported exactly")
            threshold = float(split["threshold"])
            exact[(tree_index, int(split["split_feature"]), float(np.float32(threshold)))] = threshold
            stack.extend([split["left_child"], split["right_child"]])
    values = attrs["nodes_values"].floats
    for i, (tree, feature, mode) in enumerate(
        zip(attrs["nodes_treeids"].ints, attrs["nodes_featureids"].ints, attrs["nodes_modes"].strings, strict=True)
    ):
        if mode != b"BRANCH_LEQ":
            continue
        matched = exact.get((int(tree), int(feature), float(np.float32(values[i]))))
        if matched is None:
            raise OnnxParityError("an ONNX split does not match any LightGBM threshold")
        down = np.float32(matched)
        if float(down) > matched:
            down = np.nextafter(down, np.float32(-np.inf))
        values[i] = float(down)


def check_onnx_parity(onnx_bytes: bytes, booster: Any, x32: npt.NDArray[np.float32]) -> float:
    """Largest |ONNX - native| probability; raises OnnxParityError above PARITY_TOLERANCE."""
    onnx_p = onnx_positive_probability(onnx_session(onnx_bytes), x32)
    native_p = np.asarray(booster.predict(x32), dtype=np.float64)
    return max_parity_error(onnx_p, native_p, PARITY_TOLERANCE)


def _progress_callback(bar: Any) -> Callable[[Any], None]:
    def callback(env: Any) -> None:
        bar.update(1)

    return callback


def fit_booster(x: npt.NDArray[np.float32], y: IntArray, *, seed: int, num_boost_round: int, progress: bool) -> Any:
    import lightgbm as lgb

    params = {**DEFAULT_PARAMS, "seed": seed}
    with tqdm(total=num_boost_round, desc="boosting", unit="tree", disable=not progress) as bar:
        return lgb.train(
            params,
            lgb.Dataset(x, label=y, feature_name=list(FEATURE_NAMES), free_raw_data=True),
            num_boost_round=num_boost_round,
            callbacks=[_progress_callback(bar)],
        )


def _schema(x_train: npt.NDArray[np.float32], horizon_hours: float, interval_hours: float) -> ModelSchema:
    specs = []
    for k, name in enumerate(FEATURE_NAMES):
        column = x_train[:, k].astype(np.float64)
        present = column[~np.isnan(column)]
        signal = next((s for s in SIGNALS if name.startswith(s + "_")), None)
        valid_min: float | None = None
        valid_max: float | None = None
        if signal and name.endswith(("_last", "_mean_6h", "_max_24h", "_min_24h")):
            valid_min, valid_max = SIGNALS[signal].valid_min, SIGNALS[signal].valid_max
        elif name.endswith("hours_since_last") or name in ("days_since_chemo",):
            valid_min = 0.0
        specs.append(
            FeatureSpec(
                name=name,
                unit=FEATURE_UNITS[name],
                description=FEATURE_DESCRIPTIONS[name],
                valid_min=valid_min,
                valid_max=valid_max,
                training_min=float(present.min()) if present.size else float("nan"),
                training_max=float(present.max()) if present.size else float("nan"),
                training_median=float(np.median(present)) if present.size else None,
            )
        )
    return ModelSchema(
        features=tuple(specs),
        classes=CLASSES,
        positive_class=CLASSES[1],
        extra={
            "horizon_hours": horizon_hours,
            "scoring_interval_hours": interval_hours,
            "outcome": "unplanned admission, PICU transfer or sepsis within the horizon",
            "windows_hours": {"short": SHORT_WINDOW_H, "day": DAY_WINDOW_H, "baseline": BASELINE_WINDOW_H},
            "pews_max_age_hours": PEWS_MAX_AGE_H,
            "onnx_input": ONNX_INPUT,
            "onnx_output": ONNX_PROBABILITIES,
            "missing_values": "NaN",
        },
    )


CALIBRATION_PLOT_QUANTILES: Final = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0)


def _calibration_png(y: IntArray, p: FloatArray, p_logistic: FloatArray, path: Path) -> None:
    """Observed against predicted in equal-count bins, with Wilson 95 % CIs, on log axes (events are rare)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    low_edge = 1e-3
    top = 0.0
    for label, probs, colour, marker in (
        ("model", p, "tab:blue", "o"),
        ("logistic baseline", p_logistic, "tab:orange", "s"),
    ):
        order = np.argsort(probs, kind="stable")
        # Finer in the upper tail, where the bands decide and a tenth of the rows hold most events.
        edges = (np.asarray(CALIBRATION_PLOT_QUANTILES) * order.size).astype(np.int64)
        chunks = [c for c in np.split(order, edges[1:-1]) if c.size]
        predicted = np.array([float(probs[c].mean()) for c in chunks])
        observed = np.array([float(y[c].mean()) for c in chunks])
        ci = np.array([wilson_interval(float(y[c].sum()), float(c.size)) for c in chunks])
        shown = np.maximum(observed, low_edge)
        errors = np.vstack([shown - np.maximum(ci[:, 0], low_edge * 0.5), np.maximum(ci[:, 1] - shown, 0)])
        ax.errorbar(predicted, shown, yerr=errors, fmt=marker, color=colour, capsize=3, label=label)
        top = max(top, float(predicted.max()), float(ci[:, 1].max()))
    ax.plot([low_edge, top * 1.2], [low_edge, top * 1.2], color="grey", linestyle="--", linewidth=1, label="perfect")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low_edge, top * 1.2)
    ax.set_ylim(low_edge * 0.5, top * 1.2)
    percent = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v * 100:g}%")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(percent)
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("mean predicted probability (log scale; bins: deciles, then 95th, 98th, 99th percentiles)")
    ax.set_ylabel("observed event rate, 95% Wilson CI (log scale)")
    ax.set_title("Calibration on held-out children", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(True, which="both", linewidth=0.3)
    fig.savefig(path, dpi=80, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def _decision_curve_png(curve: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thresholds = np.asarray(curve["thresholds"])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    styles = {
        "model": ("model", "tab:blue", "-"),
        "logistic": ("logistic baseline", "tab:orange", "-"),
        "pathway": ("febrile-neutropenia pathway", "tab:green", "-."),
        "treat_all": ("review every child", "grey", ":"),
        "treat_none": ("review none", "black", "--"),
    }
    for key, (label, colour, line) in styles.items():
        ax.plot(thresholds, curve[key], label=label, color=colour, linestyle=line)
    best = max(max(curve["model"]), max(curve["logistic"]), max(curve["pathway"]), 1e-4)
    ax.set_ylim(-best * 0.5, best * 1.3)
    ax.set_xlabel("threshold probability")
    ax.set_ylabel("net benefit (per scoring time)")
    ax.set_title("Decision curve on held-out children", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, linewidth=0.3)
    fig.savefig(path, dpi=80, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def _shap_png(booster: Any, x: npt.NDArray[np.float32], path: Path, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    contributions = treeshap_contributions(booster, x)
    rng = np.random.default_rng(seed)
    shap.summary_plot(
        contributions.values[:, 0, :],
        x,
        feature_names=list(FEATURE_NAMES),
        max_display=15,
        show=False,
        plot_size=(8, 6),
        rng=rng,
    )
    plt.title("SHAP values (log-odds of deterioration), training patients", fontsize=10)
    plt.savefig(path, dpi=60, bbox_inches="tight", metadata={"Software": None})
    plt.close("all")


# The alert burden a home-care team can carry (ASSUMPTION, stated in the model card): a nurse
# following 100 children can call back about 3 families a day urgently (high band) and review
# about 10 more (medium band or higher). Bands are set on calibration children at 80 % of these
# bounds, so that sampling noise on new children stays within them.
ALERT_BUDGET_PER_100_CHILDREN_PER_DAY: Final = {"medium": 10.0, "high": 3.0}
BAND_TARGET_FRACTION: Final = 0.8


def _threshold_for_budget(p: FloatArray, patient: IntArray, interval_hours: float, budget: float) -> float:
    """The lowest threshold whose alerts (and those of every higher candidate) stay within `budget`."""
    n_children = int(np.unique(patient).size)
    candidates = np.unique(np.quantile(p, np.linspace(0.5, 0.9995, 400)))
    chosen = float(candidates[-1])
    for threshold in candidates[::-1]:
        burden = band_burden(p >= threshold, patient, interval_hours, n_children)["alerts_per_100_children_per_day"]
        if burden > budget * BAND_TARGET_FRACTION:
            break
        chosen = float(threshold)
    return chosen


def _risk_bands(p_calibration: FloatArray, patient_ids: npt.NDArray[np.str_], interval_hours: float) -> dict[str, Any]:
    _, patient = np.unique(patient_ids, return_inverse=True)
    patient = patient.astype(np.int64)
    medium = _threshold_for_budget(p_calibration, patient, interval_hours, ALERT_BUDGET_PER_100_CHILDREN_PER_DAY["medium"])
    high = _threshold_for_budget(p_calibration, patient, interval_hours, ALERT_BUDGET_PER_100_CHILDREN_PER_DAY["high"])
    medium, high = float(f"{medium:.3g}"), float(f"{max(high, medium):.3g}")
    return {
        "medium": medium,
        "high": high,
        "rule": "low if p < medium; medium if medium <= p < high; high if p >= high",
        "basis": (
            "lowest thresholds keeping alerts (a scoring time entering the band) on calibration children within "
            f"{BAND_TARGET_FRACTION:.0%} of the alert budget"
        ),
        "alert_budget_per_100_children_per_day": dict(ALERT_BUDGET_PER_100_CHILDREN_PER_DAY),
    }


def _band_event_rates(p: FloatArray, y: IntArray, medium: float, high: float) -> dict[str, Any]:
    """Observed event rate within the horizon of held-out scoring times in each band, with its Wilson 95 % CI."""
    masks = {"low": p < medium, "medium": (p >= medium) & (p < high), "high": p >= high}
    out: dict[str, Any] = {}
    for band, mask in masks.items():
        events, n = float(y[mask].sum()), float(mask.sum())
        out[band] = {"rate": events / n if n else float("nan"), "ci95": list(wilson_interval(events, n)), "n": int(n)}
    return out


def _ci(entry: dict[str, Any], digits: int = 3) -> str:
    low, high = entry["ci95"]
    return f"{entry['value']:.{digits}f} ({low:.{digits}f} to {high:.{digits}f})"


def _percent_ci(entry: dict[str, Any]) -> str:
    low, high = entry["ci95"]
    value = entry["value"]
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.1%} ({low:.1%}-{high:.1%}, n={entry['n']})"


# Fewer positive rows than this make an AUROC's interval meaningless (one event gives a point, not an estimate).
MIN_EVENTS_TO_REPORT: Final = 10
BASELINE_WORDS: Final = {
    "pews": "Bedside PEWS (Parshuram 2009), from the same home observations",
    "pathway": "febrile-neutropenia pathway: fever with neutropenia or chemotherapy within 7 days (binary rule)",
    "logistic": (
        "logistic regression on PEWS, max temperature 24 h, log neutrophils, fever readings 24 h and the "
        "pathway's fever-by-neutropenia interactions"
    ),
}
OUTCOME_TITLES: Final = {
    "any": "any deterioration",
    "sepsis": "sepsis",
    "picu_transfer": "PICU transfer",
    "unplanned_admission": "unplanned admission",
}


def _card_comparison(metrics: dict[str, Any]) -> str:
    lines = [
        "| outcome | events (rows) | model AUROC | PEWS AUROC | pathway AUROC | logistic AUROC | model AUPRC | "
        "best baseline AUPRC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for outcome, entry in metrics["outcomes"].items():
        if entry["positives"] < MIN_EVENTS_TO_REPORT:
            lines.append(f"| {OUTCOME_TITLES[outcome]} | {entry['positives']} | too few events to report (< 10) | | | | | |")
            continue
        best = max(("pews", "pathway", "logistic"), key=lambda n: entry[n]["auroc"]["value"])
        lines.append(
            f"| {OUTCOME_TITLES[outcome]} | {entry['positives']} | {_ci(entry['model']['auroc'])} | "
            f"{_ci(entry['pews']['auroc'])} | {_ci(entry['pathway']['auroc'])} | {_ci(entry['logistic']['auroc'])} | "
            f"{_ci(entry['model']['auprc'])} | {_ci(entry[best]['auprc'])} ({best}) |"
        )
    return "\n".join(lines)


def _card_operating_points(metrics: dict[str, Any]) -> str:
    lines = [
        "| alert at | scoring times flagged | alerts per patient-day | alerts per 100 children per day | PPV | "
        "specificity | per-event sensitivity: sepsis | PICU transfer | unplanned admission |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    names = {"medium_or_higher": "medium band or higher", "high": "high band", "pathway": "febrile-neutropenia pathway"}
    for key, words in names.items():
        point = metrics["operating_points"][key]
        events = point["per_event_sensitivity"]
        lines.append(
            f"| {words} | {point['flagged_share']:.1%} | {point['alerts_per_patient_day']:.3f} | "
            f"{point['alerts_per_100_children_per_day']:.1f} | {_percent_ci(point['ppv'])} | "
            f"{_percent_ci(point['specificity'])} | {_percent_ci(events['sepsis'])} | "
            f"{_percent_ci(events['picu_transfer'])} | {_percent_ci(events['unplanned_admission'])} |"
        )
    return "\n".join(lines)


def _card_outcome_ppv(metrics: dict[str, Any]) -> str:
    outcomes = [o for o in metrics["outcomes"] if o != "any"]
    lines = [
        "| alert at | " + " | ".join(f"PPV: {OUTCOME_TITLES[o]}" for o in outcomes) + " |",
        "|---|" + "---|" * len(outcomes),
    ]
    names = {"medium_or_higher": "medium band or higher", "high": "high band", "pathway": "febrile-neutropenia pathway"}
    for key, words in names.items():
        ppv = metrics["operating_points"][key].get("ppv_per_outcome")
        if ppv is None:
            return ""
        lines.append(f"| {words} | " + " | ".join(_percent_ci(ppv[o]) for o in outcomes) + " |")
    return "\n".join(lines)


def _card_outcome_calibration(metrics: dict[str, Any]) -> str:
    lines = [
        "| outcome | events (rows) | model slope | model intercept | logistic slope | logistic intercept |",
        "|---|---|---|---|---|---|",
    ]
    for outcome, entry in metrics["outcomes"].items():
        calibration = entry.get("calibration")
        if calibration is None or entry["positives"] < MIN_EVENTS_TO_REPORT:
            lines.append(f"| {OUTCOME_TITLES[outcome]} | {entry['positives']} | too few events to report (< 10) | | | |")
            continue
        model, logistic = calibration["model"], calibration["logistic"]
        lines.append(
            f"| {OUTCOME_TITLES[outcome]} | {entry['positives']} | {model['slope']:.2f} | {model['intercept']:+.2f} | "
            f"{logistic['slope']:.2f} | {logistic['intercept']:+.2f} |"
        )
    return "\n".join(lines)


def _card_subgroups(metrics: dict[str, Any]) -> str:
    lines = ["| subgroup | children | events (rows) | model AUROC | logistic AUROC | PEWS AUROC | observed | mean predicted |",
             "|---|---|---|---|---|---|---|---|"]
    for name, entry in metrics["subgroups"].items():
        if "model_auroc" in entry:
            lines.append(
                f"| {name} | {entry['children']} | {entry['positives']} | {entry['model_auroc']:.3f} | "
                f"{entry['logistic_auroc']:.3f} | {entry['pews_auroc']:.3f} | {entry['observed_rate']:.2%} | "
                f"{entry['mean_predicted']:.2%} |"
            )
        else:
            lines.append(f"| {name} | {entry['children']} | {entry['positives']} | too few events (< 20) | | | | |")
    return "\n".join(lines)


def _share(value: float) -> str:
    return f"{value:.0%}" if np.isfinite(value) else "n/a (no gain in the reference scenario)"


def _card_scenarios(metrics: dict[str, Any]) -> str:
    if "scenarios" not in metrics:
        return (
            "Not run for this package (`build_reference_package(scenario_patients=...)` or "
            "`clinpred train deterioration --scenario-patients N` runs it)."
        )
    study = metrics["scenarios"]
    settings = study["settings"]
    lines = [
        f"Each scenario: a fresh simulated cohort of {settings['patients']} children (seed {settings['seed']}), "
        f"booster of {settings['num_boost_round']} trees, {settings['replicates']} patient-bootstrap replicates.",
        "",
        "| scenario | model AUROC | PEWS | pathway | logistic | best baseline | gain (95% CI) | "
        "share of reference gain retained |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in study["results"].values():
        a = result["auroc"]
        low, high = result["gain_ci95"]
        lines.append(
            f"| {result['description']} | {a['model']:.3f} | {a['pews']:.3f} | {a['pathway']:.3f} | {a['logistic']:.3f} | "
            f"{result['best_baseline']} | {result['gain']:.3f} ({low:.3f} to {high:.3f}) | {_share(result['gain_retained'])} |"
        )
    return "\n".join(lines)


def model_card(metrics: dict[str, Any], name: str, version: str) -> str:
    test = metrics["test"]
    data = metrics["data"]
    headline = metrics["headline"]
    best = headline["best_baseline"]
    bands = metrics["risk_bands"]
    budget = bands["alert_budget_per_100_children_per_day"]
    va = metrics["venn_abers_test"]
    cov = metrics["conformal_test"]
    calibration = metrics["calibration"]
    lr = metrics["pathway_logistic"]
    simulated = str(metrics["data_description"]).startswith("simulated")
    source = (
        f"SIMULATED cohort (`clinpred.pilots.deterioration.simulator`; {metrics['data_description']})"
        if simulated
        else f"Provided data ({metrics['data_description']})"
    )
    first_limitation = (
        "- Trained and tested on simulated data only: the figures show that the\n"
        "  pipeline works; how much of the gain the simulator builds in is measured\n"
        "  under \"Simulator assumptions tested\". They are not evidence of clinical\n"
        "  performance. Validate on a hospital's own data (`train_deterioration` accepts it) before use."
        if simulated
        else "- Validated on held-out patients of the same hospital and period only;\n"
        "  check calibration again before use in another setting or period."
    )
    provenance = (
        "Assumptions and sources: `pilots/deterioration/ASSUMPTIONS.md`. No real patient data."
        if simulated
        else "Provided by the hospital in the documented observation schema."
    )
    observed = bands["observed_test"]
    coefficients = ", ".join(f"{k} {v:+.3f}" for k, v in lr["coefficients"].items())
    any_outcome = metrics["outcomes"]["any"]
    return f"""# Model card: {name} {version} (paediatric deterioration at home)

Date: {metrics["built_on"]}. Owner: clinpred maintainers (deterioration pilot).
HTI-1 source attributes: `transparency.json` in this package (also in `GetModelInfo`).

## Headline
On {headline["bootstrap"]["children"]} held-out children, the model's AUROC for any deterioration
within {metrics["horizon_hours"]:g} h is {_ci(any_outcome["model"]["auroc"])}; the best baseline is the
**{best}** ({BASELINE_WORDS[best]}) with {_ci(any_outcome[best]["auroc"])}.
**Gain over the best baseline: AUROC {_ci(headline["auroc_gain"])}, AUPRC {_ci(headline["auprc_gain"])}**
(95 % CIs: {headline["bootstrap"]["replicates"]} bootstrap replicates resampling children, seed
{headline["bootstrap"]["seed"]}).

## Intended use and users
Early warning for children with cancer monitored at home by a telemedicine app,
for the paediatric oncology nurses and physicians of the home-care team. At a
scoring time the model gives the calibrated probability of an unplanned
admission, PICU transfer or sepsis within the next {metrics["horizon_hours"]:g} hours, a risk band,
a Venn-Abers probability interval, the band's observed event rate, and the
reasons (TreeSHAP). It informs a clinician's review of home observations; it
does not replace clinical judgement or the febrile-neutropenia pathway (every
febrile child with neutropenia is still assessed and given antibiotics within
about 60 minutes), and the Bedside PEWS is shown next to every score.
Not for: inpatients, intensive care, children without cancer, adults, or
deciding whether a febrile neutropenic child needs antibiotics.

## Data
{source}:
{data["patients"]} patients, {data["patient_days"]:.0f} patient-days, {data["events"]} events,
{data["scoring_rows"]} scoring times (every {metrics["scoring_interval_hours"]:g} h while at home),
{data["positive_rate"]:.2%} of them followed by an event within the horizon.
{provenance}

Split by patient: train {data["split_patients"]["train"]}, calibration
{data["split_patients"]["calibration"]}, test {data["split_patients"]["test"]} patients. Every figure below
is on the test children; the baselines are scored on the same rows.

## Model and baselines
LightGBM ({metrics["num_boost_round"]} trees, 15 leaves) on {len(FEATURE_NAMES)} windowed features
(latest values, 6 h means, 24 h extremes and trends, change from the child's
own week, Fleming z-scores, staleness and missing flags, labs, days since
chemotherapy, context, PEWS). Platt calibration on calibration patients.
Served as ONNX (max |ONNX - native| = {metrics["onnx_parity_max_abs_diff"]:.2g}).

Baselines: {"; ".join(f"**{k}**: {v}" for k, v in BASELINE_WORDS.items())}.
The logistic regression is fitted on the training children: intercept {lr["intercept"]:+.3f}; {coefficients}.

## Discrimination per outcome (AUROC and AUPRC with 95 % patient-bootstrap CIs)
The model predicts any deterioration; per outcome, its probability ranks the rows
whose horizon holds that event.

{_card_comparison(metrics)}

## Alert bands and operating points
Alert budget a home-care team can carry (ASSUMPTION: a nurse following 100 children can urgently
call back about {budget["high"]:g} families a day and review about {budget["medium"]:g}): at most
**{budget["high"]:g} high-band alerts and {budget["medium"]:g} medium-or-higher alerts per 100 children per day**.
An alert is a scoring time entering the band (as `WatchRisk` alerts). Thresholds, set on calibration
children at {BAND_TARGET_FRACTION:.0%} of the budget: medium from p >= {bands["medium"]}, high from p >= {bands["high"]}.
Per-event sensitivity: share of events with at least one flagged scoring time in the {metrics["horizon_hours"]:g} h
before them (events with a scoring time in that window). Wilson 95 % CIs (rows treated as independent).

{_card_operating_points(metrics)}

PPV per outcome: share of flagged scoring times followed within {metrics["horizon_hours"]:g} h by that outcome
(Wilson 95 % CIs; an admission with sepsis counts for both).

{_card_outcome_ppv(metrics)}

Observed event rate within {metrics["horizon_hours"]:g} h by band (test children, Wilson 95 % CI):
low {observed["low"]["rate"]:.2%} ({observed["low"]["ci95"][0]:.2%}-{observed["low"]["ci95"][1]:.2%}),
medium {observed["medium"]["rate"]:.2%} ({observed["medium"]["ci95"][0]:.2%}-{observed["medium"]["ci95"][1]:.2%}),
high {observed["high"]["rate"]:.2%} ({observed["high"]["ci95"][0]:.2%}-{observed["high"]["ci95"][1]:.2%}).

## Calibration
Calibration slope {calibration["model"]["slope"]:.2f}, intercept {calibration["model"]["intercept"]:+.2f}
(logistic baseline: {calibration["logistic"]["slope"]:.2f}, {calibration["logistic"]["intercept"]:+.2f}; ideal 1 and 0).
Brier {test["brier"]:.4f}; ECE (positive class, 10 equal-count bins) {test["ece_positive"]:.4f};
mean predicted {test["mean_predicted"]:.2%} against observed {test["observed_rate"]:.2%}.

Per outcome (logistic recalibration of that outcome's label on the logit of the probability of any
deterioration; intercept with the slope fixed at 1). The probability is of any deterioration, so against a
single outcome the intercept is negative by about the log of how much rarer that outcome is; the slope
says whether the ranking spreads that outcome's risks rightly (ideal 1).

{_card_outcome_calibration(metrics)}

![Calibration](calibration.png)

## Decision curve
Net benefit per scoring time against the threshold probability at which a clinician would review
(Vickers & Elkin 2006), model against the logistic baseline, the pathway, reviewing every child and none.

![Decision curve](decision_curve.png)

## Uncertainty
Each score carries an inductive Venn-Abers interval [p0, p1] (Vovk & Petej 2014) fitted on calibration
children: one of the two is a calibrated probability. Served as [min(p0, p), max(p1, p)], so that the
served (Platt) probability p lies inside where the two calibrations differ. Mean width of [p0, p1] on
test rows {va["mean_width"]:.4f}.
Held-out check, 10 equal-count bins of test rows: the observed rate's 95 % Wilson CI meets the bin's mean
interval in {va["coverage"]:.0%} of bins. The band's observed event rate (above) is shown with every score.
The class-conditional conformal set of 1.0.0 is still filled but deprecated: at {cov["target"]:.0%} it holds
both labels in {cov["both_rate"]:.0%} of test rows, which says little for a rare outcome.

## Subgroups (test children)
{_card_subgroups(metrics)}

## Simulator assumptions tested
How much of the gain over the best baseline survives when the simulator's favourable assumptions are
removed one at a time (`pilots/deterioration/scenarios.py`, documented in ASSUMPTIONS.md):

{_card_scenarios(metrics)}

![SHAP summary](shap_summary.png)

## Limitations
{first_limitation}
- Simulated physiology, missingness and event rates follow documented
  assumptions; real home data are noisier (crying, device errors).
- Scoring times are correlated within a patient; the bootstrap resamples patients,
  but the Wilson CIs of PPV and sensitivity treat rows or events as independent.
- PEWS is computed from home observations with missing items scored 0, as it would be at home.
- The pathway rule reads fever and neutropenia from home readings and the latest clinic count;
  in practice a parent's phone call starts the pathway at the first fever.
- Venn-Abers and conformal guarantees assume future children are exchangeable with calibration children.
- Sepsis and PICU transfer are recorded after the admission they follow, so few home scoring
  times fall within {metrics["horizon_hours"]:g} h before them: their rows are few (see the per-outcome table)
  and their figures are imprecise; an outcome with fewer than {MIN_EVENTS_TO_REPORT} positive rows is not reported.

## Monitoring plan
Weekly: alerts per 100 children per day against the budget above, and PPV of high-band alerts.
Monthly: observed event rate per band against the band's stated rate and CI; calibration slope and
intercept. Every 6 months, or after a change of case mix or protocol: recalibrate, re-evaluate against
the three baselines on local data, and issue a new package version.

## Change log
- 1.0.0: LightGBM with Platt calibration, class-conditional conformal sets, PEWS as the only comparator,
  bands at the 80th/95th percentiles of calibration scores.
- 1.1.0: baselines (PEWS, febrile-neutropenia pathway, logistic regression) on the same children with
  patient-bootstrap CIs; per-outcome and per-band figures; bands set by alert budget; Venn-Abers
  intervals and band event rates; decision curve; subgroups; simulator scenario study; HTI-1 attributes.
- 1.2.0: same model, bands and answers; calibration slope and intercept per outcome, and PPV per outcome
  at each band, in the card and in `GetModelInfo`.
"""


def train_deterioration(
    observations: pd.DataFrame,
    patients: pd.DataFrame,
    events: pd.DataFrame,
    *,
    models_root: Path | str,
    version: str | None = None,
    horizon_hours: float = 24,
    seed: int = 0,
    progress: bool = True,
    chemotherapy: pd.DataFrame | None = None,
    name: str = DEFAULT_NAME,
    interval_hours: float = 6.0,
    num_boost_round: int = 300,
    coverage: float = 0.9,
    data_description: str = "tables provided by the caller",
    scenarios: dict[str, Any] | None = None,
    built_on: date | None = None,
) -> TrainingReport:
    """Trains, evaluates and writes a model package at models_root/deterioration/<name>/<version>/.

    Accepts a hospital's own tables in the schema of `observations` (module
    docstring); they are validated first (InvalidInput names column and reason).
    `chemotherapy` (patient_id, administered_at) is optional: without it
    days_since_chemo is missing. `data_description` goes into the model card
    and metadata; a description starting with "simulated" marks simulated data.
    `scenarios` (from `scenarios.scenario_study`) is recorded in the metrics and the card.
    Raises InvalidInput when a split has fewer than 5 positive scoring times.
    """
    observations = load_observations(observations)
    patients = load_patients(patients)
    events = load_events(events)
    chemotherapy = load_chemotherapy(chemotherapy) if chemotherapy is not None else None
    check_references(observations, patients, events)
    if "monitoring_end" in patients.columns:
        patients["monitoring_end"] = pd.to_datetime(patients["monitoring_end"], utc=True)

    data = build_scoring_set(
        observations, patients, events, chemotherapy, horizon_hours=horizon_hours, interval_hours=interval_hours
    )
    split = split_patients(data.patient_ids, seed)
    for part, mask in split.items():
        if data.y[mask].sum() < 5 or data.y[mask].sum() == mask.sum():
            raise InvalidInput.of(
                [FieldViolation("events", f"too few events among {part} patients to train and evaluate (need >= 5)")]
            )
    train, cal, test = split["train"], split["calibration"], split["test"]
    booster = fit_booster(data.x[train], data.y[train], seed=seed, num_boost_round=num_boost_round, progress=progress)

    onnx_bytes = to_onnx(booster, len(FEATURE_NAMES))
    parity = check_onnx_parity(onnx_bytes, booster, data.x[test])
    session = onnx_session(onnx_bytes)
    raw_cal = onnx_positive_probability(session, data.x[cal])
    raw_test = onnx_positive_probability(session, data.x[test])
    calibrator = fit_calibrator(np.column_stack([1 - raw_cal, raw_cal]), data.y[cal])
    p_cal = calibrator.apply(np.column_stack([1 - raw_cal, raw_cal]))[:, 1]
    p_test = calibrator.apply(np.column_stack([1 - raw_test, raw_test]))[:, 1]
    conformal = fit_class_conditional(p_cal, data.y[cal], coverage)
    venn_abers = fit_venn_abers(p_cal, data.y[cal])
    logistic = PathwayLogistic.fit(data.x[train], data.y[train])
    y_test, pews_test = data.y[test], data.pews[test]
    bands = _risk_bands(p_cal, data.patient_ids[cal], interval_hours)
    bands["observed_test"] = _band_event_rates(p_test, y_test, bands["medium"], bands["high"])
    evaluation = evaluate_held_out(
        _held_out(data, test, p_test, logistic.probability(data.x[test]), events, patients),
        bands=bands,
        horizon_hours=horizon_hours,
        interval_hours=interval_hours,
        seed=seed,
    )
    n_events = int(events["event_type"].eq("unplanned_admission").sum())
    metrics: dict[str, Any] = {
        "horizon_hours": horizon_hours,
        "scoring_interval_hours": interval_hours,
        "seed": seed,
        "num_boost_round": num_boost_round,
        "onnx_parity_max_abs_diff": parity,
        "data": {
            "patients": int(patients.shape[0]),
            "patient_days": _patient_days(observations),
            "events": int(events.shape[0]),
            "unplanned_admissions": n_events,
            "scoring_rows": int(data.y.size),
            "positive_rate": float(data.y.mean()),
            "split_patients": {k: int(np.unique(data.patient_ids[m]).size) for k, m in split.items()},
        },
        "test": {
            "rows": int(y_test.size),
            "positives": int(y_test.sum()),
            "auroc": _auroc(y_test, p_test),
            "auprc": _auprc(y_test, p_test),
            "pews_auroc": _auroc(y_test, pews_test),
            "pews_auprc": _auprc(y_test, pews_test),
            "auroc_gain_ci95": evaluation["headline"]["auroc_gain_over_pews"]["ci95"],
            "brier": brier_score(np.column_stack([1 - p_test, p_test]), y_test),
            "ece_top_label": expected_calibration_error(np.column_stack([1 - p_test, p_test]), y_test),
            "ece_positive": positive_class_ece(y_test, p_test),
            "mean_predicted": float(p_test.mean()),
            "observed_rate": float(y_test.mean()),
        },
        "baselines": {
            name: {
                "auroc": evaluation["outcomes"]["any"][name]["auroc"]["value"],
                "auroc_ci95": evaluation["outcomes"]["any"][name]["auroc"]["ci95"],
                "auprc": evaluation["outcomes"]["any"][name]["auprc"]["value"],
                "auprc_ci95": evaluation["outcomes"]["any"][name]["auprc"]["ci95"],
            }
            for name in ("pews", "pathway", "logistic")
        },
        **evaluation,
        "pathway_logistic": logistic.to_json(),
        "venn_abers_test": calibration_check(venn_abers, p_test, y_test),
        "conformal_test": coverage_report(conformal, p_test, y_test),
        "risk_bands": bands,
        "data_description": data_description,
        "built_on": (built_on or datetime.now(UTC).date()).isoformat(),
        "python": platform.python_version(),
    }
    if scenarios is not None:
        metrics["scenarios"] = scenarios
    version = version or next_version(models_root, PILOT, name)
    writer = ModelPackageWriter(models_root, PILOT, name, version)
    try:
        writer.write_bytes("model.onnx", onnx_bytes)
        booster.save_model(str(writer.path("booster.txt")))
        writer.write_json("calibration.json", calibrator.to_json())
        writer.write_json("conformal.json", conformal.to_json())
        writer.write_json("venn_abers.json", venn_abers.to_json())
        writer.write_json("risk_bands.json", metrics["risk_bands"])
        writer.write_json("schema.json", _schema(data.x[train], horizon_hours, interval_hours).to_json())
        writer.write_json("metrics.json", json.loads(json.dumps(metrics, allow_nan=True)))
        writer.write_json("transparency.json", transparency_document(metrics, name, version))
        sample = np.random.default_rng(seed).choice(int(train.sum()), size=min(2000, int(train.sum())), replace=False)
        _shap_png(booster, data.x[train][np.sort(sample)], writer.path("shap_summary.png"), seed)
        _calibration_png(y_test, p_test, logistic.probability(data.x[test]), writer.path("calibration.png"))
        _decision_curve_png(metrics["decision_curve"], writer.path("decision_curve.png"))
        writer.write_text("MODEL_CARD.md", model_card(metrics, name, version))
        package = writer.finish(
            metadata={"horizon_hours": horizon_hours, "task": "deterioration within horizon", "data": data_description}
        )
    except BaseException:
        writer.abandon()
        raise
    return TrainingReport(package, metrics)


def _held_out(
    data: ScoringSet,
    test: npt.NDArray[np.bool_],
    p_test: FloatArray,
    logistic_test: FloatArray,
    events: pd.DataFrame,
    patients: pd.DataFrame,
) -> HeldOut:
    ids = patients["patient_id"].astype(str)
    sex = patients["sex"].astype(str) if "sex" in patients.columns else pd.Series(["unknown"] * len(ids))
    return HeldOut(
        x=data.x[test],
        y=data.y[test],
        patient_ids=data.patient_ids[test],
        hours=data.hours[test],
        pews=data.pews[test],
        model=p_test,
        logistic=logistic_test,
        event_patient_ids=np.asarray(events["patient_id"].astype(str).to_numpy()).astype(np.str_),
        event_hours=to_hours(events["event_time"]),
        event_types=np.asarray(events["event_type"].astype(str).to_numpy()).astype(np.str_),
        sex_of=dict(zip(ids, sex, strict=True)),
        diagnosis_of=dict(zip(ids, patients["diagnosis_group"].astype(str), strict=True)),
    )


def _patient_days(observations: pd.DataFrame) -> float:
    spans = observations.groupby("patient_id")["observed_at"].agg(["min", "max"])
    return float(((spans["max"] - spans["min"]).dt.total_seconds() / 86400.0).sum())


def build_reference_package(
    models_root: Path | str = "models",
    *,
    n_patients: int = 1200,
    seed: int = 0,
    version: str | None = None,
    horizon_hours: float = 24,
    progress: bool = True,
    scenario_patients: int = 0,
) -> TrainingReport:
    """The repository's reference package: a simulated cohort (about 100k patient-days) and the default settings.

    `scenario_patients` > 0 also runs the simulator-assumption study (`scenarios.py`) on cohorts of that size
    and records it in the package (the reference package uses 1200, the size of its own cohort).
    """
    from clinpred.pilots.deterioration.scenarios import scenario_study
    from clinpred.pilots.deterioration.simulator import simulate_cohort

    scenarios = scenario_study(n_patients=scenario_patients, seed=seed, progress=progress) if scenario_patients > 0 else None
    cohort = simulate_cohort(n_patients, seed=seed, progress=progress)
    return train_deterioration(
        cohort.observations,
        cohort.patients,
        cohort.events,
        chemotherapy=cohort.chemotherapy,
        models_root=models_root,
        version=version,
        horizon_hours=horizon_hours,
        seed=seed,
        progress=progress,
        data_description=f"simulated: {n_patients} patients, simulator seed {seed}",
        scenarios=scenarios,
    )
