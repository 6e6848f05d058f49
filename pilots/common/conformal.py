"""Split-conformal prediction sets for classifiers, fitted on calibrated out-of-fold probabilities.

Score: `s = 1 - p(true class)` (the "LAC" score: smallest sets on average).
With n calibration scores, `q_hat` is the `ceil((n + 1) * coverage) / n`
empirical quantile (the finite-sample correction), and a case's set holds
every class with `1 - p(class) <= q_hat`. If the calibration cases and a new
case are exchangeable, the set contains the true class with probability at
least `coverage`. When n is too small for the requested coverage
(`ceil((n + 1) * coverage) > n`), `q_hat` is 1 and every set holds all classes.

The set always includes the most probable class: an empty set says nothing
useful to a clinician, and adding a class can only raise coverage, so the
guarantee still holds.

Out-of-fold probabilities come from fold models while serving uses the model
refitted on all data; the coverage actually achieved is therefore verified on
held-out folds (`cross_conformal_coverage`) and recorded in metrics rather
than assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clinpred.pilots.common.calibration import fit_calibrator

LAC = "split-conformal (LAC score 1 - p, top class always included)"
MONDRIAN = "class-conditional split-conformal (Mondrian, LAC score 1 - p, top class always included)"


@dataclass(frozen=True)
class ConformalSet:
    labels: tuple[str, ...]
    coverage: float
    method: str
    statement: str
    # An interval on the positive-class probability, for models that give one (e.g. Venn-Abers).
    lower: float | None = None
    upper: float | None = None


def _percent(coverage: float) -> str:
    return f"{coverage * 100:.4g}%"


def set_statement(labels: tuple[str, ...], coverage: float) -> str:
    """E.g. "with 95% coverage the true class is in {malignant}"."""
    return f"with {_percent(coverage)} coverage the true class is in {{{', '.join(labels)}}}"


@dataclass(frozen=True)
class SplitConformal:
    classes: tuple[str, ...]
    coverage: float
    q_hat: float
    n_calibration: int
    method: str = LAC
    # Mondrian sets: one threshold per class (schema order), each fitted on that class's calibration
    # cases only, so coverage holds within each class (a bounded miss rate for the positive class).
    # None keeps the marginal set from `q_hat`.
    class_q_hat: tuple[float, ...] | None = None
    # Sets (and their statements) are built once per distinct mask, so serving mostly just looks up.
    _cache: dict[tuple[bool, ...], ConformalSet] = field(default_factory=dict, init=False, repr=False, compare=False)

    def mask(self, probabilities: np.ndarray) -> np.ndarray:
        """Boolean `[n, k]`: which classes are in each row's set."""
        p = np.asarray(probabilities, dtype=np.float64)
        thresholds = np.asarray(self.class_q_hat) if self.class_q_hat is not None else self.q_hat
        inside = (1.0 - p) <= thresholds
        inside[np.arange(p.shape[0]), p.argmax(axis=1)] = True
        return np.asarray(inside)

    def sets(self, probabilities: np.ndarray) -> list[ConformalSet]:
        return self.sets_from_mask(self.mask(probabilities))

    def sets_from_mask(self, mask: np.ndarray) -> list[ConformalSet]:
        """The sets of a boolean `[n, k]` mask (e.g. `mask(p)` with classes a caller must include)."""
        cache = self._cache
        result = []
        for row in mask:
            key = tuple(bool(v) for v in row)
            found = cache.get(key)
            if found is None:
                labels = tuple(c for c, keep in zip(self.classes, key, strict=True) if keep)
                found = ConformalSet(labels, self.coverage, self.method, set_statement(labels, self.coverage))
                cache[key] = found
            result.append(found)
        return result

    def __post_init__(self) -> None:
        if self.class_q_hat is not None and len(self.class_q_hat) != len(self.classes):
            raise ValueError("class_q_hat needs one threshold per class")

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "classes": list(self.classes),
            "coverage": self.coverage,
            "q_hat": self.q_hat,
            "n_calibration": self.n_calibration,
            "method": self.method,
        }
        if self.class_q_hat is not None:
            obj["class_q_hat"] = list(self.class_q_hat)
        return obj

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SplitConformal:
        per_class = obj.get("class_q_hat")
        return cls(
            classes=tuple(obj["classes"]),
            coverage=float(obj["coverage"]),
            q_hat=float(obj["q_hat"]),
            n_calibration=int(obj["n_calibration"]),
            method=str(obj.get("method", LAC)),
            class_q_hat=tuple(float(q) for q in per_class) if per_class is not None else None,
        )


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The finite-sample-corrected quantile of nonconformity scores (1.0 if n is too small)."""
    if not 0.0 < coverage < 1.0:
        raise ValueError("coverage must be in (0, 1)")
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    n = scores.size
    rank = math.ceil((n + 1) * coverage)
    if n == 0 or rank > n:
        return 1.0
    return float(scores[rank - 1])


def fit_conformal(
    probabilities: np.ndarray, y: np.ndarray, classes: tuple[str, ...], coverage: float = 0.95
) -> SplitConformal:
    """Fit on calibrated out-of-fold probabilities `[n, k]` and class indices `y[n]`."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if p.ndim != 2 or p.shape != (y.size, len(classes)):
        raise ValueError("probabilities must be [n, k] with one column per class and one row per label")
    scores = 1.0 - p[np.arange(y.size), y]
    return SplitConformal(tuple(classes), coverage, conformal_quantile(scores, coverage), int(y.size))


def fit_mondrian_conformal(
    probabilities: np.ndarray, y: np.ndarray, classes: tuple[str, ...], coverage: float = 0.95
) -> SplitConformal:
    """Class-conditional sets: `q_hat` per class from that class's cases; the marginal `q_hat` is kept
    beside them for readers that state one threshold."""
    marginal = fit_conformal(probabilities, y, classes, coverage)
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    per_class = tuple(conformal_quantile(1.0 - p[y == k, k], coverage) for k in range(len(classes)))
    return SplitConformal(tuple(classes), coverage, marginal.q_hat, marginal.n_calibration, MONDRIAN, per_class)


def class_coverage(mask: np.ndarray, y: np.ndarray, classes: tuple[str, ...]) -> dict[str, float]:
    """Per class, the fraction of its rows whose set (boolean `[n, k]`) holds it (NaN-free: classes without rows are left out)."""
    y = np.asarray(y, dtype=np.int64)
    return {c: float(np.mean(mask[y == k, k])) for k, c in enumerate(classes) if np.any(y == k)}


def empirical_coverage(mask: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows whose set (boolean `[n, k]`) holds the true class."""
    y = np.asarray(y, dtype=np.int64)
    return float(np.mean(mask[np.arange(y.size), y]))


@dataclass(frozen=True)
class CoverageCheck:
    """Coverage achieved on cases the conformal quantile was not fitted on."""

    target: float
    coverage: float
    mean_set_size: float
    singleton_rate: float
    n: int
    per_class: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "heldout_coverage": self.coverage,
            "mean_set_size": self.mean_set_size,
            "singleton_rate": self.singleton_rate,
            "n_heldout": self.n,
            "heldout_class_coverage": self.per_class,
        }


def cross_conformal_coverage(
    probabilities: np.ndarray,
    y: np.ndarray,
    folds: np.ndarray,
    classes: tuple[str, ...],
    coverage: float = 0.95,
    *,
    recalibrate: bool = False,
    mondrian: bool = False,
) -> CoverageCheck:
    """For each fold, fit `q_hat` on the other folds and measure coverage on this one.

    With `recalibrate=True`, `probabilities` are uncalibrated out-of-fold
    probabilities and each held-out fold is checked against the whole serving
    pipeline refitted without it: calibration map, then `q_hat`. The held-out
    fold then influences nothing it is scored with. `mondrian=True` checks class-conditional sets.
    """
    fit = fit_mondrian_conformal if mondrian else fit_conformal
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    folds = np.asarray(folds)
    mask = np.zeros_like(p, dtype=bool)
    for fold in np.unique(folds):
        held = folds == fold
        train_p, held_p = p[~held], p[held]
        if recalibrate:
            calibrator = fit_calibrator(train_p, y[~held])
            train_p, held_p = calibrator.apply(train_p), calibrator.apply(held_p)
        mask[held] = fit(train_p, y[~held], classes, coverage).mask(held_p)
    sizes = mask.sum(axis=1)
    return CoverageCheck(
        target=coverage,
        coverage=empirical_coverage(mask, y),
        mean_set_size=float(sizes.mean()),
        singleton_rate=float(np.mean(sizes == 1)),
        n=int(y.size),
        per_class=class_coverage(mask, y, classes),
    )
