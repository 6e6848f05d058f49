"""Input checks of the deterioration pilot, called by the transport's codec before anything is scored.

Limits come from one table, `observations.SIGNALS`. Every problem of a request is collected and raised at
once as `InvalidInput` with one `FieldViolation(field, reason)` each. Reasons
name the field, the allowed range and the unit, never the submitted value:
messages travel through logs and error trackers.

Likely unit mistakes are recognised so the caller is told what to fix:
temperature in Fahrenheit (86-113), weight in pounds (above 1.5x the 99th
centile of weight for age while plausible once divided by 2.2046),
neutrophils or platelets per microlitre instead of 10^9/L, haemoglobin in
g/dL instead of g/L.

Two checks need the patient's birth date: nothing is observed before it, and
a weight is read against the child's age. When the patient comes with the
request, `collect_observation_problems` runs them with the rest; when the
patient is stored, the caller checks the batch without the birth date first
and then, on the locked patient, `collect_problems_for_patient`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

import numpy as np

from clinpred.pilots.common.errors import ViolationCollector
from clinpred.pilots.deterioration.observations import (
    AVPU_LEVELS,
    DIAGNOSIS_GROUPS,
    NUMERIC_SIGNALS,
    SIGNALS,
    TREATMENT_INTENSITIES,
    Observation,
    PatientHistory,
    PatientInfo,
)

CLOCK_SKEW: Final = timedelta(minutes=5)
BEFORE_BIRTH: Final = "is before the patient's birth date"
POUNDS_PER_KG: Final = 2.20462
# Approximate 99th centile of weight (kg) by age (years), WHO 0-5 y and CDC 2-18 y charts
# (ASSUMPTION: coarse, only used to recognise weights entered in pounds).
_WEIGHT_P99: Final = (
    (0.0, 4.6),
    (0.25, 8.0),
    (0.5, 10.0),
    (1.0, 12.8),
    (2.0, 16.0),
    (4.0, 21.5),
    (6.0, 28.0),
    (8.0, 38.0),
    (10.0, 50.0),
    (12.0, 65.0),
    (14.0, 82.0),
    (16.0, 95.0),
    (18.0, 105.0),
)


@dataclass(frozen=True)
class UnitMistake:
    """A value range that is impossible in the expected unit but typical of another one."""

    field: str
    hint: str
    applies: Callable[[float, float | None], bool]  # (value, age in years or None)


def _weight_p99(age_years: float) -> float:
    ages, weights = zip(*_WEIGHT_P99, strict=True)
    return float(np.interp(age_years, ages, weights))


def _pounds(value: float, age: float | None) -> bool:
    if age is None:
        return value > 250 and value / POUNDS_PER_KG <= 250
    # Above the age's 99th centile in kg, yet an ordinary weight once read as pounds.
    limit = _weight_p99(age)
    return value > limit and value / POUNDS_PER_KG <= limit


UNIT_MISTAKES: Final = (
    UnitMistake("temperature_c", "looks like degrees Fahrenheit; send degrees Celsius", lambda v, _: 86 <= v <= 113),
    UnitMistake("weight_kg", "looks like pounds; send kilograms", _pounds),
    UnitMistake("neutrophils_g_l", "looks like cells per microlitre; send 10^9/L", lambda v, _: 100 < v <= 100_000),
    UnitMistake("platelets_g_l", "looks like cells per microlitre; send 10^9/L", lambda v, _: 2_000 < v <= 2_000_000),
    UnitMistake("haemoglobin_g_l", "looks like g/dL; send g/L", lambda v, _: 2 <= v < 25),
)
_MISTAKES_BY_FIELD: Final = {m.field: m for m in UNIT_MISTAKES}


def _birth(birth_date: date) -> datetime:
    return datetime(birth_date.year, birth_date.month, birth_date.day, tzinfo=UTC)


def _age_years(birth_date: date | None, at: datetime) -> float | None:
    if birth_date is None:
        return None
    return (at - _birth(birth_date)).total_seconds() / (365.25 * 86400)


def check_value(name: str, value: float, age_years: float | None = None) -> str | None:
    """The reason a value of signal `name` is rejected, or None when it is acceptable."""
    spec = SIGNALS[name]
    if not math.isfinite(value):
        return "must be a finite number"
    mistake = _MISTAKES_BY_FIELD.get(name)
    if mistake is not None and mistake.applies(value, age_years):
        return f"{mistake.hint} (valid range {spec.valid_min:g}-{spec.valid_max:g} {spec.unit})"
    if value < spec.valid_min or value > spec.valid_max:
        return f"outside the valid range {spec.valid_min:g}-{spec.valid_max:g} {spec.unit}"
    if name == "respiratory_effort" and value != int(value):
        return "must be 0, 1, 2 or 3"
    return None


def _collect_value_problems(observation: Observation, base: str, age: float | None, problems: ViolationCollector) -> bool:
    """Checks every numeric value of one observation; True when it has any measured value."""
    measured = False
    for name in NUMERIC_SIGNALS:
        value = getattr(observation, name)
        if value is None:
            continue
        measured = True
        reason = check_value(name, float(value), age)
        if reason is not None:
            problems.add(f"{base}.{name}", reason)
    return measured


def _check_time(problems: ViolationCollector, field: str, when: datetime, birth_date: date | None, now: datetime) -> bool:
    if when.tzinfo is None or when.utcoffset() is None:
        problems.add(field, "must carry a time zone (UTC)")
        return False
    if when > now + CLOCK_SKEW:
        problems.add(field, "is in the future")
    if birth_date is not None and when < _birth(birth_date):
        problems.add(field, BEFORE_BIRTH)
    return True


def collect_observation_problems(
    observations: Iterable[Observation],
    problems: ViolationCollector,
    *,
    birth_date: date | None,
    now: datetime,
    field_prefix: str = "observations",
    positions: Sequence[int] | None = None,
) -> None:
    """Every problem of a batch; `positions` gives each observation's index in the request when some
    items were left out (e.g. without a usable time), so that field paths name the item sent."""
    seen: set[str] = set()
    for i, obs in enumerate(observations):
        base = f"{field_prefix}[{positions[i] if positions is not None else i}]"
        if not obs.observation_id or not obs.observation_id.strip():
            problems.add(f"{base}.observation_id", "is required")
        elif obs.observation_id in seen:
            problems.add(f"{base}.observation_id", "duplicate observation id")
        seen.add(obs.observation_id)
        timed = _check_time(problems, f"{base}.observed_at", obs.observed_at, birth_date, now)
        age = _age_years(birth_date, obs.observed_at) if timed else None
        measured = _collect_value_problems(obs, base, age, problems)
        if obs.avpu is not None:
            measured = True
            if obs.avpu.strip().upper() not in AVPU_LEVELS:
                problems.add(f"{base}.avpu", "must be one of A, V, P, U")
        if not measured:
            problems.add(base, "has no measured value")


def collect_problems_for_patient(
    observations: Iterable[Observation], problems: ViolationCollector, *, birth_date: date, field_prefix: str
) -> None:
    """The checks of a batch that need the patient's birth date, for a batch that passed the others
    (`collect_observation_problems` with no birth date): nothing observed before the birth date, and
    no value implausible at the child's age then (a weight in pounds). Field paths start with `field_prefix`."""
    for i, obs in enumerate(observations):
        base = f"{field_prefix}[{i}]"
        if obs.observed_at < _birth(birth_date):
            problems.add(f"{base}.observed_at", BEFORE_BIRTH)
        # The values passed without the age, so only rules that read the age can fail here.
        _collect_value_problems(obs, base, _age_years(birth_date, obs.observed_at), problems)


def collect_patient_problems(
    patient: PatientInfo, problems: ViolationCollector, *, now: datetime, field_prefix: str = "patient"
) -> None:
    if not patient.patient_id or not patient.patient_id.strip():
        problems.add(f"{field_prefix}.patient_id", "is required")
    birth = _birth(patient.birth_date)
    if birth > now + CLOCK_SKEW:
        problems.add(f"{field_prefix}.birth_date", "is in the future")
    elif (now - birth).days > 25 * 365.25:
        problems.add(f"{field_prefix}.birth_date", "gives an age above 25 years; the model is paediatric (0-18 years)")
    if patient.diagnosis_group not in DIAGNOSIS_GROUPS:
        problems.add(f"{field_prefix}.diagnosis_group", f"must be one of {', '.join(DIAGNOSIS_GROUPS)}")
    if patient.treatment_intensity not in TREATMENT_INTENSITIES:
        problems.add(f"{field_prefix}.treatment_intensity", f"must be one of {', '.join(TREATMENT_INTENSITIES)}")


def validate_observations(
    observations: Iterable[Observation],
    *,
    birth_date: date | None = None,
    now: datetime | None = None,
    field_prefix: str = "observations",
) -> None:
    """Raises InvalidInput listing every problem of a batch of observations (e.g. one push from the app)."""
    problems = ViolationCollector()
    collect_observation_problems(
        observations, problems, birth_date=birth_date, now=now or datetime.now(UTC), field_prefix=field_prefix
    )
    problems.raise_if_any()


def validate_history(history: PatientHistory, *, at: datetime | None = None, now: datetime | None = None) -> None:
    """Raises InvalidInput listing every problem of a patient's history and, if given, of the scoring time."""
    now = now or datetime.now(UTC)
    problems = ViolationCollector()
    collect_patient_problems(history.patient, problems, now=now)
    collect_observation_problems(history.observations, problems, birth_date=history.patient.birth_date, now=now)
    for i, when in enumerate(history.chemotherapy_at):
        _check_time(problems, f"chemotherapy_at[{i}]", when, history.patient.birth_date, now)
    if at is not None:
        _check_time(problems, "at", at, history.patient.birth_date, now)
    problems.raise_if_any()
