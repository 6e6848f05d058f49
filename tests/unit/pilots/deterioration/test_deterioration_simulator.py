"""Simulator: determinism, plausibility against Fleming centiles, documented event rates, files on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinpred.pilots.common.errors import InvalidInput
from clinpred.pilots.deterioration.cohort import (
    Cohort,
    load_events,
    load_observations,
    load_patients,
    read_cohort,
    write_cohort,
)
from clinpred.pilots.deterioration.observations import EVENT_TYPES, OBSERVATION_KEY_COLUMNS, SIGNAL_NAMES, SIGNALS
from clinpred.pilots.deterioration.reference_ranges import fleming_band_centiles
from clinpred.pilots.deterioration.simulator import SimulationConfig, simulate_cohort


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return simulate_cohort(600, seed=21, progress=False)


def test_same_seed_gives_identical_cohort() -> None:
    first = simulate_cohort(25, seed=5, progress=False)
    second = simulate_cohort(25, seed=5, progress=False)
    pd.testing.assert_frame_equal(first.observations, second.observations)
    pd.testing.assert_frame_equal(first.patients, second.patients)
    pd.testing.assert_frame_equal(first.events, second.events)
    pd.testing.assert_frame_equal(first.chemotherapy, second.chemotherapy)


def test_different_seed_gives_different_cohort() -> None:
    first = simulate_cohort(25, seed=5, progress=False)
    other = simulate_cohort(25, seed=6, progress=False)
    assert not first.observations["heart_rate"].equals(other.observations["heart_rate"])


def test_schema_and_valid_ranges(cohort: Cohort) -> None:
    obs = cohort.observations
    assert list(obs.columns) == [*OBSERVATION_KEY_COLUMNS, *SIGNAL_NAMES]
    assert str(obs["observed_at"].dtype) == "datetime64[ns, UTC]"
    assert obs["observation_id"].is_unique
    for name in SIGNAL_NAMES:
        if name == "avpu":
            assert set(obs["avpu"].dropna().unique()) <= {"A", "V", "P", "U"}
            continue
        values = obs[name].dropna()
        assert values.between(SIGNALS[name].valid_min, SIGNALS[name].valid_max).all(), name
    # Home telemonitoring is sparse: some items are missing in many sets, labs in most.
    assert 0.3 < obs["respiratory_rate"].isna().mean() < 0.6
    assert obs["neutrophils_g_l"].isna().mean() > 0.85
    assert set(cohort.events["event_type"]) <= set(EVENT_TYPES)
    # Observation times are irregular, not a fixed grid.
    gaps = obs.groupby("patient_id")["observed_at"].diff().dt.total_seconds().dropna() / 3600
    assert gaps.std() > 1.0


def test_heart_and_respiratory_rate_medians_match_fleming(cohort: Cohort) -> None:
    obs = cohort.observations.merge(cohort.patients[["patient_id", "birth_date"]], on="patient_id")
    age = (obs["observed_at"] - obs["birth_date"]).dt.total_seconds() / (365.25 * 86400)
    well = obs["temperature_c"] < 37.5
    checked = 0
    for low, high in ((0.25, 0.5), (1.0, 1.5), (2.0, 3.0), (4.0, 6.0), (8.0, 12.0), (12.0, 15.0), (15.0, 18.0)):
        band = well & (age >= low) & (age < high)
        for signal in ("heart_rate", "respiratory_rate"):
            values = obs.loc[band, signal].dropna()
            if values.size < 300:
                continue
            published = fleming_band_centiles(signal, (low + high) / 2)[2]
            assert abs(values.median() - published) <= 0.08 * published, (signal, low, high)
            checked += 1
    assert checked >= 8


def test_event_rates_within_documented_range(cohort: Cohort) -> None:
    counts = cohort.events["event_type"].value_counts()
    admissions = int(counts["unplanned_admission"])
    per_100_days = admissions / cohort.patient_days * 100
    assert 0.3 <= per_100_days <= 0.8
    assert 0.08 <= counts.get("sepsis", 0) / admissions <= 0.30
    assert 0.02 <= counts.get("picu_transfer", 0) / admissions <= 0.12


def test_physiology_drifts_before_admissions(cohort: Cohort) -> None:
    """Heart rate for age and temperature are higher in the 12 h before an admission than a week before."""
    obs = cohort.observations
    admissions = cohort.events[cohort.events["event_type"] == "unplanned_admission"]
    merged = obs.merge(admissions[["patient_id", "event_time"]], on="patient_id")
    lead = (merged["event_time"] - merged["observed_at"]).dt.total_seconds() / 3600
    close = merged[(lead > 0) & (lead <= 12)]
    far = merged[(lead > 120) & (lead <= 168)]
    assert close["temperature_c"].mean() > far["temperature_c"].mean() + 0.4
    assert close["heart_rate"].mean() > far["heart_rate"].mean() + 5


def test_write_and_read_round_trip(cohort: Cohort, tmp_path: Path) -> None:
    small = simulate_cohort(10, seed=2, progress=False)
    paths = write_cohort(small, tmp_path)
    assert {p.name for p in paths.values()} == {"observations.parquet", "patients.csv", "events.csv", "chemotherapy.csv"}
    back = read_cohort(tmp_path)
    assert len(back.observations) == len(small.observations)
    np.testing.assert_allclose(
        back.observations["heart_rate"].to_numpy(np.float64, na_value=np.nan),
        small.observations.sort_values(["patient_id", "observed_at"])["heart_rate"].to_numpy(np.float64, na_value=np.nan),
    )
    assert (back.events["event_time"].to_numpy() == small.events["event_time"].to_numpy()).all()
    assert back.patients["central_line"].dtype == bool


def test_loader_names_missing_column_and_bad_values(tmp_path: Path) -> None:
    small = simulate_cohort(3, seed=2, progress=False)
    broken = small.observations.drop(columns=["observed_at"])
    with pytest.raises(InvalidInput) as missing:
        load_observations(broken)
    assert [v.field for v in missing.value.violations] == ["observations.observed_at"]

    wrong = small.observations.copy()
    wrong.loc[0, "heart_rate"] = 500.0
    wrong.loc[1, "spo2"] = 101.0
    wrong.loc[2, "observation_id"] = wrong.loc[3, "observation_id"]
    with pytest.raises(InvalidInput) as bad:
        load_observations(wrong)
    fields = {v.field: v.description for v in bad.value.violations}
    assert set(fields) == {"observations.heart_rate", "observations.spo2", "observations.observation_id"}
    assert "20-300" in fields["observations.heart_rate"]
    assert "500" not in fields["observations.heart_rate"]

    patients = small.patients.copy()
    patients.loc[0, "diagnosis_group"] = "unknown"
    with pytest.raises(InvalidInput) as bad_patients:
        load_patients(patients)
    assert bad_patients.value.violations[0].field == "patients.diagnosis_group"

    events = pd.DataFrame({"patient_id": ["P000000"], "event_time": ["not a time"], "event_type": ["death"]})
    with pytest.raises(InvalidInput) as bad_events:
        load_events(events)
    assert {v.field for v in bad_events.value.violations} == {"events.event_time", "events.event_type"}


# Scenario options (ASSUMPTIONS.md, "Scenarios"): each changes what it says and nothing else.


@pytest.fixture(scope="module")
def default_small() -> Cohort:
    return simulate_cohort(60, seed=8, progress=False)


def _hours_before_admissions(cohort: Cohort, hours: float) -> int:
    admissions = cohort.events[cohort.events["event_type"] == "unplanned_admission"]
    count = 0
    for patient, at in zip(admissions["patient_id"], admissions["event_time"], strict=True):
        obs = cohort.observations
        start = at - pd.Timedelta(hours=hours)
        window = (obs["patient_id"] == patient) & (obs["observed_at"] < at) & (obs["observed_at"] >= start)
        count += int(window.sum())
    return count


def test_early_pews_drift_lowers_blood_pressure_and_slows_refill_before_events_only(default_small: Cohort) -> None:
    early = simulate_cohort(60, seed=8, progress=False, config=SimulationConfig(pews_items_drift_early=True))
    pd.testing.assert_frame_equal(early.events, default_small.events)
    before, after = default_small.observations, early.observations
    assert before["observation_id"].equals(after["observation_id"])
    pd.testing.assert_series_equal(before["temperature_c"], after["temperature_c"])
    measured = before["systolic_bp"].notna()
    assert (after["systolic_bp"][measured] <= before["systolic_bp"][measured]).all()
    assert (after["systolic_bp"][measured] < before["systolic_bp"][measured]).mean() > 0.005
    refill = before["capillary_refill_s"].notna()
    assert (after["capillary_refill_s"][refill] >= before["capillary_refill_s"][refill]).all()
    assert (after["capillary_refill_s"][refill] > before["capillary_refill_s"][refill]).any()


def test_measurement_frequency_that_does_not_rise_with_illness_removes_the_extra_sets(default_small: Cohort) -> None:
    flat = simulate_cohort(60, seed=8, progress=False, config=SimulationConfig(measurement_rises_with_illness=False))
    pd.testing.assert_frame_equal(flat.events, default_small.events)
    assert len(flat.observations) < len(default_small.observations)
    # Sets per day in the 24 h before an admission: the default rises up to fourfold, the option not at all.
    assert _hours_before_admissions(flat, 24) < 0.6 * _hours_before_admissions(default_small, 24)


def test_antipyretics_lower_fever_readings_and_nothing_else(default_small: Cohort) -> None:
    treated = simulate_cohort(60, seed=8, progress=False, config=SimulationConfig(antipyretic_fraction=0.5))
    pd.testing.assert_frame_equal(treated.events, default_small.events)
    before, after = default_small.observations, treated.observations
    assert before["observation_id"].equals(after["observation_id"])
    measured = before["temperature_c"].notna()
    assert (after["temperature_c"][measured] <= before["temperature_c"][measured] + 1e-9).all()
    fevers_before = int((before["temperature_c"] >= 38.0).sum())
    fevers_after = int((after["temperature_c"] >= 38.0).sum())
    assert fevers_before > 50 and fevers_after < 0.8 * fevers_before
    pd.testing.assert_series_equal(before["neutrophils_g_l"], after["neutrophils_g_l"])
