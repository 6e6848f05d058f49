"""What a genomics model package holds, as training writes it and serving reads it.

Serving-side on purpose: `training` imports these names, never the other way
round, so a served process loads no training code (scikit-learn, tqdm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# The inputs of the XGBoost packages (1.1.0 and earlier), in the column order of model.onnx and booster.json.
FEATURES = ("polygenic_score_z", "age", "male", "family_history")
ONNX_INPUT = "features"
# The multiplicative hazard model's inputs (packages with risk_parameters.json, 1.2.0 on).
MULTIPLICATIVE_FEATURES = ("polygenic_score_z", "age", "affected_first_degree_relatives")
MULTIPLICATIVE_MODEL = "multiplicative-hazard"
RISK_PARAMETERS_FILE = "risk_parameters.json"
TRANSPARENCY_FILE = "transparency.json"


def onnx_probabilities(session: Any, x32: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Class probabilities [n, 2] of model.onnx (its second output; the first is the label)."""
    outputs = session.run(None, {ONNX_INPUT: x32})
    return np.asarray(outputs[1], dtype=np.float64)


@dataclass(frozen=True)
class ScoreDistribution:
    """A score's distribution in a reference population (reference_distribution.json): standardisation and percentiles."""

    pgs_id: str
    mean: float
    sd: float
    quantiles: tuple[float, ...]  # at probabilities 0, 0.001, ..., 1
    sample_size: int
    variants_matched: int

    def standardise(self, score_sum: float | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray((np.asarray(score_sum) - self.mean) / self.sd, dtype=np.float64)

    def percentile(self, score_sum: float) -> float:
        """0-100: the share of the reference population scoring at or below `score_sum`."""
        probabilities = np.linspace(0.0, 100.0, len(self.quantiles))
        return float(np.interp(score_sum, np.asarray(self.quantiles), probabilities))

    def to_json(self) -> dict[str, Any]:
        return {"pgs_id": self.pgs_id, "mean": self.mean, "sd": self.sd, "quantiles": list(self.quantiles),
                "sample_size": self.sample_size, "variants_matched": self.variants_matched}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ScoreDistribution:
        return cls(str(obj["pgs_id"]), float(obj["mean"]), float(obj["sd"]), tuple(float(q) for q in obj["quantiles"]),
                   int(obj["sample_size"]), int(obj["variants_matched"]))
