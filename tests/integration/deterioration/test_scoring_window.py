"""A recorded batch is scored from its scoring window (the features' widest window and each signal's latest
observation), on SQLite and PostgreSQL: the same scores as from the whole history, at a fixed cost per batch."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.deterioration.features import SIGNAL_COLUMNS, WIDEST_FEATURE_WINDOW
from clinpred.pilots.deterioration.observations import Observation
from clinpred.pilots.deterioration.predictor import DeteriorationPredictor
from clinpred.pilots.deterioration.store import DeteriorationRiskStore, PatientRecord
from clinpred.pilots.deterioration.store.sql_store import SqliteRiskStore
from clinpred.pilots.deterioration.stored_score import StoredScore

TENANT = "default"
START = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
PATIENT = PatientRecord(
    "p-window", date(2019, 4, 2), "female", "all", "high", True, "ward-1", "team-1", chemotherapy_at=(START,)
)
BATCH = 10


def simulated_history(days: int, seed: int = 11) -> list[Observation]:
    """A child at home for `days` days: vital signs about every 3 h with gaps and missing items, labs about
    every 4 days (so a lab's latest value is often older than a week), a late-arriving set now and then."""
    rng = np.random.default_rng(seed)
    observations: list[Observation] = []
    at = START
    end = START + timedelta(days=days)
    n = 0
    while at < end:
        n += 1
        values: dict[str, float | str] = {}
        if rng.random() < 0.9:
            values["heart_rate"] = float(round(rng.normal(118, 15)))
            values["respiratory_rate"] = float(round(rng.normal(26, 4)))
        if rng.random() < 0.8:
            values["temperature_c"] = round(float(rng.normal(37.4, 0.6)), 1)
        if rng.random() < 0.7:
            values["spo2"] = float(min(100, round(rng.normal(96, 2))))
        if rng.random() < 0.3:
            values["systolic_bp"] = float(round(rng.normal(102, 10)))
        if rng.random() < 0.2:
            values["capillary_refill_s"] = float(rng.choice([1.0, 2.0, 3.0]))
            values["respiratory_effort"] = float(rng.choice([0.0, 1.0]))
            values["avpu"] = str(rng.choice(["A", "A", "A", "V"]))
        if rng.random() < 0.05:
            values["oxygen_flow_l_min"] = float(rng.choice([0.0, 1.0]))
        if rng.random() < 0.035:
            values.update(neutrophils_g_l=round(float(rng.gamma(2, 1)), 2), crp_mg_l=round(float(rng.gamma(2, 20)), 1))
            values.update(haemoglobin_g_l=float(round(rng.normal(95, 10))), platelets_g_l=float(round(rng.gamma(4, 40))))
        if not values:
            values["heart_rate"] = 120.0
        # Some sets share a time; some are recorded a little in the past of the newest.
        observed = at - timedelta(minutes=int(rng.integers(0, 90))) if rng.random() < 0.1 else at
        observations.append(Observation(f"o-{n:05d}", observed, **values))  # type: ignore[arg-type]
        at += timedelta(minutes=int(rng.choice([0, 60, 120, 180, 240, 480])))
    return observations


@pytest.fixture(scope="module")
def predictor(deterioration_package: ModelPackage) -> DeteriorationPredictor:
    return DeteriorationPredictor.load(deterioration_package)


def _score(predictor: DeteriorationPredictor, observations: list[Observation]) -> StoredScore:
    at = max(o.observed_at for o in observations)
    return StoredScore.of(predictor.score(PATIENT.history(observations), at, validate=False), None)


def _stored(score: StoredScore) -> dict[str, object]:
    # The stored form: a value not measured (NaN, never equal to itself) is null there.
    return score.to_payload()


def _batches(observations: list[Observation]) -> Iterator[list[Observation]]:
    for start in range(0, len(observations), BATCH):
        yield observations[start : start + BATCH]


def test_scores_from_the_scoring_window_equal_scores_from_the_whole_history(
    store: DeteriorationRiskStore, predictor: DeteriorationPredictor
) -> None:
    history = simulated_history(60)
    store.upsert_patient(TENANT, PATIENT)
    # Longer than the history: the whole history is what the window must stand for.
    lookback = timedelta(days=90)
    recorded: list[Observation] = []
    read_sizes = []
    labs_older_than_the_window = 0
    for batch in _batches(history):
        with store.recording(TENANT, PATIENT.patient_id) as visit:
            visit.add(batch, field="observations")
            recorded += batch
            window = visit.scoring_window(lookback, WIDEST_FEATURE_WINDOW, SIGNAL_COLUMNS)
            read_sizes.append(len(window))
            newest = max(o.observed_at for o in recorded)
            labs = [o.observed_at for o in recorded if o.neutrophils_g_l is not None]
            labs_older_than_the_window += bool(labs) and newest - max(labs) > WIDEST_FEATURE_WINDOW
            # Exactly equal, floats included: the features see the same values at the same times.
            assert _stored(_score(predictor, window)) == _stored(_score(predictor, recorded))
            visit.save(_score(predictor, window))
    # The comparison covered what the window leaves out: labs last measured before it, and long histories.
    assert labs_older_than_the_window > 0
    assert len(recorded) > 2.5 * max(read_sizes[len(read_sizes) // 2 :])


def test_the_scoring_window_reads_what_the_lookback_window_reads_for_the_features(
    store: DeteriorationRiskStore, predictor: DeteriorationPredictor
) -> None:
    history = simulated_history(30, seed=5)
    store.upsert_patient(TENANT, PATIENT)
    lookback = timedelta(days=14)
    for batch in _batches(history):
        with store.recording(TENANT, PATIENT.patient_id) as visit:
            visit.add(batch, field="observations")
            window = visit.scoring_window(lookback, WIDEST_FEATURE_WINDOW, SIGNAL_COLUMNS)
            everything_in_lookback = visit.window(lookback)
            assert {o.observation_id for o in window} <= {o.observation_id for o in everything_in_lookback}
            assert _stored(_score(predictor, window)) == _stored(_score(predictor, everything_in_lookback))


def test_recording_a_batch_costs_the_same_statements_however_long_the_history(
    tmp_path: Path, predictor: DeteriorationPredictor
) -> None:
    store = SqliteRiskStore(tmp_path / "risk.db")
    store.migrate()
    store.upsert_patient(TENANT, PATIENT)
    statements: list[str] = []
    connection: sqlite3.Connection = store._connection()
    connection.set_trace_callback(statements.append)
    per_batch, sizes = [], []
    for batch in _batches(simulated_history(40, seed=3)):
        statements.clear()
        with store.recording(TENANT, PATIENT.patient_id) as visit:
            visit.add(batch, field="observations")
            window = visit.scoring_window(timedelta(days=14), WIDEST_FEATURE_WINDOW, SIGNAL_COLUMNS)
            score = replace(_score(predictor, window), previous_band=visit.previous_band)
            visit.save(score)
        per_batch.append(len(statements))
        sizes.append(len(batch))
    connection.set_trace_callback(None)
    store.close()
    # BEGIN, the patient's row, the ids already stored, one insert per observation, the newest time, the
    # last week, the signals it lacks (labs, some batches), the previous score's band (none before the
    # first), the tenant's sequence, the patient's version, the score, COMMIT: nothing grows with the history.
    base = [9 + size + (k > 0) for k, size in enumerate(sizes)]
    extra = [count - expected for count, expected in zip(per_batch, base, strict=True)]
    assert set(extra) == {0, 1}
    assert len(per_batch) > 30


def test_an_unchanged_poll_is_one_read_of_the_patients_row(tmp_path: Path) -> None:
    store = SqliteRiskStore(tmp_path / "risk.db")
    store.migrate()
    store.upsert_patient(TENANT, PATIENT)
    statements: list[str] = []
    connection: sqlite3.Connection = store._connection()
    connection.set_trace_callback(statements.append)
    assert store.latest_version(TENANT, PATIENT.patient_id) == 0
    connection.set_trace_callback(None)
    store.close()
    assert len(statements) == 1 and statements[0].startswith("SELECT score_version FROM patients")
