"""Schemas: JSON round trip, valid-range checks that never echo values, and training-range flags."""

from __future__ import annotations

import numpy as np
import pytest

from clinpred.pilots.common.errors import InvalidInput
from clinpred.pilots.common.schema import FeatureBounds, FeatureSpec, ModelSchema, RangeFlag

SCHEMA = ModelSchema(
    features=(
        FeatureSpec("mean_radius", "pixels", "radius", 0.0, None, 6.98, 28.11, training_median=13.37),
        FeatureSpec("mean_smoothness", "dimensionless", "smoothness", 0.0, 1.0, 0.05, 0.16),
    ),
    classes=("benign", "malignant"),
    positive_class="malignant",
)


def test_schema_json_round_trip_and_older_schemas_without_a_median() -> None:
    assert ModelSchema.from_json(SCHEMA.to_json()) == SCHEMA
    old = SCHEMA.to_json()
    for feature in old["features"]:
        del feature["training_median"]
    assert ModelSchema.from_json(old).features[0].training_median is None


def test_impossible_values_are_named_by_field_without_the_value() -> None:
    bounds = FeatureBounds(SCHEMA)
    x = np.array([[12.0, 0.1], [-4.321, 1.5], [np.nan, 0.1]])
    with pytest.raises(InvalidInput) as caught:
        bounds.validate(x)
    fields = {v.field: v.description for v in caught.value.violations}
    assert fields == {
        "cases[1].features.mean_radius": "must be within [0, +inf)",
        "cases[1].features.mean_smoothness": "must be within [0, 1]",
        "cases[2].features.mean_radius": "must be a finite number",
    }
    assert caught.value.status == "INVALID_ARGUMENT"
    assert "4.321" not in str(caught.value) and all("1.5" not in d for d in fields.values())


def test_the_valid_range_is_closed() -> None:
    FeatureBounds(SCHEMA).validate(np.array([[0.0, 1.0]]))


def test_wrong_shape_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="2 features"):
        FeatureBounds(SCHEMA).validate(np.array([[1.0, 0.1, 3.0]]))


def test_values_outside_the_training_range_are_flagged() -> None:
    flags = FeatureBounds(SCHEMA).flags(np.array([[12.0, 0.1], [30.0, 0.01]]))
    assert flags[0] == ()
    assert flags[1] == (
        RangeFlag("mean_radius", 30.0, 6.98, 28.11),
        RangeFlag("mean_smoothness", 0.01, 0.05, 0.16),
    )
