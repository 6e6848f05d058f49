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


def _bootstrap_auroc_gain(
    y: IntArray, model: FloatArray, pews: FloatArray, patients: npt.NDArray[np.str_], seed: int, rounds: int = 200
) -> tuple[float, float]:
    """95 % interval of AUROC(model) - AUROC(PEWS), resampling whole patients."""
    rng = np.random.default_rng(seed)
    unique, inverse = np.unique(patients, return_inverse=True)
    rows_of = [np.nonzero(inverse == k)[0] for k in range(unique.size)]
    gains = []
    for _ in range(rounds):
        rows = np.concatenate([rows_of[k] for k in rng.integers(0, unique.size, unique.size)])
        if 0 < y[rows].sum() < rows.size:
            gains.append(_auroc(y[rows], model[rows]) - _auroc(y[rows], pews[rows]))
    low, high = np.percentile(gains, [2.5, 97.5])
    return float(low), float(high)


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


def _calibration_png(y: IntArray, p: FloatArray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(p, kind="stable")
    chunks = [c for c in np.array_split(order, 10) if c.size]
    predicted = [float(p[c].mean()) for c in chunks]
    observed = [float(y[c].mean()) for c in chunks]
    top = max(max(predicted), max(observed)) * 1.1
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="perfect")
    ax.plot(predicted, observed, marker="o", label="model (test patients)")
    ax.set_xlabel("mean predicted probability (decile)")
    ax.set_ylabel("observed event rate")
    ax.set_title("Calibration on held-out patients", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.savefig(path, dpi=72, bbox_inches="tight", metadata={"Software": None})
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


def _risk_bands(p_calibration: FloatArray) -> dict[str, Any]:
    """Medium: top 20 % of calibration scoring times; high: top 5 % (an alert budget, ASSUMPTION)."""
    medium, high = np.quantile(p_calibration, [0.80, 0.95])
    return {
        "medium": float(f"{medium:.3g}"),
        "high": float(f"{high:.3g}"),
        "rule": "low if p < medium; medium if medium <= p < high; high if p >= high",
        "basis": "quantiles 0.80 and 0.95 of calibrated probabilities of calibration patients",
    }


def model_card(metrics: dict[str, Any], name: str, version: str) -> str:
    test = metrics["test"]
    cov = metrics["conformal_test"]
    data = metrics["data"]
    simulated = str(metrics["data_description"]).startswith("simulated")
    source = (
        f"SIMULATED cohort (`clinpred.pilots.deterioration.simulator`; {metrics['data_description']})"
        if simulated
        else f"Provided data ({metrics['data_description']})"
    )
    first_limitation = (
        "- Trained and tested on simulated data only: the figures show that the\n"
        "  pipeline works and that the model uses information PEWS ignores\n"
        "  (neutropenia, fever, trends); they are not evidence of clinical performance.\n"
        "  Validate on a hospital's own data (`train_deterioration` accepts it) before use."
        if simulated
        else "- Validated on held-out patients of the same hospital and period only;\n"
        "  check calibration again before use in another setting or period."
    )
    provenance = (
        "Assumptions and sources: `pilots/deterioration/ASSUMPTIONS.md`. No real patient data."
        if simulated
        else "Provided by the hospital in the documented observation schema."
    )
    return f"""# Model card: {name} {version} (paediatric deterioration at home)

## Intended use
Early warning for children with cancer monitored at home by a telemedicine app.
At a scoring time the model gives the calibrated probability of an unplanned
admission, PICU transfer or sepsis within the next {metrics["horizon_hours"]:g} hours,
a risk band, a class-conditional conformal set, and the reasons (TreeSHAP). It
supports clinicians' review of home observations; it does not replace clinical
judgement, the febrile-neutropenia pathway or the Bedside PEWS, which is shown
next to every score.

## Data
{source}:
{data["patients"]} patients, {data["patient_days"]:.0f} patient-days, {data["events"]} events,
{data["scoring_rows"]} scoring times (every {metrics["scoring_interval_hours"]:g} h while at home),
{data["positive_rate"]:.2%} of them followed by an event within the horizon.
{provenance}

Split by patient: train {data["split_patients"]["train"]}, calibration
{data["split_patients"]["calibration"]}, test {data["split_patients"]["test"]} patients.

## Model
LightGBM ({metrics["num_boost_round"]} trees, 15 leaves) on {len(FEATURE_NAMES)} windowed features
(latest values, 6 h means, 24 h extremes and trends, change from the child's
own week, Fleming z-scores, staleness and missing flags, labs, days since
chemotherapy, context, PEWS). Platt calibration on calibration patients.
Served as ONNX (max |ONNX - native| = {metrics["onnx_parity_max_abs_diff"]:.2g}).

## Performance on held-out (test) patients
| metric | model | Bedside PEWS |
|---|---|---|
| AUROC | {test["auroc"]:.3f} | {test["pews_auroc"]:.3f} |
| AUPRC | {test["auprc"]:.3f} | {test["pews_auprc"]:.3f} |

AUROC gain over PEWS {test["auroc"] - test["pews_auroc"]:.3f} (95 % patient bootstrap
{test["auroc_gain_ci95"][0]:.3f} to {test["auroc_gain_ci95"][1]:.3f}).
Brier {test["brier"]:.4f}; ECE (positive class, 10 equal-count bins) {test["ece_positive"]:.4f};
top-label ECE {test["ece_top_label"]:.4f}. Rows {test["rows"]}, positive rows {test["positives"]}.

Conformal sets (target {cov["target"]:.0%}): coverage {cov["coverage"]:.3f}
(no deterioration {cov["coverage_no_deterioration"]:.3f}, deterioration
{cov["coverage_deterioration"]:.3f}); mean set size {cov["mean_set_size"]:.2f}.

Risk bands: medium from p >= {metrics["risk_bands"]["medium"]}, high from p >= {metrics["risk_bands"]["high"]}.

![SHAP summary](shap_summary.png)
![Calibration](calibration.png)

## Limitations
{first_limitation}
- Simulated physiology, missingness and event rates follow documented
  assumptions; real home data are noisier, and parents' measurements are
  affected by antipyretics, crying and device errors the simulator ignores.
- Scoring times are correlated within a patient; the bootstrap resamples patients.
- PEWS is computed from home observations with missing items scored 0, which
  handicaps it compared with ward use, as it would be at home.
- Conformal coverage assumes future patients are exchangeable with calibration patients.
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
) -> TrainingReport:
    """Trains, evaluates and writes a model package at models_root/deterioration/<name>/<version>/.

    Accepts a hospital's own tables in the schema of `observations` (module
    docstring); they are validated first (InvalidInput names column and reason).
    `chemotherapy` (patient_id, administered_at) is optional: without it
    days_since_chemo is missing. `data_description` goes into the model card
    and metadata; a description starting with "simulated" marks simulated data.
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
    y_test, pews_test = data.y[test], data.pews[test]
    gain_low, gain_high = _bootstrap_auroc_gain(y_test, p_test, pews_test, data.patient_ids[test], seed)
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
            "auroc_gain_ci95": [gain_low, gain_high],
            "brier": brier_score(np.column_stack([1 - p_test, p_test]), y_test),
            "ece_top_label": expected_calibration_error(np.column_stack([1 - p_test, p_test]), y_test),
            "ece_positive": positive_class_ece(y_test, p_test),
            "mean_predicted": float(p_test.mean()),
            "observed_rate": float(y_test.mean()),
        },
        "conformal_test": coverage_report(conformal, p_test, y_test),
        "risk_bands": _risk_bands(p_cal),
        "data_description": data_description,
        "python": platform.python_version(),
    }
    version = version or next_version(models_root, PILOT, name)
    writer = ModelPackageWriter(models_root, PILOT, name, version)
    try:
        writer.write_bytes("model.onnx", onnx_bytes)
        booster.save_model(str(writer.path("booster.txt")))
        writer.write_json("calibration.json", calibrator.to_json())
        writer.write_json("conformal.json", conformal.to_json())
        writer.write_json("risk_bands.json", metrics["risk_bands"])
        writer.write_json("schema.json", _schema(data.x[train], horizon_hours, interval_hours).to_json())
        writer.write_json("metrics.json", json.loads(json.dumps(metrics, allow_nan=True)))
        sample = np.random.default_rng(seed).choice(int(train.sum()), size=min(2000, int(train.sum())), replace=False)
        _shap_png(booster, data.x[train][np.sort(sample)], writer.path("shap_summary.png"), seed)
        _calibration_png(y_test, p_test, writer.path("calibration.png"))
        writer.write_text("MODEL_CARD.md", model_card(metrics, name, version))
        package = writer.finish(
            metadata={"horizon_hours": horizon_hours, "task": "deterioration within horizon", "data": data_description}
        )
    except BaseException:
        writer.abandon()
        raise
    return TrainingReport(package, metrics)


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
) -> TrainingReport:
    """The repository's reference package: a simulated cohort (about 100k patient-days) and the default settings."""
    from clinpred.pilots.deterioration.simulator import simulate_cohort

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
    )
