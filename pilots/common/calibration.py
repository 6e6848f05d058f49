"""Probability calibration fitted on out-of-fold predictions, applied with numpy at inference.

Choice of method:

- Binary models: **Platt scaling on the log-odds**, `p' = sigmoid(a * logit(p) + b)`
  with `a > 0`. Two parameters fix both over/under-confidence (slope) and a
  shifted base rate (intercept).
- Multi-class models: **temperature scaling**, `p' = softmax(log(p) / T)`,
  `T > 0`. One parameter, and it never changes which class ranks first.

Both are monotone: Platt scaling keeps a binary model's ranking of cases
(AUROC) but its intercept moves the 0.5 threshold, so a borderline label can
change; temperature scaling never changes which class ranks first. Isotonic regression was rejected:
with a few hundred out-of-fold predictions it learns a step function that
ties many cases to the same probability (losing ranking information and
making conformal scores coarse), and it overfits the calibration set; one or
two parameters cannot overfit a few hundred points. Parameters are fitted by
maximum likelihood (log loss) with L-BFGS on the log of the positive
parameters, which keeps them positive without constraints.

Probabilities are always arrays `[n, k]` with columns in the model's class
order; for binary models column 1 is the positive class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

# Keeps logs finite when a model says exactly 0 or 1 (ONNX float32 saturates).
_EPS = 1e-12


def _as_2d(probabilities: np.ndarray) -> np.ndarray:
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError("probabilities must be an array [n, k] with k >= 2 classes")
    return p


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return np.asarray(np.log(p) - np.log1p(-p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class Calibrator:
    """A fitted calibration map. `method` is "platt", "temperature" or "identity"."""

    method: str
    n_classes: int
    slope: float = 1.0  # platt: a
    intercept: float = 0.0  # platt: b
    temperature: float = 1.0  # temperature scaling: T
    n_fitted: int = 0

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated probabilities `[n, k]`; rows sum to 1."""
        p = _as_2d(probabilities)
        if p.shape[1] != self.n_classes:
            raise ValueError(f"calibrator expects {self.n_classes} classes, got {p.shape[1]}")
        if self.method == "identity":
            return p / p.sum(axis=1, keepdims=True)
        if self.method == "platt":
            pos = _sigmoid(self.slope * _logit(p[:, 1]) + self.intercept)
            return np.column_stack([1.0 - pos, pos])
        if self.method == "temperature":
            return _softmax(np.log(np.clip(p, _EPS, 1.0)) / self.temperature)
        raise ValueError(f"unknown calibration method {self.method!r}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "n_classes": self.n_classes, "n_fitted": self.n_fitted}
        if self.method == "platt":
            out.update(slope=self.slope, intercept=self.intercept)
        elif self.method == "temperature":
            out.update(temperature=self.temperature)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Calibrator:
        method = str(obj["method"])
        if method not in {"platt", "temperature", "identity"}:
            raise ValueError(f"unknown calibration method {method!r}")
        return cls(
            method=method,
            n_classes=int(obj["n_classes"]),
            slope=float(obj.get("slope", 1.0)),
            intercept=float(obj.get("intercept", 0.0)),
            temperature=float(obj.get("temperature", 1.0)),
            n_fitted=int(obj.get("n_fitted", 0)),
        )


def binary_probabilities_from_margins(margins: np.ndarray, calibrator: Calibrator) -> np.ndarray:
    """Calibrated `[n, 2]` from raw log-odds of the positive class: the sigmoid a binary booster's
    ONNX graph applies, then `calibrator`. Served answers and answers a client finishes from a
    decrypted margin both go through here."""
    z = np.asarray(margins, dtype=np.float64).reshape(-1)
    positive = _sigmoid(z)
    return calibrator.apply(np.column_stack([1.0 - positive, positive]))


def _check_labels(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (p.shape[0],):
        raise ValueError("y must have one label index per row of probabilities")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError("labels must be class indices 0..k-1")
    return y.astype(np.int64)


def fit_calibrator(probabilities: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit on out-of-fold probabilities `[n, k]` and true class indices `y[n]`.

    Binary (k == 2) gets Platt scaling, k > 2 temperature scaling.
    """
    p = _as_2d(probabilities)
    y = _check_labels(p, y)
    n, k = p.shape
    if k == 2:
        z = _logit(p[:, 1])
        t = (y == 1).astype(np.float64)

        def platt_nll(theta: np.ndarray) -> float:
            a, b = np.exp(theta[0]), theta[1]
            s = a * z + b
            # log(1 + e^s) - t*s, the numerically stable form of binary log loss.
            return float(np.mean(np.logaddexp(0.0, s) - t * s))

        res = minimize(platt_nll, x0=np.zeros(2), method="L-BFGS-B")
        return Calibrator("platt", 2, slope=float(np.exp(res.x[0])), intercept=float(res.x[1]), n_fitted=n)

    logp = np.log(np.clip(p, _EPS, 1.0))

    def temperature_nll(theta: np.ndarray) -> float:
        scaled = logp / np.exp(theta[0])
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return float(np.mean(log_norm - scaled[np.arange(n), y]))

    res = minimize(temperature_nll, x0=np.zeros(1), method="L-BFGS-B", bounds=[(-5.0, 5.0)])
    return Calibrator("temperature", k, temperature=float(np.exp(res.x[0])), n_fitted=n)


def brier_score(probabilities: np.ndarray, y: np.ndarray) -> float:
    """Brier score (lower is better).

    Binary: the usual `mean((p_positive - y)^2)` in [0, 1], positive = column 1.
    Multi-class: Brier's original `mean(sum_k (p_k - 1[y = k])^2)` in [0, 2].
    """
    p = _as_2d(probabilities)
    y = _check_labels(p, y)
    if p.shape[1] == 2:
        return float(np.mean((p[:, 1] - (y == 1)) ** 2))
    onehot = np.eye(p.shape[1])[y]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def log_loss(probabilities: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (natural log; probabilities clipped at 1e-12)."""
    p = _as_2d(probabilities)
    y = _check_labels(p, y)
    return float(-np.mean(np.log(np.clip(p[np.arange(y.size), y], _EPS, 1.0))))


def expected_calibration_error(probabilities: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """Top-label ECE with `n_bins` equal-width confidence bins over [0, 1].

    Confidence is the largest probability of a row; bin b holds confidences in
    `(b/n_bins, (b+1)/n_bins]` (the first bin also holds 0). ECE is the
    count-weighted mean over non-empty bins of |accuracy - mean confidence|.
    """
    p = _as_2d(probabilities)
    y = _check_labels(p, y)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def cross_fitted_calibration(probabilities: np.ndarray, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Calibrated probabilities where each fold's map was fitted on the other folds only.

    Scoring calibration on the points it was fitted on is optimistic; this
    gives honest held-out Brier/ECE for the calibrated model.
    """
    p = _as_2d(probabilities)
    folds = np.asarray(folds)
    out = np.empty_like(p)
    for fold in np.unique(folds):
        held = folds == fold
        out[held] = fit_calibrator(p[~held], np.asarray(y)[~held]).apply(p[held])
    return out
