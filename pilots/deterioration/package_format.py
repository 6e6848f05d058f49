"""What a deterioration model package holds, as training writes it and serving reads it.

Serving-side on purpose: `training` imports these names, never the other way
round, so a served process loads no training code (scikit-learn, tqdm, the
ONNX converters).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

PILOT: Final = "deterioration"
# model.onnx reads float32 rows `[n, d]` in FEATURE_NAMES order and answers `[n, 2]` class probabilities.
ONNX_INPUT: Final = "features"
ONNX_PROBABILITIES: Final = "probabilities"


def onnx_positive_probability(session: Any, x32: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """P(deterioration) of model.onnx, uncalibrated, for feature rows."""
    output = session.run([ONNX_PROBABILITIES], {ONNX_INPUT: x32})[0]
    return np.asarray(output, dtype=np.float64)[:, 1]
