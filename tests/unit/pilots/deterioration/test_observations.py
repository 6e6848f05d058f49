"""Observations rebuilt from stored rows are the observations that were stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clinpred.pilots.deterioration.observations import Observation

AT = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)


def test_a_stored_observation_equals_the_one_built_from_its_values() -> None:
    values = {"heart_rate": 131.0, "avpu": "V", "crp_mg_l": 12.5}
    rebuilt = Observation.stored("o-1", AT, values)
    assert rebuilt == Observation("o-1", AT, heart_rate=131.0, avpu="V", crp_mg_l=12.5)
    assert hash(rebuilt) == hash(Observation("o-1", AT, heart_rate=131.0, avpu="V", crp_mg_l=12.5))
    assert rebuilt.spo2 is None and rebuilt.observed_at == AT


def test_a_stored_observation_stays_frozen() -> None:
    rebuilt = Observation.stored("o-1", AT, {"spo2": 97.0})
    with pytest.raises(AttributeError):
        rebuilt.spo2 = 80.0  # type: ignore[misc]


def test_a_stored_row_naming_an_unknown_signal_is_refused() -> None:
    with pytest.raises(TypeError, match="does not know"):
        Observation.stored("o-1", AT, {"heart_rate": 120.0, "blood_glucose": 5.5})
