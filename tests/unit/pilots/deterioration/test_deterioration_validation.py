"""Input validation: impossible values, unit mistakes, bad timestamps, duplicate ids, all reported at once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from clinpred.pilots.common.errors import InvalidInput, ViolationCollector
from clinpred.pilots.deterioration.observations import SIGNALS, Observation, PatientHistory, PatientInfo
from clinpred.pilots.deterioration.validation import (
    check_value,
    collect_observation_problems,
    collect_problems_for_patient,
    validate_history,
    validate_observations,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
BIRTH = date(2019, 3, 1)


def _obs(observation_id: str = "o1", when: datetime | None = None, **values: float | str) -> Observation:
    return Observation(observation_id, when or NOW - timedelta(hours=1), **values)  # type: ignore[arg-type]


def _obs_with(field: str, value: float) -> Observation:
    values: dict[str, Any] = {field: value}
    return Observation("o1", NOW - timedelta(hours=1), **values)


def _violations(observations: list[Observation], birth: date | None = BIRTH) -> dict[str, str]:
    with pytest.raises(InvalidInput) as raised:
        validate_observations(observations, birth_date=birth, now=NOW)
    assert raised.value.status == "INVALID_ARGUMENT"
    return {v.field: v.description for v in raised.value.violations}


def test_limits_come_from_the_observation_schema() -> None:
    assert SIGNALS["spo2"].valid_max == 100
    assert SIGNALS["heart_rate"].valid_min == 20
    assert check_value("spo2", 101.0) == "outside the valid range 30-100 %"


def test_checks_split_into_stateless_and_the_patients_find_every_problem_once() -> None:
    """Without the birth date the batch passes; on the patient, before-birth and weight-for-age fail, with the path given."""
    batch = [_obs("o1", datetime(2018, 1, 1, tzinfo=UTC), heart_rate=120.0), _obs("o2", weight_kg=60.0)]
    stateless = ViolationCollector()
    collect_observation_problems(batch, stateless, birth_date=None, now=NOW, field_prefix="observations")
    assert stateless.violations == []
    on_patient = ViolationCollector()
    collect_problems_for_patient(batch, on_patient, birth_date=BIRTH, field_prefix="batch.observations")
    found = {v.field: v.description for v in on_patient.violations}
    assert found == {
        "batch.observations[0].observed_at": "is before the patient's birth date",
        "batch.observations[1].weight_kg": "looks like pounds; send kilograms (valid range 0.3-250 kg)",
    }
    together = ViolationCollector()
    collect_observation_problems(batch, together, birth_date=BIRTH, now=NOW, field_prefix="batch.observations")
    assert together.violations == on_patient.violations


@pytest.mark.parametrize(
    ("field", "value", "expected_range"),
    [
        ("heart_rate", 0.0, "20-300"),
        ("heart_rate", 500.0, "20-300"),
        ("spo2", 101.0, "30-100"),
        ("temperature_c", 50.0, "30-44"),
        ("respiratory_rate", 0.0, "4-120"),
        ("systolic_bp", 400.0, "30-250"),
    ],
)
def test_physiologically_impossible_values(field: str, value: float, expected_range: str) -> None:
    found = _violations([_obs_with(field, value)])
    description = found[f"observations[0].{field}"]
    assert expected_range in description
    assert f"{value:g}" not in description.replace(expected_range, "")


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("temperature_c", 98.6, "Fahrenheit"),
        ("temperature_c", 102.2, "Fahrenheit"),
        ("weight_kg", 44.0, "pounds"),  # a 6-year-old of 20 kg entered in pounds
        ("neutrophils_g_l", 450.0, "microlitre"),
        ("haemoglobin_g_l", 9.5, "g/dL"),
    ],
)
def test_likely_unit_mistakes_are_named(field: str, value: float, hint: str) -> None:
    found = _violations([_obs_with(field, value)])
    description = found[f"observations[0].{field}"]
    assert hint in description
    assert f"{value:g}" not in description


def test_plausible_values_pass() -> None:
    validate_observations(
        [
            _obs(
                heart_rate=110,
                temperature_c=38.5,
                spo2=100,
                weight_kg=21.0,
                neutrophils_g_l=0.2,
                haemoglobin_g_l=95,
                avpu="a",
                respiratory_effort=1,
            )
        ],
        birth_date=BIRTH,
        now=NOW,
    )
    assert check_value("weight_kg", 44.0, age_years=15.0) is None  # 44 kg is normal at 15


def test_every_problem_is_listed_at_once() -> None:
    observations = [
        _obs("a", heart_rate=500),
        _obs("a", spo2=101),
        _obs("b", when=NOW + timedelta(days=1), temperature_c=37.0),
        _obs("c", when=datetime(2018, 1, 1, tzinfo=UTC), heart_rate=100),
        _obs("d", when=datetime(2025, 1, 1), heart_rate=100),
        _obs("e", avpu="X"),
        _obs("f", respiratory_effort=1.5),
        _obs("g"),
    ]
    found = _violations(observations)
    assert found == {
        "observations[0].heart_rate": found["observations[0].heart_rate"],
        "observations[1].observation_id": "duplicate observation id",
        "observations[1].spo2": found["observations[1].spo2"],
        "observations[2].observed_at": "is in the future",
        "observations[3].observed_at": "is before the patient's birth date",
        "observations[4].observed_at": "must carry a time zone (UTC)",
        "observations[5].avpu": "must be one of A, V, P, U",
        "observations[6].respiratory_effort": "must be 0, 1, 2 or 3",
        "observations[7]": "has no measured value",
    }


def test_history_checks_patient_and_scoring_time() -> None:
    history = PatientHistory(PatientInfo("p", date(2030, 1, 1), "leukaemia", "extreme", True), (_obs(heart_rate=100),))
    with pytest.raises(InvalidInput) as raised:
        validate_history(history, at=NOW + timedelta(days=2), now=NOW)
    found = [(v.field, v.description) for v in raised.value.violations]
    assert found == [
        ("patient.birth_date", "is in the future"),
        ("patient.diagnosis_group", "must be one of all, aml, lymphoma, cns_tumour, solid_tumour"),
        ("patient.treatment_intensity", "must be one of low, medium, high"),
        ("observations[0].observed_at", "is before the patient's birth date"),
        ("at", "is in the future"),
        ("at", "is before the patient's birth date"),
    ]
