"""What a tumour model package holds, by name: training writes these, serving reads them.

Serving-side on purpose: the classifier needs these names without importing
training (and with it scikit-learn and the ONNX converters).
"""

from __future__ import annotations

PILOT = "tumor"
# The ONNX graph's input (float32 `[n, d]`, schema feature order) and its probability output.
ONNX_INPUT = "features"
ONNX_PROBABILITIES = "probabilities"
BOOSTER_FILES = {"xgboost": "booster.json", "lightgbm": "booster.txt", "logistic": "linear.json"}
# The metric in metrics.json that states the conformal sets' coverage measured on held-out folds.
VERIFIED_COVERAGE_METRIC = "conformal_coverage_heldout"
# The entry of metrics.json mapping each class to the coverage measured on its held-out cases.
CLASS_COVERAGE_METRIC = "conformal_class_coverage_heldout"
# Tumour package format, in the manifest's metadata: 2 adds per-class conformal thresholds
# (conformal.json `class_q_hat`, Mondrian sets). Packages without the key are format 1 and keep marginal sets.
PACKAGE_FORMAT_KEY = "tumor_package_format"
PACKAGE_FORMAT = 2
# ONC HTI-1 source attributes (pilots/tumor/transparency.py), in packages from 1.2.0.
TRANSPARENCY = "transparency.json"
