"""Feature schemas: names, units and ranges that model packages carry in `schema.json`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
