"""ONNX Runtime for serving and for the parity check that gates every export.

One module for all pilots, so that serving loads models the same way training
checked them, and serving never imports a training module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clinpred.pilots.common.errors import ModelPackageError


class OnnxParityError(ModelPackageError):
    """The ONNX export does not reproduce the native model; it must never be served."""


def onnx_session(model: bytes | str | Path, threads: int = 1) -> Any:
    """An ONNX Runtime session with `threads` intra-op threads (default one: a case or a small batch must
    not fan out over cores that other calls, and on a 2-core machine the other API worker, are using)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # The converters declare a label shape that ONNX Runtime warns about on every batch.
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def max_parity_error(
    onnx_probabilities: npt.NDArray[np.float64], native_probabilities: npt.NDArray[np.float64], tolerance: float
) -> float:
    """Largest |ONNX - native| probability; raises OnnxParityError above `tolerance` (or on NaN)."""
    if onnx_probabilities.shape != native_probabilities.shape:
        raise OnnxParityError(
            f"ONNX returns probabilities {onnx_probabilities.shape}, the native model {native_probabilities.shape}"
        )
    diff = float(np.max(np.abs(onnx_probabilities - native_probabilities))) if onnx_probabilities.size else 0.0
    if not diff <= tolerance:
        raise OnnxParityError(f"ONNX and native probabilities differ by {diff:.3g} (> {tolerance:g}); export refused")
    return diff
