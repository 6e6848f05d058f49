"""Class-conditional (Mondrian) conformal prediction sets for a rare binary outcome.

Why not the shared split-conformal (pilots/common/conformal.py, LAC score with
the top class always included): deterioration within 24 h happens at a few
percent of scoring times, so the most probable class is almost always "no
deterioration" and a marginal set {no deterioration} covers 1 - prevalence of
cases whatever the nominal coverage; it says nothing about the children who
do deteriorate. Mondrian conformal calibrates one threshold per true class,
so that, with exchangeable patients, the set contains "deterioration" for at
least `coverage` of the children who will deteriorate AND "no deterioration"
for at least `coverage` of those who will not. Marginal coverage then follows.

Score for class c: 1 - p(c); class c is in the set when its score is at most
that class's finite-sample quantile (`conformal_quantile` from the shared
module). Sets are {no deterioration}, {deterioration}, both (uncertain), or,
rarely, empty (a probability typical of neither outcome in calibration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from clinpred.pilots.common.conformal import conformal_quantile

CLASSES: Final = ("no deterioration", "deterioration")
METHOD: Final = "class-conditional (Mondrian) split conformal, score 1 - p(class)"


@dataclass(frozen=True)
class ClassConditionalConformal:
    coverage: float
    q_hat: tuple[float, float]
    n_calibration: tuple[int, int]
    classes: tuple[str, str] = CLASSES
    method: str = METHOD

    def mask(self, positive_probability: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Boolean [n, 2]: which classes are in each row's set."""
        p = np.atleast_1d(np.asarray(positive_probability, dtype=np.float64))
        return np.column_stack([p <= self.q_hat[0], (1.0 - p) <= self.q_hat[1]])

    def labels(self, positive_probability: float) -> tuple[str, ...]:
        row = self.mask([positive_probability])[0]
        return tuple(c for c, keep in zip(self.classes, row, strict=True) if keep)

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "coverage": self.coverage,
            "q_hat": list(self.q_hat),
            "n_calibration": list(self.n_calibration),
            "method": self.method,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ClassConditionalConformal:
        q0, q1 = (float(v) for v in obj["q_hat"])
        n0, n1 = (int(v) for v in obj["n_calibration"])
        c0, c1 = (str(v) for v in obj["classes"])
        return cls(float(obj["coverage"]), (q0, q1), (n0, n1), (c0, c1), str(obj.get("method", METHOD)))


def fit_class_conditional(
    positive_probability: npt.ArrayLike, y: npt.ArrayLike, coverage: float = 0.9
) -> ClassConditionalConformal:
    """Fit on calibrated probabilities of held-out (calibration) patients."""
    p = np.asarray(positive_probability, dtype=np.float64)
    labels = np.asarray(y, dtype=np.int64)
    negatives, positives = p[labels == 0], p[labels == 1]
    return ClassConditionalConformal(
        coverage=coverage,
        q_hat=(conformal_quantile(negatives, coverage), conformal_quantile(1.0 - positives, coverage)),
        n_calibration=(int(negatives.size), int(positives.size)),
    )


def coverage_report(
    conformal: ClassConditionalConformal, positive_probability: npt.ArrayLike, y: npt.ArrayLike
) -> dict[str, float]:
    """Marginal and per-class coverage, mean set size and how often sets are empty or hold both classes."""
    labels = np.asarray(y, dtype=np.int64)
    mask = conformal.mask(positive_probability)
    covered = mask[np.arange(labels.size), labels]
    sizes = mask.sum(axis=1)
    return {
        "target": conformal.coverage,
        "coverage": float(covered.mean()),
        "coverage_no_deterioration": float(covered[labels == 0].mean()) if (labels == 0).any() else float("nan"),
        "coverage_deterioration": float(covered[labels == 1].mean()) if (labels == 1).any() else float("nan"),
        "mean_set_size": float(sizes.mean()),
        "empty_rate": float(np.mean(sizes == 0)),
        "both_rate": float(np.mean(sizes == 2)),
        "n": int(labels.size),
    }
