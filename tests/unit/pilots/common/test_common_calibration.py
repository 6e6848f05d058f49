"""Calibration maps, Brier score and ECE on synthetic cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from clinpred.pilots.common.calibration import (
    Calibrator,
    brier_score,
    cross_fitted_calibration,
    expected_calibration_error,
    fit_calibrator,
    log_loss,
)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def overconfident_binary() -> tuple[np.ndarray, np.ndarray]:
    """True log-odds z; the model reports sigmoid(3z), so Platt's slope must come out near 1/3."""
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 2.0, 20_000)
    y = (rng.random(z.size) < _sigmoid(z)).astype(np.int64)
    reported = _sigmoid(3.0 * z)
    return np.column_stack([1.0 - reported, reported]), y


def test_platt_recovers_a_known_overconfidence(overconfident_binary: tuple[np.ndarray, np.ndarray]) -> None:
    p, y = overconfident_binary
    calibrator = fit_calibrator(p, y)
    assert calibrator.method == "platt"
    assert calibrator.slope == pytest.approx(1 / 3, abs=0.02)
    assert calibrator.intercept == pytest.approx(0.0, abs=0.05)
    calibrated = calibrator.apply(p)
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    assert expected_calibration_error(p, y) > 0.1
    assert expected_calibration_error(calibrated, y) < 0.02
    assert brier_score(calibrated, y) < brier_score(p, y)
    assert log_loss(calibrated, y) < log_loss(p, y)


def test_platt_keeps_the_ranking(overconfident_binary: tuple[np.ndarray, np.ndarray]) -> None:
    p, y = overconfident_binary
    calibrated = fit_calibrator(p, y).apply(p)
    order = np.argsort(p[:, 1], kind="stable")
    assert np.all(np.diff(calibrated[order, 1]) >= -1e-12)


def test_temperature_scaling_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(0.0, 1.5, (20_000, 3))
    truth = _softmax(logits)
    y = np.array([rng.choice(3, p=row) for row in truth])
    reported = _softmax(2.0 * logits)
    calibrator = fit_calibrator(reported, y)
    assert calibrator.method == "temperature"
    assert calibrator.temperature == pytest.approx(2.0, rel=0.05)
    calibrated = calibrator.apply(reported)
    assert np.array_equal(calibrated.argmax(axis=1), reported.argmax(axis=1))
    assert np.abs(calibrated - truth).max() < 0.05


def test_calibrators_survive_a_json_round_trip(overconfident_binary: tuple[np.ndarray, np.ndarray]) -> None:
    p, y = overconfident_binary
    calibrator = fit_calibrator(p, y)
    restored = Calibrator.from_json(calibrator.to_json())
    assert restored == calibrator
    assert np.array_equal(restored.apply(p[:50]), calibrator.apply(p[:50]))


def test_a_calibrator_refuses_another_number_of_classes() -> None:
    calibrator = Calibrator("temperature", 3, temperature=1.5)
    with pytest.raises(ValueError, match="expects 3 classes"):
        calibrator.apply(np.array([[0.4, 0.6]]))


def test_saturated_probabilities_stay_finite() -> None:
    calibrator = Calibrator("platt", 2, slope=0.8, intercept=0.1)
    out = calibrator.apply(np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert np.isfinite(out).all()
    assert out[0, 1] > 0.99 and out[1, 1] < 0.01


def test_brier_score_known_values() -> None:
    binary = np.array([[0.1, 0.9], [0.8, 0.2]])
    assert brier_score(binary, np.array([1, 0])) == pytest.approx((0.1**2 + 0.2**2) / 2)
    # Multi-class: a confident wrong answer costs 2, a perfect one 0.
    multi = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert brier_score(multi, np.array([1, 2])) == pytest.approx(1.0)


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    # 10 cases at confidence 0.8, 8 of them right.
    p = np.tile([0.2, 0.8], (10, 1))
    y = np.array([1] * 8 + [0] * 2)
    assert expected_calibration_error(p, y) == pytest.approx(0.0, abs=1e-12)


def test_ece_weights_bins_by_count() -> None:
    # Bin (0.9, 1.0]: 6 cases at confidence 1.0, 3 right -> gap 0.5.
    # Bin (0.6, 0.7]: 4 cases at confidence 0.7, all right -> gap 0.3.
    p = np.vstack([np.tile([0.0, 1.0], (6, 1)), np.tile([0.3, 0.7], (4, 1))])
    y = np.array([1, 1, 1, 0, 0, 0, 1, 1, 1, 1])
    assert expected_calibration_error(p, y) == pytest.approx(0.6 * 0.5 + 0.4 * 0.3)


def test_ece_bins_are_closed_on_the_right() -> None:
    # Confidence exactly 0.7 belongs to (0.6, 0.7], with 0.65, not with 0.75.
    p = np.array([[0.3, 0.7], [0.35, 0.65], [0.25, 0.75]])
    y = np.array([1, 0, 1])
    # (0.6, 0.7]: conf mean 0.675, accuracy 0.5 -> 0.175 * 2/3; (0.7, 0.8]: 0.25 * 1/3.
    assert expected_calibration_error(p, y) == pytest.approx(0.175 * 2 / 3 + 0.25 / 3)


def test_cross_fitting_never_uses_the_held_out_fold(overconfident_binary: tuple[np.ndarray, np.ndarray]) -> None:
    p, y = overconfident_binary
    p, y = p[:3000], y[:3000]
    folds = np.arange(y.size) % 5
    out = cross_fitted_calibration(p, y, folds)
    held = folds == 2
    expected = fit_calibrator(p[~held], y[~held]).apply(p[held])
    assert np.array_equal(out[held], expected)
    # Changing the held-out fold's labels changes nothing about its own calibrated values.
    flipped = y.copy()
    flipped[held] = 1 - flipped[held]
    assert np.array_equal(cross_fitted_calibration(p, flipped, folds)[held], out[held])


def test_labels_must_be_class_indices() -> None:
    with pytest.raises(ValueError, match="class indices"):
        brier_score(np.array([[0.5, 0.5]]), np.array([2]))
