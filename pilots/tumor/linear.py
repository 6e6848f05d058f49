"""The standardised L2 logistic regression as a tumour model: its margin and its exact SHAP values.

A linear model on standardised features is additive, so with the training mean as the
interventional background each feature's SHAP value is exactly `w_f * (z_f - mean z_f)`
and the base value is the margin at the training mean (no sampling, no approximation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from clinpred.pilots.common.errors import ModelPackageError
from clinpred.pilots.common.explanation import LOG_ODDS, SOFTMAX_LOGIT, TreeShap

LINEAR_SHAP_METHOD = "Linear SHAP (exact; w_f * (z_f - training mean of z_f) on standardised features)"


@dataclass(frozen=True)
class LinearTumorModel:
    """`z = (x - mean) / scale`, margin `coef @ z + intercept`; `z_mean` is the training rows' mean of z."""

    mean: np.ndarray  # [d]
    scale: np.ndarray  # [d]
    coef: np.ndarray  # [k, d], k = 1 for binary
    intercept: np.ndarray  # [k]
    z_mean: np.ndarray  # [d]

    @classmethod
    def from_pipeline(cls, pipeline: Any, x: np.ndarray) -> LinearTumorModel:
        scaler, regression = pipeline[0], pipeline[-1]
        mean = np.asarray(scaler.mean_, dtype=np.float64)
        scale = np.asarray(scaler.scale_, dtype=np.float64)
        z = (np.asarray(x, dtype=np.float64) - mean) / scale
        return cls(
            mean=mean,
            scale=scale,
            coef=np.atleast_2d(np.asarray(regression.coef_, dtype=np.float64)),
            intercept=np.atleast_1d(np.asarray(regression.intercept_, dtype=np.float64)),
            z_mean=z.mean(axis=0),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "standardised_logistic_regression",
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "z_mean": self.z_mean.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinearTumorModel:
        try:
            model = cls(
                mean=np.asarray(data["mean"], dtype=np.float64),
                scale=np.asarray(data["scale"], dtype=np.float64),
                coef=np.atleast_2d(np.asarray(data["coef"], dtype=np.float64)),
                intercept=np.atleast_1d(np.asarray(data["intercept"], dtype=np.float64)),
                z_mean=np.asarray(data["z_mean"], dtype=np.float64),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelPackageError(f"linear model file is malformed: {exc}") from exc
        d = model.mean.size
        if model.scale.size != d or model.coef.shape[1] != d or model.z_mean.size != d:
            raise ModelPackageError("linear model file: coefficient and scaler sizes disagree")
        if model.intercept.size != model.coef.shape[0] or not np.all(model.scale > 0):
            raise ModelPackageError("linear model file: bad intercept or scale")
        return model

    def standardise(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.scale

    def margin(self, x: np.ndarray) -> np.ndarray:
        """Raw output `[n, k]` (the positive class's log-odds for binary).

        Summed row by row, not by a matrix product, so a case's margin does not depend on the batch it
        came in (BLAS kernels change rounding with the batch size)."""
        z = self.standardise(x)
        return np.stack([(z * w).sum(axis=1) for w in self.coef], axis=1) + self.intercept

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Uncalibrated probabilities `[n, k']` in class order (k' = 2 for binary), in float64."""
        margin = self.margin(x)
        if margin.shape[1] == 1:
            positive = 1.0 / (1.0 + np.exp(-margin[:, 0]))
            return np.column_stack([1.0 - positive, positive])
        shifted = np.exp(margin - margin.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


class LinearShapExplainer:
    """Exact SHAP of a `LinearTumorModel`, with the interface the classifier uses for boosters."""

    fast = None
    fast_path_max_abs_diff: float | None = None

    def __init__(self, model: LinearTumorModel) -> None:
        self.model = model
        self.base = model.intercept + model.coef @ model.z_mean  # [k]

    @property
    def method(self) -> str:
        return LINEAR_SHAP_METHOD

    def __call__(self, x: np.ndarray) -> TreeShap:
        centred = self.model.standardise(x) - self.model.z_mean  # [n, d]
        values = centred[:, None, :] * self.model.coef[None, :, :]
        k = self.base.size
        base = np.broadcast_to(self.base, (centred.shape[0], k))
        return TreeShap(values=values, base_values=base, output_space=LOG_ODDS if k == 1 else SOFTMAX_LOGIT)
