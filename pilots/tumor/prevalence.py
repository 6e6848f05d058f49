"""Probabilities for a clinic whose share of malignant tumours is not the training data's (Bayes prior shift).

If only the prevalence differs (the features of each class are distributed as in training), Bayes'
rule changes the positive class's log-odds by `logit(clinical) - logit(training)` and nothing else, so
the calibrated log-odds are shifted by that constant. Conformal sets are left as fitted: class-conditional
(Mondrian) coverage depends only on each class's own feature distribution, so it survives a prevalence
change, while the shifted probabilities and label are what the clinic's population implies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class PriorShift:
    """The positive class's prevalence in the training data and in the clinic answers are for."""

    training_prevalence: float
    clinical_prevalence: float

    def __post_init__(self) -> None:
        for name in ("training_prevalence", "clinical_prevalence"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be strictly between 0 and 1")

    @property
    def log_odds(self) -> float:
        """Added to the calibrated log-odds of the positive class; 0 when the two prevalences agree."""
        return logit(self.clinical_prevalence) - logit(self.training_prevalence)

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Binary `[n, 2]` (positive class second) at the clinical prevalence."""
        p = np.asarray(probabilities, dtype=np.float64)
        if self.log_odds == 0.0:
            return p
        positive = np.clip(p[:, 1], 1e-15, 1.0 - 1e-15)
        shifted = 1.0 / (1.0 + np.exp(-(np.log(positive / (1.0 - positive)) + self.log_odds)))
        return np.column_stack([1.0 - shifted, shifted])


def training_prevalence(metrics: Mapping[str, Any], positive_class: str) -> float:
    """The positive class's share of the training cases, from the package's recorded class counts."""
    counts = metrics.get("details", {}).get("class_counts", {})
    total = sum(int(n) for n in counts.values())
    if total == 0 or int(counts.get(positive_class, 0)) in (0, total):
        raise ValueError("the package records no class counts with both classes present")
    return int(counts[positive_class]) / total
