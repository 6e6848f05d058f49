"""Nested, repeated cross-validation of a binary tumour classifier against a penalised logistic regression.

Why nested: choosing the tree count (or the logistic regression's penalty) and
deciding on calibration with the same folds that report the figures makes the
figures optimistic. Here every outer training fold runs its own inner
cross-validation to choose the tree count / C and to decide whether Platt
calibration helps (only if it lowers the inner held-out log loss); the outer
held-out fold is touched once, for scoring. Both models see the same outer
folds for every split seed, so their per-fold figures pair up.

The same inner out-of-fold probabilities also fit class-conditional (Mondrian)
conformal quantiles, one per class, so that each class's own coverage (the
malignant miss rate in particular) is bounded at the stated level; their
coverage and share of two-label sets is measured on the outer folds.

At a clinic whose share of malignant tumours is not the data's 37%, the held-out
probabilities are shifted to that prevalence (`prevalence.PriorShift`, what
`CLINPRED_TUMOR_CLINICAL_PREVALENCE` serves) and the biopsy-threshold operating
point is read off the shifted and the unshifted ones: sensitivity and
specificity are measured within each class, so they carry over to any
prevalence, and PPV, the share referred and the net benefit follow from them at
the clinic's prevalence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from clinpred.pilots.common.calibration import (
    Calibrator,
    brier_score,
    cross_fitted_calibration,
    expected_calibration_error,
    fit_calibrator,
    log_loss,
)
from clinpred.pilots.common.conformal import conformal_quantile
from clinpred.pilots.tumor.prevalence import PriorShift
from clinpred.pilots.tumor.training import make_estimator

BOOSTED_STUMPS = "boosted_stumps"
LOGISTIC_REGRESSION = "logistic_regression"
METRICS = ("log_loss", "auroc", "accuracy", "brier", "ece")
INNER_SPLITS = 5
# The tree counts tried, as shares of the configured count (1500 -> 250, 500, 1000, 1500).
TREE_SHARES = (1 / 6, 1 / 3, 2 / 3, 1.0)
LR_CS = tuple(float(c) for c in np.logspace(-3, 2, 11))
MONDRIAN_COVERAGES = (0.95, 0.99)
# BI-RADS category 4 (recommend biopsy) starts at a 2% likelihood of malignancy: the referral threshold.
BIOPSY_THRESHOLD = 0.02
DECISION_THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
CURVE_THRESHOLDS = tuple(round(0.01 * i, 2) for i in range(1, 61))
ECE_BINS = 10
# Shares of malignant tumours among the cases a clinic might send (the data's own is 37%); 5% is the README's example.
CLINICAL_PREVALENCES = (0.05, 0.1, 0.2)
OPERATING_POINT_KEYS = ("sensitivity", "specificity", "ppv", "referred_share")

def _auroc(y: np.ndarray, p1: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p1))


def _two_columns(p1: np.ndarray) -> np.ndarray:
    p1 = np.clip(np.asarray(p1, dtype=np.float64), 0.0, 1.0)
    return np.column_stack([1.0 - p1, p1])


def fold_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The five figures of one held-out fold, from probabilities `[n, 2]`."""
    return {
        "log_loss": log_loss(p, y),
        "auroc": _auroc(y, p[:, 1]),
        "accuracy": float(np.mean(p.argmax(axis=1) == y)),
        "brier": brier_score(p, y),
        "ece": expected_calibration_error(p, y, ECE_BINS),
    }


def _inner_probabilities_booster(
    x: np.ndarray, y: np.ndarray, params: Mapping[str, Any], seed: int, counts: Sequence[int], inner: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Inner out-of-fold positive-class probabilities `[len(counts), n]` and inner fold indices."""

    out = np.zeros((len(counts), y.size))
    folds = np.zeros(y.size, dtype=np.int64)
    for k, (train, held) in enumerate(inner.split(x, y)):
        model = make_estimator("xgboost", {**params, "n_estimators": max(counts)}, seed, 2).fit(x[train], y[train])
        for j, count in enumerate(counts):
            out[j, held] = model.predict_proba(x[held], iteration_range=(0, count))[:, 1]
        folds[held] = k
    return out, folds


def _logistic(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Standardised inside the pipeline, so each training fold's own means and SDs are used.
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=10_000))


def _inner_probabilities_logistic(
    x: np.ndarray, y: np.ndarray, cs: Sequence[float], inner: Any
) -> tuple[np.ndarray, np.ndarray]:
    out = np.zeros((len(cs), y.size))
    folds = np.zeros(y.size, dtype=np.int64)
    for k, (train, held) in enumerate(inner.split(x, y)):
        for j, c in enumerate(cs):
            out[j, held] = _logistic(c).fit(x[train], y[train]).predict_proba(x[held])[:, 1]
        folds[held] = k
    return out, folds


def _choose(inner_p1: np.ndarray, y: np.ndarray, folds: np.ndarray) -> tuple[int, Calibrator | None, np.ndarray]:
    """The setting with the lowest inner log loss; Platt calibration only if it lowers it further.

    Returns the setting's index, the calibrator (or None) and the inner
    probabilities `[n, 2]` as served (calibrated or not), for the conformal quantiles.
    """
    losses = [log_loss(_two_columns(p1), y) for p1 in inner_p1]
    best = int(np.argmin(losses))
    raw = _two_columns(inner_p1[best])
    cross_fitted = cross_fitted_calibration(raw, y, folds)
    if log_loss(cross_fitted, y) < losses[best]:
        return best, fit_calibrator(raw, y), cross_fitted
    return best, None, raw


def mondrian_quantiles(p: np.ndarray, y: np.ndarray, coverage: float) -> np.ndarray:
    """One finite-sample conformal quantile of `1 - p(class)` per class, over that class's cases only."""
    return np.array([conformal_quantile(1.0 - p[y == k, k], coverage) for k in range(p.shape[1])])


def mondrian_mask(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Which classes are in each set: class k if `1 - p_k <= q_k`; the top class always (never an empty set)."""
    inside = (1.0 - p) <= q[None, :]
    inside[np.arange(p.shape[0]), p.argmax(axis=1)] = True
    return np.asarray(inside)


def net_benefit(y: np.ndarray, p1: np.ndarray, threshold: float) -> float:
    """Net benefit of referring every case with `p1 >= threshold`: TP/n - FP/n * t / (1 - t) (Vickers & Elkin 2006)."""
    refer = p1 >= threshold
    n = y.size
    return float(np.sum(refer & (y == 1)) / n - np.sum(refer & (y == 0)) / n * threshold / (1.0 - threshold))


def operating_point(y: np.ndarray, p1: np.ndarray, threshold: float) -> dict[str, float]:
    refer = p1 >= threshold
    tp, fp = np.sum(refer & (y == 1)), np.sum(refer & (y == 0))
    return {
        "sensitivity": float(tp / max(1, np.sum(y == 1))),
        "specificity": float(np.sum(~refer & (y == 0)) / max(1, np.sum(y == 0))),
        "ppv": float(tp / max(1, tp + fp)),
        "referred_share": float(refer.mean()),
    }


def reliability_bins(y: np.ndarray, p1: np.ndarray, n_bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per equal-width bin of P(malignant): cases, mean prediction, observed share and its 95% Wilson interval."""
    from scipy.stats import binomtest

    bins = np.clip(np.ceil(p1 * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        inside = bins == b
        n = int(inside.sum())
        if n == 0:
            continue
        events = int(y[inside].sum())
        interval = binomtest(events, n).proportion_ci(confidence_level=0.95, method="wilson")
        low, high = interval.low, interval.high
        rows.append(
            {"n": n, "predicted": float(p1[inside].mean()), "observed": events / n, "low": float(low), "high": float(high)}
        )
    return rows


def operating_point_at_prevalence(y: np.ndarray, p1: np.ndarray, threshold: float, prevalence: float) -> dict[str, float]:
    """Referral at `p1 >= threshold` in a population with this share of positives (same class-conditional scores).

    Sensitivity and specificity are measured within each class of `y`; PPV, the share referred and the net
    benefit TP/n - FP/n * t/(1-t) are those they imply at `prevalence`.
    """
    point = operating_point(y, p1, threshold)
    tp = point["sensitivity"] * prevalence
    fp = (1.0 - point["specificity"]) * (1.0 - prevalence)
    return {
        "sensitivity": point["sensitivity"],
        "specificity": point["specificity"],
        "ppv": tp / (tp + fp) if tp + fp > 0 else 0.0,
        "referred_share": tp + fp,
        "net_benefit": tp - fp * threshold / (1.0 - threshold),
    }


def prevalence_recalibration(
    y: np.ndarray, heldout: np.ndarray, prevalences: Sequence[float], threshold: float
) -> dict[str, Any]:
    """Per clinical prevalence: the biopsy-threshold operating point with the served shift and without it.

    `heldout`: one row of held-out P(positive) per split seed, at the data's own prevalence. Mean and SD over
    the rows (split seeds).
    """
    training = float(np.mean(y))
    out: dict[str, Any] = {}
    for prevalence in prevalences:
        shift = PriorShift(training, prevalence)
        variants = {
            "recalibrated": [shift.apply(_two_columns(row))[:, 1] for row in heldout],
            "not_recalibrated": list(heldout),
        }
        out[f"{prevalence:g}"] = {
            name: {
                key: _summary([operating_point_at_prevalence(y, row, threshold, prevalence)[key] for row in rows])
                for key in (*OPERATING_POINT_KEYS, "net_benefit")
            }
            for name, rows in variants.items()
        } | {"refer_all_net_benefit": prevalence - (1.0 - prevalence) * threshold / (1.0 - threshold),
             "log_odds_shift": shift.log_odds}
    return out



def _summary(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0}


def nested_comparison(
    x32: np.ndarray,
    y: np.ndarray,
    booster_params: Mapping[str, Any],
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    n_splits: int = 10,
    inner_splits: int = INNER_SPLITS,
    cs: Sequence[float] = LR_CS,
    coverages: Sequence[float] = MONDRIAN_COVERAGES,
    prevalences: Sequence[float] = CLINICAL_PREVALENCES,
    progress: bool = False,
) -> dict[str, Any]:
    """Boosted stumps and penalised logistic regression on the same outer folds, for each split seed.

    `x32` float32 `[n, d]` (what the booster reads; the logistic regression
    reads the same values as float64), `y` 0/1 with 1 the positive class.
    """
    from sklearn.model_selection import StratifiedKFold
    from tqdm.auto import tqdm

    y = np.asarray(y, dtype=np.int64)
    x64 = x32.astype(np.float64)
    n_trees = int(booster_params["n_estimators"])
    counts = sorted({max(1, round(n_trees * share)) for share in TREE_SHARES})
    names = (BOOSTED_STUMPS, LOGISTIC_REGRESSION)
    per_fold: dict[str, dict[str, list[float]]] = {m: {k: [] for k in METRICS} for m in names}
    settings: dict[str, list[float]] = {m: [] for m in names}
    calibrated: dict[str, int] = dict.fromkeys(names, 0)
    # Per model and coverage: [cases of class k covered, cases of class k, two-label sets, cases].
    tallies = {m: {c: np.zeros(4) for c in coverages} for m in names}
    class_covered = {m: {c: np.zeros(2) for c in coverages} for m in names}
    class_total = np.zeros(2)
    # Held-out positive-class probabilities, one full out-of-fold vector per model and split seed.
    heldout = {m: np.zeros((len(seeds), y.size)) for m in names}
    total = len(seeds) * n_splits
    bar = tqdm(total=total, desc="nested CV", unit="fold", disable=not progress)
    for seed_index, seed in enumerate(seeds):
        outer = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for train, held in outer.split(x32, y):
            inner = StratifiedKFold(n_splits=inner_splits, shuffle=True, random_state=seed)
            class_total += np.bincount(y[held], minlength=2)
            for name in names:
                if name == BOOSTED_STUMPS:
                    inner_p1, inner_folds = _inner_probabilities_booster(
                        x32[train], y[train], booster_params, seed, counts, inner
                    )
                    best, calibrator, served_inner = _choose(inner_p1, y[train], inner_folds)
                    setting: float = counts[best]
                    model = make_estimator("xgboost", {**booster_params, "n_estimators": counts[best]}, seed, 2)
                    p1 = model.fit(x32[train], y[train]).predict_proba(x32[held])[:, 1]
                else:
                    inner_p1, inner_folds = _inner_probabilities_logistic(x64[train], y[train], cs, inner)
                    best, calibrator, served_inner = _choose(inner_p1, y[train], inner_folds)
                    setting = cs[best]
                    p1 = _logistic(cs[best]).fit(x64[train], y[train]).predict_proba(x64[held])[:, 1]
                p = _two_columns(p1)
                if calibrator is not None:
                    p = calibrator.apply(p)
                    calibrated[name] += 1
                settings[name].append(setting)
                heldout[name][seed_index, held] = p[:, 1]
                for key, value in fold_metrics(y[held], p).items():
                    per_fold[name][key].append(value)
                for coverage in coverages:
                    mask = mondrian_mask(p, mondrian_quantiles(served_inner, y[train], coverage))
                    covered = mask[np.arange(held.size), y[held]]
                    class_covered[name][coverage] += np.bincount(y[held], weights=covered, minlength=2)
                    tallies[name][coverage][2] += float(np.sum(mask.sum(axis=1) == 2))
                    tallies[name][coverage][3] += held.size
            bar.update(1)
    bar.close()

    models: dict[str, Any] = {}
    for name in names:
        mondrian = {}
        for coverage in coverages:
            covered = class_covered[name][coverage] / class_total
            mondrian[f"{coverage:g}"] = {
                "coverage_benign": float(covered[0]),
                "coverage_malignant": float(covered[1]),
                "malignant_miss_rate": float(1.0 - covered[1]),
                "two_label_share": float(tallies[name][coverage][2] / tallies[name][coverage][3]),
            }
        curve = np.array([[net_benefit(y, row, t) for t in DECISION_THRESHOLDS] for row in heldout[name]])
        points = [operating_point(y, row, BIOPSY_THRESHOLD) for row in heldout[name]]
        models[name] = {
            "metrics": {key: _summary(per_fold[name][key]) for key in METRICS},
            "net_benefit": {f"{t:g}": float(v) for t, v in zip(DECISION_THRESHOLDS, curve.mean(axis=0), strict=True)},
            # One split seed's held-out cases, so each case counts once in the intervals.
            "reliability_first_seed": reliability_bins(y, heldout[name][0]),
            "net_benefit_curve": [
                float(np.mean([net_benefit(y, row, t) for row in heldout[name]])) for t in CURVE_THRESHOLDS
            ],
            "biopsy_threshold_operating_point": {k: _summary([pt[k] for pt in points]) for k in points[0]},
            "clinical_prevalence": prevalence_recalibration(y, heldout[name], prevalences, BIOPSY_THRESHOLD),
            "chosen": {f"{s:g}": n for s, n in sorted(Counter(settings[name]).items())},
            "calibrated_folds": calibrated[name],
            "mondrian_conformal": mondrian,
            "per_fold": per_fold[name],
        }
    difference = np.asarray(per_fold[BOOSTED_STUMPS]["log_loss"]) - np.asarray(per_fold[LOGISTIC_REGRESSION]["log_loss"])
    winner = LOGISTIC_REGRESSION if difference.mean() > 0 else BOOSTED_STUMPS
    return {
        "design": (
            f"{len(seeds)} split seeds x {n_splits} stratified outer folds; inside each outer training fold a "
            f"{inner_splits}-fold inner CV chooses the tree count ({', '.join(map(str, counts))}) or the logistic "
            f"regression's C ({len(cs)} values, {min(cs):g} to {max(cs):g}, standardised features) by log loss, "
            "and applies Platt calibration only where it lowers the inner held-out log loss; figures are mean and "
            "SD over the outer folds"
        ),
        "seeds": list(seeds),
        "n_splits": n_splits,
        "inner_splits": inner_splits,
        "tree_counts": counts,
        "cs": list(cs),
        "models": models,
        "log_loss_difference_stumps_minus_lr": _summary(difference.tolist()),
        "winner_log_loss": winner,
        "decision_curve": {
            "biopsy_threshold": BIOPSY_THRESHOLD,
            "thresholds": list(DECISION_THRESHOLDS),
            "curve_thresholds": list(CURVE_THRESHOLDS),
            "refer_all_curve": [net_benefit(y, np.ones(y.size), t) for t in CURVE_THRESHOLDS],
            "refer_all": {f"{t:g}": net_benefit(y, np.ones(y.size), t) for t in DECISION_THRESHOLDS},
            "definition": (
                "net benefit TP/n - FP/n * t/(1-t) of referring every case with held-out P(malignant) >= t, "
                "pooled out-of-fold per split seed, mean over seeds; referring none has net benefit 0"
            ),
        },
    }
