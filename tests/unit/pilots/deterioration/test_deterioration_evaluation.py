"""Held-out evaluation pieces: the vectorised patient bootstrap, the pathway rule, event windows, Venn-Abers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from clinpred.pilots.deterioration.evaluation import (
    alert_onsets,
    band_burden,
    bootstrap_auc,
    bootstrap_counts,
    calibration_slope_intercept,
    event_within_horizon,
    pathway_alert,
    per_event_sensitivity,
    point_auc,
    wilson_interval,
)
from clinpred.pilots.deterioration.features import FEATURE_NAMES
from clinpred.pilots.deterioration.venn_abers import calibration_check, fit_venn_abers


def _sample(seed: int, n_patients: int = 40, rows: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    patient = np.repeat(np.arange(n_patients), rows)
    risk = rng.normal(0, 1, n_patients)[patient] + rng.normal(0, 1, patient.size)
    y = (rng.random(patient.size) < 1 / (1 + np.exp(-(risk - 3)))).astype(np.int64)
    # Rounded scores make ties, which AUROC counts as half.
    return np.round(risk, 1), y, patient


def test_point_figures_match_scikit_learn() -> None:
    score, y, _ = _sample(1)
    auroc, auprc = point_auc(y, score)
    assert auroc == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert auprc == pytest.approx(average_precision_score(y, score), abs=1e-12)


def test_a_bootstrap_replicate_equals_the_resampled_children_concatenated() -> None:
    score, y, patient = _sample(2)
    counts = bootstrap_counts(40, 5, seed=3)
    boot = bootstrap_auc(y, {"s": score}, patient, counts)
    for b in range(5):
        rows = np.concatenate([np.nonzero(patient == k)[0] for k in range(40) for _ in range(int(counts[b, k]))])
        assert boot["s"]["auroc"][b] == pytest.approx(roc_auc_score(y[rows], score[rows]), abs=1e-12)
        assert boot["s"]["auprc"][b] == pytest.approx(average_precision_score(y[rows], score[rows]), abs=1e-12)


def test_bootstrap_draws_whole_children() -> None:
    counts = bootstrap_counts(25, 200, seed=0)
    assert counts.shape == (200, 25)
    assert (counts.sum(axis=1) == 25).all()
    assert (counts == 0).any()  # some children are left out of some replicates


def _rows(**columns: list[float]) -> np.ndarray:
    n = len(next(iter(columns.values())))
    x = np.full((n, len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    for name, values in columns.items():
        x[:, FEATURE_NAMES.index(name)] = values
    return x


def test_pathway_rule_needs_fever_and_neutropenia_or_recent_chemotherapy() -> None:
    x = _rows(
        temperature_c_max_24h=[38.4, 38.4, 38.1, 38.1, 37.0, 38.5, np.nan],
        fever_readings_24h=[1, 1, 2, 1, 0, 1, np.nan],
        neutrophils_g_l_last=[0.3, 2.0, 0.2, 0.2, 0.1, np.nan, 0.1],
        days_since_chemo=[20, 3, 20, 20, 1, 30, 1],
    )
    # febrile+ANC<0.5; febrile+chemo 3 d ago; two readings >= 38.0; one reading of 38.1 only; afebrile;
    # febrile without counts or recent chemotherapy; nothing measured.
    assert pathway_alert(x).tolist() == [True, True, True, False, False, False, False]


def test_event_windows_alerts_and_per_event_sensitivity() -> None:
    patient = np.array([0, 0, 0, 0, 1, 1, 1])
    hours = np.array([0.0, 6, 12, 18, 0, 6, 12])
    y = event_within_horizon(patient, hours, np.array([0]), np.array([20.0]), 12.0)
    assert y.tolist() == [False, False, True, True, False, False, False]
    flagged = np.array([False, True, True, False, True, True, False])
    assert alert_onsets(flagged, patient).tolist() == [False, True, False, False, True, False, False]
    caught, seen = per_event_sensitivity(flagged, patient, hours, np.array([0, 1, 1]), np.array([20.0, 13.0, 40.0]), 12.0)
    # Patient 0's event at 20 h: flagged at 12 h (within 12 h before). Patient 1's at 13 h: flagged at 6 h.
    # Patient 1's at 40 h has no scoring time in the 12 h before it, so it is not counted.
    assert (caught, seen) == (2, 2)
    burden = band_burden(flagged, patient, 6.0, n_children=2)
    assert burden["alerts"] == 2
    assert burden["alerts_per_patient_day"] == pytest.approx(2 / (7 * 6 / 24))


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)


def test_calibration_slope_and_intercept_of_a_calibrated_and_an_overconfident_model() -> None:
    rng = np.random.default_rng(5)
    logit = rng.normal(-3, 1.2, 40_000)
    y = (rng.random(logit.size) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    slope, intercept = calibration_slope_intercept(y, 1 / (1 + np.exp(-logit)))
    # Standard errors at this size are about 0.03 (slope) and 0.02 (intercept): 4 SE tolerances.
    assert slope == pytest.approx(1.0, abs=0.12) and intercept == pytest.approx(0.0, abs=0.08)
    slope, _ = calibration_slope_intercept(y, 1 / (1 + np.exp(-2 * logit)))
    assert slope == pytest.approx(0.5, abs=0.06)


def test_venn_abers_intervals_are_ordered_and_agree_with_held_out_rates() -> None:
    rng = np.random.default_rng(9)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        p = 1 / (1 + np.exp(-rng.normal(-3.5, 1.0, n)))
        return p, (rng.random(n) < p).astype(np.int64)

    p_cal, y_cal = draw(20_000)
    p_new, y_new = draw(20_000)
    venn_abers = fit_venn_abers(p_cal, y_cal)
    lower, upper = venn_abers.interval(p_new)
    assert (lower <= upper).all() and (lower >= 0).all() and (upper <= 1).all()
    check = calibration_check(venn_abers, p_new, y_new)
    # Each bin's 95 % Wilson CI misses a calibrated interval about 5 % of the time; 8 of 10 bins allows
    # for that and for the conservative grid.
    assert check["coverage"] >= 0.8
    # The interval carries information: far narrower than the range of probabilities.
    assert check["mean_width"] < 0.02
    restored = type(venn_abers).from_json(venn_abers.to_json())
    assert restored == venn_abers
