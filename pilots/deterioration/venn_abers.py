"""Inductive Venn-Abers probability intervals for a rare binary outcome.

Why: a two-label conformal set says "{no event, event}" for most children when
events are rare, which informs nobody. A Venn-Abers predictor (Vovk & Petej,
"Venn-Abers predictors", UAI 2014; inductive form in Vovk, Petej & Fedorova,
NeurIPS 2015) answers with two probabilities [p0, p1] for a test score s:

    p0(s) = g0(s), g0 the isotonic regression of the calibration labels on
            their scores with (s, 0) added;
    p1(s) = g1(s), the same with (s, 1) added.

One of the two is a perfectly calibrated probability (the Venn property,
under exchangeability of calibration and test children), so the interval
says how far calibration can be trusted at this score; it is narrow where
the calibration children are many and wide where they are few. The usual
single probability is p1 / (1 - p0 + p1).

Serving cannot refit isotonic regressions per request, so training evaluates
p0 and p1 on a grid of scores (calibration quantiles) and serving answers, for
a score between grid points g_k <= s <= g_k+1, the conservative interval
[p0(g_k), p1(g_k+1)]: p0 and p1 are non-decreasing in s, so this contains
the exact interval. A pure module; scikit-learn's IsotonicRegression fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
METHOD: Final = "inductive Venn-Abers (Vovk & Petej 2014) on the calibrated probability"
DEFAULT_GRID: Final = 200


def _isotonic_at(scores: FloatArray, labels: FloatArray, s: float, label: float) -> float:
    from sklearn.isotonic import IsotonicRegression

    fit = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    fit.fit(np.append(scores, s), np.append(labels, label))
    return float(fit.predict([s])[0])


@dataclass(frozen=True)
class VennAbers:
    grid: tuple[float, ...]
    p0: tuple[float, ...]
    p1: tuple[float, ...]
    n_calibration: int
    method: str = METHOD

    def interval(self, score: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Conservative [lower, upper] for each score (see the module docstring)."""
        s = np.atleast_1d(np.asarray(score, dtype=np.float64))
        grid = np.asarray(self.grid)
        below = np.clip(np.searchsorted(grid, s, side="right") - 1, 0, grid.size - 1)
        above = np.clip(np.searchsorted(grid, s, side="left"), 0, grid.size - 1)
        return np.asarray(self.p0)[below], np.asarray(self.p1)[above]

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "n_calibration": self.n_calibration,
            "grid": list(self.grid),
            "p0": list(self.p0),
            "p1": list(self.p1),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> VennAbers:
        return cls(
            tuple(float(v) for v in obj["grid"]),
            tuple(float(v) for v in obj["p0"]),
            tuple(float(v) for v in obj["p1"]),
            int(obj["n_calibration"]),
            str(obj.get("method", METHOD)),
        )


def fit_venn_abers(score: npt.ArrayLike, y: npt.ArrayLike, grid_size: int = DEFAULT_GRID) -> VennAbers:
    """Fits on calibration children's scores; the grid is their quantiles plus 0 and 1."""
    s = np.asarray(score, dtype=np.float64)
    labels = np.asarray(y, dtype=np.float64)
    # Denser in the upper tail, where alerts are decided and events are few.
    levels = np.unique(np.concatenate([np.linspace(0, 1, grid_size // 2), 1 - np.geomspace(1e-4, 0.5, grid_size // 2)]))
    grid = np.unique(np.concatenate([[0.0], np.quantile(s, levels), [1.0]]))
    p0 = [_isotonic_at(s, labels, float(g), 0.0) for g in grid]
    p1 = [_isotonic_at(s, labels, float(g), 1.0) for g in grid]
    # Monotone by construction up to float noise; enforced so that the conservative rule holds exactly.
    return VennAbers(
        tuple(float(g) for g in grid),
        tuple(float(v) for v in np.maximum.accumulate(p0)),
        tuple(float(v) for v in np.maximum.accumulate(p1)),
        int(s.size),
    )


def calibration_check(
    venn_abers: VennAbers, score: npt.ArrayLike, y: npt.ArrayLike, bins: int = 10
) -> dict[str, Any]:
    """Held-out check: per equal-count bin of score, does the observed event rate's 95 % Wilson CI meet the bin's
    mean Venn-Abers interval? `coverage` is the share of bins where it does."""
    from clinpred.pilots.deterioration.evaluation import wilson_interval

    s = np.asarray(score, dtype=np.float64)
    labels = np.asarray(y, dtype=np.int64)
    lower, upper = venn_abers.interval(s)
    order = np.argsort(s, kind="stable")
    rows: list[dict[str, Any]] = []
    for chunk in np.array_split(order, bins):
        if not chunk.size:
            continue
        observed = float(labels[chunk].mean())
        ci = wilson_interval(float(labels[chunk].sum()), float(chunk.size))
        lo, hi = float(lower[chunk].mean()), float(upper[chunk].mean())
        rows.append(
            {
                "mean_score": float(s[chunk].mean()),
                "lower": lo,
                "upper": hi,
                "observed": observed,
                "observed_ci95": list(ci),
                "agrees": bool(ci[0] <= hi and ci[1] >= lo),
                "n": int(chunk.size),
            }
        )
    return {
        "bins": rows,
        "coverage": float(np.mean([r["agrees"] for r in rows])) if rows else float("nan"),
        "mean_width": float(np.mean(upper - lower)) if s.size else float("nan"),
        "observed_within_interval_rate": float(np.mean([r["lower"] <= r["observed"] <= r["upper"] for r in rows])),
    }
