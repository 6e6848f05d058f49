"""Windowed features on hand-built histories, and batch (training) equal to online (one patient) features."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from clinpred.pilots.deterioration.cohort import patient_history
from clinpred.pilots.deterioration.features import (
    FEATURE_NAMES,
    arrays_from_tables,
    compute_features,
    features_for_history,
    to_hours,
)
from clinpred.pilots.deterioration.observations import Observation, PatientHistory, PatientInfo
from clinpred.pilots.deterioration.pews import bedside_pews
from clinpred.pilots.deterioration.reference_ranges import fleming_z
from clinpred.pilots.deterioration.simulator import simulate_cohort

AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
BIRTH = date(2020, 1, 1)


def _obs(hours_before: float, **values: float | str) -> Observation:
    at = AT - timedelta(hours=hours_before)
    return Observation(observation_id=f"o{hours_before}", observed_at=at, **values)  # type: ignore[arg-type]


@pytest.fixture()
def history() -> PatientHistory:
    observations = (
        _obs(50, neutrophils_g_l=0.3, crp_mg_l=12),
        _obs(30, heart_rate=100, temperature_c=36.8, capillary_refill_s=3.0),
        _obs(20, heart_rate=110, temperature_c=37.0, spo2=97),
        _obs(10, heart_rate=120, temperature_c=37.6),
        _obs(4, heart_rate=130, temperature_c=38.4, spo2=95, respiratory_rate=30, respiratory_effort=2, avpu="A"),
        _obs(2, heart_rate=140, temperature_c=38.9),
        _obs(-1, heart_rate=200, temperature_c=40.0),  # after the scoring time: must be ignored
    )
    patient = PatientInfo("p1", BIRTH, "aml", "high", True)
    return PatientHistory(patient, observations, (AT - timedelta(days=9),))


def test_latest_values_windows_and_trends(history: PatientHistory) -> None:
    f = features_for_history(history, AT)
    assert f["heart_rate_last"] == 140
    assert f["heart_rate_hours_since_last"] == pytest.approx(2.0)
    assert f["heart_rate_mean_6h"] == pytest.approx(135.0)
    assert f["heart_rate_max_24h"] == 140
    assert f["heart_rate_min_24h"] == 110  # the value 30 h ago is outside the 24 h window
    assert f["heart_rate_delta_24h"] == pytest.approx(140 - (110 + 120) / 2)
    assert f["heart_rate_vs_7d"] == pytest.approx(140 - 100)
    assert f["heart_rate_missing_24h"] == 0
    assert f["temperature_c_max_24h"] == pytest.approx(38.9)
    assert f["fever_readings_24h"] == 2
    assert f["respiratory_rate_last"] == 30
    assert np.isnan(f["respiratory_rate_delta_24h"])  # nothing between 24 h and 6 h ago
    assert f["spo2_hours_since_last"] == pytest.approx(4.0)
    assert f["observation_sets_24h"] == 4


def test_missing_and_stale_signals(history: PatientHistory) -> None:
    f = features_for_history(history, AT)
    assert f["systolic_bp_missing_24h"] == 1
    assert np.isnan(f["systolic_bp_last"])
    assert np.isnan(f["systolic_bp_hours_since_last"])
    assert f["neutrophils_g_l_last"] == pytest.approx(0.3)
    assert f["neutrophils_g_l_hours_since_last"] == pytest.approx(50.0)
    assert f["capillary_refill_s_hours_since_last"] == pytest.approx(30.0)


def test_age_normalised_scores_context_and_pews(history: PatientHistory) -> None:
    f = features_for_history(history, AT)
    age = (AT - datetime(2020, 1, 1, tzinfo=UTC)).total_seconds() / (365.25 * 86400)
    assert f["age_years"] == pytest.approx(age)
    assert f["heart_rate_z_last"] == pytest.approx(float(fleming_z("heart_rate", 140, age)[()]), rel=1e-6)
    assert f["heart_rate_z_last"] > 2  # 140/min is far above the median of a five-year-old
    assert f["days_since_chemo"] == pytest.approx(9.0)
    assert f["diagnosis_aml"] == 1 and f["diagnosis_all"] == 0
    assert f["treatment_intensity"] == 2 and f["central_line"] == 1
    # Capillary refill of 3 s is 30 h old: older than 24 h, so PEWS does not count it.
    expected = bedside_pews(age, heart_rate=140, respiratory_rate=30, spo2=95, respiratory_effort=2)
    assert f["pews_total"] == expected.total == 4


def test_future_observations_are_ignored(history: PatientHistory) -> None:
    without_future = PatientHistory(history.patient, history.observations[:-1], history.chemotherapy_at)
    a = features_for_history(history, AT)
    b = features_for_history(without_future, AT)
    assert all((np.isnan(a[k]) and np.isnan(b[k])) or a[k] == b[k] for k in FEATURE_NAMES)


def test_batch_features_equal_online_features() -> None:
    cohort = simulate_cohort(12, seed=4, progress=False)
    arrays, context, index_of = arrays_from_tables(cohort.observations, cohort.patients, cohort.chemotherapy)
    rng = np.random.default_rng(0)
    rows = cohort.observations.iloc[rng.choice(len(cohort.observations), 15, replace=False)]
    offsets = rng.integers(0, 600, 15)
    times = [t.to_pydatetime() + timedelta(minutes=int(m)) for t, m in zip(rows["observed_at"], offsets, strict=True)]
    patients = np.array([index_of[str(p)] for p in rows["patient_id"]])
    batch = compute_features(arrays, context, patients, to_hours(times))
    for k, (pid, at) in enumerate(zip(rows["patient_id"], times, strict=True)):
        history = patient_history(cohort.observations, cohort.patients, str(pid), cohort.chemotherapy)
        online = features_for_history(history, at)
        for name in FEATURE_NAMES:
            np.testing.assert_allclose(online[name], batch[name][k], rtol=1e-9, atol=1e-9, err_msg=name)
