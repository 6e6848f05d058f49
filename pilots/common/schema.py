"""Feature schemas: names, units and ranges that model packages carry in `schema.json`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from clinpred.pilots.common.errors import (
    FieldViolation,
    InvalidInput,
    ViolationCollector,
)


@dataclass(frozen=True)
class FeatureSpec:
    """One model input.

    `valid_min`/`valid_max` bound what is physically possible (a value outside
    is rejected as invalid input); `training_min`/`training_max` bound what the
    model saw (a value outside is answered, but flagged).
    """

    name: str
    unit: str
    description: str
    valid_min: float | None
    valid_max: float | None
    training_min: float
    training_max: float
    # Optional so that schemas written before it existed still load; explanations
    # use it to say whether a value is high or low for the training population.
    training_median: float | None = None


@dataclass(frozen=True)
class RangeFlag:
    """A value the model never saw in training (answered, but the caller is told)."""

    feature: str
    value: float
    training_min: float
    training_max: float


@dataclass(frozen=True)
class ModelSchema:
    features: tuple[FeatureSpec, ...]
    classes: tuple[str, ...]
    positive_class: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def to_json(self) -> dict[str, Any]:
        return {
            "features": [asdict(f) for f in self.features],
            "classes": list(self.classes),
            "positive_class": self.positive_class,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ModelSchema:
        return cls(
            features=tuple(FeatureSpec(**f) for f in obj["features"]),
            classes=tuple(obj["classes"]),
            positive_class=obj["positive_class"],
            extra=dict(obj.get("extra", {})),
        )


class FeatureBounds:
    """A schema's ranges as arrays, built once per model so per-request checks stay vectorised.

    Valid ranges are closed intervals: a value equal to `valid_min` is accepted.
    Messages name fields and ranges only, never the offending value, because
    the value is patient data.
    """

    def __init__(self, schema: ModelSchema) -> None:
        self.names = schema.feature_names
        specs = schema.features
        self.valid_min = np.array([-np.inf if f.valid_min is None else f.valid_min for f in specs])
        self.valid_max = np.array([np.inf if f.valid_max is None else f.valid_max for f in specs])
        self.training_min = np.array([f.training_min for f in specs])
        self.training_max = np.array([f.training_max for f in specs])

    def validate(self, x: np.ndarray, field_prefix: str = "cases") -> None:
        """Raise InvalidInput listing every non-finite or physically impossible value in `x[n, d]`."""
        if x.ndim != 2 or x.shape[1] != len(self.names):
            detail = f"expected a 2-d array with {len(self.names)} features per case in schema order"
            raise InvalidInput.of([FieldViolation(field_prefix, detail)])
        finite = np.isfinite(x)
        bad = ~finite | (x < self.valid_min) | (x > self.valid_max)
        if not bad.any():
            return
        violations = ViolationCollector()
        for row, col in zip(*np.nonzero(bad), strict=True):
            name = self.names[col]
            where = f"{field_prefix}[{row}].features.{name}"
            if not finite[row, col]:
                violations.add(where, "must be a finite number")
            else:
                violations.add(where, f"must be within {interval_text(self.valid_min[col], self.valid_max[col])}")
        violations.raise_if_any()

    def flags(self, x: np.ndarray) -> list[tuple[RangeFlag, ...]]:
        """Per row, the features outside the training range (empty tuple for most rows)."""
        outside = (x < self.training_min) | (x > self.training_max)
        if not outside.any():
            return [()] * x.shape[0]
        result: list[tuple[RangeFlag, ...]] = []
        for row in range(x.shape[0]):
            cols = np.flatnonzero(outside[row])
            result.append(
                tuple(
                    RangeFlag(
                        self.names[c],
                        float(x[row, c]),
                        float(self.training_min[c]),
                        float(self.training_max[c]),
                    )
                    for c in cols
                )
            )
        return result


def interval_text(low: float, high: float) -> str:
    """A closed range in words, infinite ends open: "[0, 1]", "[0, +inf)"."""
    lo = "(-inf" if np.isneginf(low) else f"[{low:g}"
    hi = "+inf)" if np.isposinf(high) else f"{high:g}]"
    return f"{lo}, {hi}"
