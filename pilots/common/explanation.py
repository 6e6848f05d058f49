"""Per-prediction explanations: exact TreeSHAP contributions and plain-word reasons.

Contributions are in the booster's raw output space (log-odds for binary
models, the per-class softmax logit for multi-class models), because only
there are tree explanations exactly additive: `base_value + sum(shap)` equals
the model's raw margin. Probabilities are not additive in the features.

Pilot-agnostic: any pilot with an XGBoost or LightGBM booster and a
`ModelSchema` can use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import numpy as np

from clinpred.pilots.common.schema import FeatureSpec

LOG_ODDS = "log-odds"
SOFTMAX_LOGIT = "softmax-logit"
TREESHAP_METHOD = "TreeSHAP (exact, path-dependent; native booster)"

# Units that read badly after a number ("0.147 dimensionless").
_SILENT_UNITS = frozenset({"", "1", "dimensionless", "ratio", "unitless", "unspecified"})


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: float
    shap_value: float


@dataclass(frozen=True)
class Reason:
    feature: str
    value: float
    unit: str
    direction: Literal["raises", "lowers"]
    shap_value: float
    text: str


class ExplanationDetail(StrEnum):
    """How much of an explanation a caller asked for: the less, the less is computed and sent."""

    FULL = "full"  # every feature's SHAP value, and the top reasons
    TOP_REASONS = "top_reasons"  # base value, margin and top reasons; no per-feature values
    NONE = "none"  # no explanation, no SHAP values computed


@dataclass(frozen=True)
class Explanation:
    """Why one case got its answer.

    `margin` = `base_value` + sum of `contributions[*].shap_value`, in `output_space`.
    `contributions` are in feature order; `shap_values` and `feature_values` are their SHAP and input
    values again, packed (all three are empty at detail TOP_REASONS).
    """

    explained_class: str
    output_space: str
    base_value: float
    margin: float
    contributions: tuple[Contribution, ...]
    top_reasons: tuple[Reason, ...]
    method: str
    shap_values: tuple[float, ...] = ()
    feature_values: tuple[float, ...] = ()


@dataclass(frozen=True)
class TreeShap:
    """TreeSHAP output of a batch.

    `values[n, k, d]`: contribution of feature d to output k of row n;
    `base_values[n, k]`: the expected raw output. k = 1 for binary models
    (the positive class's log-odds) and the number of classes otherwise.
    """

    values: np.ndarray
    base_values: np.ndarray
    output_space: str

    @property
    def margins(self) -> np.ndarray:
        """`base_values + values.sum(-1)`: equals the booster's raw margin."""
        return np.asarray(self.base_values + self.values.sum(axis=-1))


def _format_value(value: float) -> str:
    # Three significant digits reads naturally for small ratios (0.147) but
    # would print 1001 as "1e+03"; large values keep one decimal instead.
    if value == 0 or not np.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return np.format_float_positional(value, precision=3, unique=False, fractional=False, trim="-")


def _display_name(feature: str) -> str:
    return feature.replace("_", " ")


def reason_text(feature: str, value: float, spec: FeatureSpec | None, direction: str, explained_class: str) -> str:
    """E.g. "mean concave points 0.147 (above the training median) raises the likelihood of malignant"."""
    parts = [_display_name(feature), _format_value(value)]
    unit = spec.unit if spec is not None else ""
    if unit.strip().lower() not in _SILENT_UNITS:
        parts.append(unit)
    if spec is not None and spec.training_median is not None:
        if value > spec.training_median:
            parts.append("(above the training median)")
        elif value < spec.training_median:
            parts.append("(below the training median)")
        else:
            parts.append("(at the training median)")
    if spec is not None and (value < spec.training_min or value > spec.training_max):
        parts.append("[outside the training range]")
    parts.append(f"{direction} the likelihood of {explained_class}")
    return " ".join(parts)


def top_reasons(
    contributions: Iterable[Contribution],
    specs_by_name: Mapping[str, FeatureSpec],
    explained_class: str,
    k: int = 3,
) -> tuple[Reason, ...]:
    """The `k` largest contributions by magnitude, in words; zero contributions are never reasons."""
    ranked = sorted(
        (c for c in contributions if c.shap_value != 0.0),
        key=lambda c: (-abs(c.shap_value), c.feature),
    )
    reasons = []
    for c in ranked[:k]:
        direction: Literal["raises", "lowers"] = "raises" if c.shap_value > 0 else "lowers"
        spec = specs_by_name.get(c.feature)
        reasons.append(
            Reason(
                feature=c.feature,
                value=c.value,
                unit=spec.unit if spec is not None else "",
                direction=direction,
                shap_value=c.shap_value,
                text=reason_text(c.feature, c.value, spec, direction, explained_class),
            )
        )
    return tuple(reasons)


def _booster_kind(booster: Any) -> str:
    module = type(booster).__module__
    if module.startswith("xgboost"):
        return "xgboost"
    if module.startswith("lightgbm"):
        return "lightgbm"
    raise TypeError(f"TreeSHAP needs an xgboost or lightgbm booster, not {type(booster).__name__}")


def _native(booster: Any) -> Any:
    """Accept the scikit-learn wrappers as well as bare boosters."""
    if hasattr(booster, "get_booster"):
        return booster.get_booster()
    if hasattr(booster, "booster_"):
        return booster.booster_
    return booster


def treeshap_contributions(booster: Any, x: np.ndarray) -> TreeShap:
    """Exact TreeSHAP of `x[n, d]` from an XGBoost or LightGBM booster (or their sklearn wrappers).

    XGBoost reads `float32`; values are passed as `float32` for both libraries
    so that explanations see exactly the numbers the ONNX model saw.
    """
    native = _native(booster)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    if x32.ndim != 2:
        raise ValueError("x must be a 2-d array [n, d]")
    n, d = x32.shape
    if _booster_kind(native) == "xgboost":
        import xgboost as xgb

        raw = np.asarray(native.predict(xgb.DMatrix(x32, nthread=1), pred_contribs=True), dtype=np.float64)
        # Binary models answer [n, d+1]; multi-class ones [n, k, d+1].
        if raw.ndim == 2:
            raw = raw[:, None, :]
    else:
        raw = np.asarray(native.predict(x32, pred_contrib=True, num_threads=1), dtype=np.float64)
        # LightGBM lays multi-class output side by side: [n, k * (d+1)].
        raw = raw.reshape(n, -1, d + 1)
    k = raw.shape[1]
    return TreeShap(
        values=raw[:, :, :d],
        base_values=raw[:, :, d],
        output_space=LOG_ODDS if k == 1 else SOFTMAX_LOGIT,
    )


def raw_margin(booster: Any, x: np.ndarray) -> np.ndarray:
    """The booster's raw output `[n, k]` (k = 1 for binary), to check additivity against."""
    native = _native(booster)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    if _booster_kind(native) == "xgboost":
        import xgboost as xgb

        out = np.asarray(native.predict(xgb.DMatrix(x32, nthread=1), output_margin=True), dtype=np.float64)
    else:
        out = np.asarray(native.predict(x32, raw_score=True, num_threads=1), dtype=np.float64)
    return out.reshape(x32.shape[0], -1)


def build_explanation(
    shap: TreeShap,
    row: int,
    output: int,
    x_row: np.ndarray,
    feature_names: tuple[str, ...],
    specs_by_name: Mapping[str, FeatureSpec],
    explained_class: str,
    k: int = 3,
    method: str = TREESHAP_METHOD,
) -> Explanation:
    """One row's `Explanation` of output `output` (0 for binary models)."""
    values = shap.values[row, output]
    if len(feature_names) != values.size or x_row.size != values.size:
        raise ValueError("feature names, values and contributions must line up")
    # tolist() converts in C; per-element float() on numpy scalars dominated batch latency.
    contributions = tuple(map(Contribution, feature_names, x_row.tolist(), values.tolist()))
    # Only contributions at least as large as the k-th largest can be reasons; ranking
    # those few (ties included) gives exactly what ranking all of them would.
    magnitude = np.abs(values)
    if k > 0 and magnitude.size > k:
        kth = np.partition(magnitude, magnitude.size - k)[magnitude.size - k]
        candidates = [contributions[i] for i in np.flatnonzero(magnitude >= kth)]
    else:
        candidates = list(contributions)
    base = float(shap.base_values[row, output])
    return Explanation(
        explained_class=explained_class,
        output_space=shap.output_space,
        base_value=base,
        margin=base + float(values.sum()),
        contributions=contributions,
        top_reasons=top_reasons(candidates, specs_by_name, explained_class, k),
        method=method,
        shap_values=tuple(values.tolist()),
        feature_values=tuple(x_row.tolist()),
    )


def explanations_of_batch(
    shap: TreeShap,
    outputs: Sequence[int],
    rows: np.ndarray,
    feature_names: tuple[str, ...],
    specs_by_name: Mapping[str, FeatureSpec],
    explained_classes: Sequence[str],
    details: Sequence[ExplanationDetail],
    k: int = 3,
    method: str = TREESHAP_METHOD,
) -> list[Explanation | None]:
    """Every row's `Explanation` of its output (`outputs[i]`, 0 for binary models) at its detail, in one pass.

    The same explanations as `build_explanation` row by row: margins and the ranking of reasons
    (largest magnitude first, ties by feature name, zeros never) are computed for the whole batch at
    once; only the reasons' words are built case by case. Detail NONE gives None.
    """
    n, d = rows.shape
    if len(feature_names) != d or shap.values.shape[0] != n or shap.values.shape[-1] != d:
        raise ValueError("feature names, values and contributions must line up")
    picked = np.arange(n)
    out = np.asarray(outputs, dtype=np.intp)
    values = shap.values[picked, out]  # [n, d]
    bases = shap.base_values[picked, out]
    margins = bases + values.sum(axis=-1)
    magnitude = np.abs(values)
    # Rank by (-|shap|, feature name): lexsort's last key is the primary one.
    name_rank = np.empty(d, dtype=np.intp)
    name_rank[np.argsort(np.array(feature_names, dtype=object), kind="stable")] = np.arange(d)
    order = np.lexsort((np.broadcast_to(name_rank, (n, d)), -magnitude), axis=-1)[:, :k]
    chosen = np.take_along_axis(values, order, axis=-1)
    chosen_x = np.take_along_axis(rows, order, axis=-1)
    explanations: list[Explanation | None] = []
    value_lists, row_lists = values.tolist(), rows.tolist()
    for i, detail in enumerate(details):
        if detail is ExplanationDetail.NONE:
            explanations.append(None)
            continue
        explained = explained_classes[i]
        reasons = []
        for j, shap_value, x_value in zip(order[i].tolist(), chosen[i].tolist(), chosen_x[i].tolist(), strict=True):
            if shap_value == 0.0:
                break  # ranked by magnitude: the rest are zeros too
            feature = feature_names[j]
            spec = specs_by_name.get(feature)
            direction: Literal["raises", "lowers"] = "raises" if shap_value > 0 else "lowers"
            reasons.append(
                Reason(
                    feature=feature,
                    value=x_value,
                    unit=spec.unit if spec is not None else "",
                    direction=direction,
                    shap_value=shap_value,
                    text=reason_text(feature, x_value, spec, direction, explained),
                )
            )
        full = detail is ExplanationDetail.FULL
        explanations.append(
            Explanation(
                explained_class=explained,
                output_space=shap.output_space,
                base_value=float(bases[i]),
                margin=float(margins[i]),
                contributions=tuple(map(Contribution, feature_names, row_lists[i], value_lists[i])) if full else (),
                top_reasons=tuple(reasons),
                method=method,
                shap_values=tuple(value_lists[i]) if full else (),
                feature_values=tuple(row_lists[i]) if full else (),
            )
        )
    return explanations


class StumpShap:
    """Exact TreeSHAP of an XGBoost ensemble of depth-1 trees, evaluated with numpy.

    For a stump splitting on feature j, path-dependent TreeSHAP gives feature
    j exactly `f(x) - E[f]` (E weighted by the training cover) and every other
    feature 0. An ensemble of stumps is therefore one step function per
    feature and output, which a vectorised comparison evaluates in
    microseconds, where the booster's `pred_contribs` costs about half a
    millisecond per call. `base_values` come from the booster itself.
    """

    def __init__(self, thresholds: np.ndarray, deltas: np.ndarray, offsets: np.ndarray, base: np.ndarray) -> None:
        self.thresholds = thresholds  # [k, d, m] float32, padded with +inf
        self.deltas = deltas  # [k, d, m]: left leaf - right leaf, 0 in padding
        self.offsets = offsets  # [k, d]: sum over the feature's stumps of (right leaf - E[f])
        self.base = base  # [k]
        # One lookup table per feature and output: with its thresholds sorted, a value at or above
        # exactly c of them goes left in the stumps c.. (value < threshold), so its SHAP value is the
        # offset plus the suffix sum of those stumps' deltas: table[k, d, c].
        order = np.argsort(thresholds, axis=-1, kind="stable")  # the +inf padding stays last
        self._sorted_thresholds = np.take_along_axis(thresholds, order, axis=-1)
        suffix = np.cumsum(np.take_along_axis(deltas, order, axis=-1)[..., ::-1], axis=-1)[..., ::-1]
        tail = np.zeros((*offsets.shape, 1))
        self._tables = (offsets[..., None] + np.concatenate([suffix, tail], axis=-1)).ravel()
        k, d, m = thresholds.shape
        self._table_starts = (np.arange(k * d) * (m + 1)).reshape(k, d)

    @classmethod
    def from_booster(cls, booster: Any) -> StumpShap | None:
        """The step-function form, or None if the booster is not an XGBoost gbtree of stumps."""
        import json

        native = _native(booster)
        if _booster_kind(native) != "xgboost":
            return None
        model = json.loads(native.save_raw("json"))
        gbm = model["learner"]["gradient_booster"]
        if gbm.get("name") != "gbtree":
            return None
        trees, groups = gbm["model"]["trees"], gbm["model"]["tree_info"]
        d = int(model["learner"]["learner_model_param"]["num_feature"])
        k = max(groups) + 1 if groups else 1
        steps: list[list[list[tuple[float, float]]]] = [[[] for _ in range(d)] for _ in range(k)]
        offsets = np.zeros((k, d))
        for tree, group in zip(trees, groups, strict=True):
            left, right = tree["left_children"], tree["right_children"]
            if left[0] == -1:
                continue  # a lone leaf only moves the base value
            if len(left) != 3 or left[1] != -1 or left[2] != -1 or any(tree.get("split_type", [0])):
                return None
            j = int(tree["split_indices"][0])
            threshold = float(tree["split_conditions"][0])
            value_left = float(tree["split_conditions"][left[0]])
            value_right = float(tree["split_conditions"][right[0]])
            cover_left = float(tree["sum_hessian"][left[0]])
            cover_right = float(tree["sum_hessian"][right[0]])
            expected = (cover_left * value_left + cover_right * value_right) / (cover_left + cover_right)
            steps[group][j].append((threshold, value_left - value_right))
            offsets[group, j] += value_right - expected
        width = max((len(s) for per_class in steps for s in per_class), default=0) or 1
        thresholds = np.full((k, d, width), np.inf, dtype=np.float32)
        deltas = np.zeros((k, d, width))
        for g in range(k):
            for j in range(d):
                for m, (threshold, delta) in enumerate(steps[g][j]):
                    thresholds[g, j, m] = threshold
                    deltas[g, j, m] = delta
        probe = np.zeros((1, d), dtype=np.float32)
        base = treeshap_contributions(native, probe).base_values[0]
        return cls(thresholds, deltas, offsets, base)

    def __call__(self, x: np.ndarray) -> TreeShap:
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        values = np.empty((x32.shape[0], *self.offsets.shape))
        # Blocks bound the [rows, outputs, features, stumps] comparison tensor for large batches.
        for start in range(0, x32.shape[0], 256):
            block = x32[start : start + 256]
            # XGBoost sends `value < threshold` to the left child, comparing in float32: a finite value
            # is at or above the thresholds of the stumps that send it right.
            passed = np.count_nonzero(block[:, None, :, None] >= self._sorted_thresholds[None], axis=-1)
            values[start : start + 256] = self._tables[self._table_starts[None] + passed]
        k = self.base.size
        base = np.broadcast_to(self.base, (x32.shape[0], k))
        return TreeShap(values=values, base_values=base, output_space=LOG_ODDS if k == 1 else SOFTMAX_LOGIT)


class TreeShapExplainer:
    """TreeSHAP for one booster, using the stump fast path when it provably agrees.

    The fast path is used only if it matches `pred_contribs` to `tolerance` on
    `probe` rows (e.g. the training data, or points spread over the training
    range); inputs with missing values always go to the booster.
    """

    def __init__(self, booster: Any, probe: np.ndarray | None = None, tolerance: float = 1e-5) -> None:
        self.booster = _native(booster)
        self.fast: StumpShap | None = None
        self.fast_path_max_abs_diff: float | None = None
        stumps = StumpShap.from_booster(self.booster)
        if stumps is not None and probe is not None and probe.size:
            reference = treeshap_contributions(self.booster, probe)
            candidate = stumps(probe)
            diff = float(
                max(
                    np.max(np.abs(candidate.values - reference.values)),
                    np.max(np.abs(candidate.base_values - reference.base_values)),
                )
            )
            self.fast_path_max_abs_diff = diff
            if diff <= tolerance:
                self.fast = stumps

    @property
    def method(self) -> str:
        if self.fast is not None:
            return "TreeSHAP (exact; depth-1 trees as per-feature step functions, verified against the booster)"
        return TREESHAP_METHOD

    def __call__(self, x: np.ndarray) -> TreeShap:
        if self.fast is not None and np.isfinite(x).all():
            return self.fast(x)
        return treeshap_contributions(self.booster, x)
