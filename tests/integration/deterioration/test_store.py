"""The deterioration risk store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from clinpred.pilots.common.conformal import ConformalSet
from clinpred.pilots.common.errors import InvalidInput, NotFound
from clinpred.pilots.common.explanation import Explanation
from clinpred.pilots.common.model_package import ModelIdentity
from clinpred.pilots.deterioration.observations import Observation
from clinpred.pilots.deterioration.pews import bedside_pews
from clinpred.pilots.deterioration.predictor import DataQualityFlag
from clinpred.pilots.deterioration.store import (
    DeteriorationRiskStore,
    PatientRecord,
    RecordOutcome,
    ScoreRecord,
    open_store,
)
from clinpred.pilots.deterioration.stored_score import StoredScore
from tests.unit.pilots.deterioration.test_stored_score import VERSION_1_ROW

TENANT = "default"
LOOKBACK = timedelta(days=30)
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
TEMPLATE = StoredScore(
    probability=0.0,
    horizon_hours=24.0,
    band="low",
    band_thresholds=(0.004, 0.01),
    pews=bedside_pews(7.0, heart_rate=120.0),
    confidence=ConformalSet(("no deterioration",), 0.9, "test", "with 90% coverage the outcome is in {no deterioration}"),
    verified_coverage=0.9,
    explanation=Explanation("deterioration", "log-odds", -5.0, -5.0, (), (), "none"),
    data_quality=(),
    model=ModelIdentity("test", "1.0.0", "0" * 64),
    scored_at=T0,
    previous_band=None,
)


def counting_score(window: Sequence[Observation], previous: ScoreRecord | None) -> StoredScore:
    """A score that writes down what it was computed from: the observations it saw and the version before it."""
    return replace(
        TEMPLATE,
        probability=min(1.0, len(window) / 1000),
        scored_at=window[-1].observed_at,
        data_quality=(
            DataQualityFlag("observations_seen", ",".join(o.observation_id for o in window), ""),
            DataQualityFlag("previous_version", str(previous.version if previous else 0), ""),
        ),
        previous_band=previous.score.band if previous else None,
    )


def seen_ids(record: ScoreRecord) -> list[str]:
    return record.score.data_quality[0].signal.split(",")


def previous_version(record: ScoreRecord) -> int:
    return int(record.score.data_quality[1].signal)


def record(store: DeteriorationRiskStore, patient_id: str, observations: Sequence[Observation]) -> RecordOutcome:
    """Records a batch as the handler does: a retry with nothing new adds no version."""
    with store.recording(TENANT, patient_id) as visit:
        stored = visit.add(observations, field="observations")
        previous = visit.previous_score
        if stored == 0 and previous is not None:
            return RecordOutcome(0, len(observations), previous)
        saved = visit.save(counting_score(visit.window(LOOKBACK), previous))
        return RecordOutcome(stored, len(observations) - stored, saved)


def observation(index: int, heart_rate: float = 120.0) -> Observation:
    return Observation(f"obs-{index}", T0 + timedelta(minutes=index), heart_rate=heart_rate)


def register(store: DeteriorationRiskStore, patient_id: str = "p1", ward: str = "oncology-a") -> PatientRecord:
    patient = PatientRecord(
        patient_id,
        date(2019, 5, 1),
        "female",
        "aml",
        "high",
        True,
        ward,
        "team-1",
        chemotherapy_at=(T0 - timedelta(days=3),),
    )
    return store.upsert_patient(TENANT, patient)


def test_registering_returns_the_patient_as_stored(store: DeteriorationRiskStore) -> None:
    registered = register(store)
    assert registered == store.get_patient(TENANT, "p1")
    assert registered.chemotherapy_at == (T0 - timedelta(days=3),) and registered.central_line is True
    moved = store.upsert_patient(TENANT, replace(registered, ward="oncology-b"))
    assert moved.ward == "oncology-b" and store.get_patient(TENANT, "p1") == moved


def test_recording_stores_observations_and_a_first_score(store: DeteriorationRiskStore) -> None:
    register(store)
    outcome = record(store, "p1", [observation(1), observation(2)])
    assert (outcome.stored, outcome.duplicates) == (2, 0)
    assert outcome.score.version == 1 and outcome.score.ward == "oncology-a"
    assert seen_ids(outcome.score) == ["obs-1", "obs-2"] and previous_version(outcome.score) == 0
    assert store.latest_score(TENANT, "p1") == outcome.score
    assert store.observations(TENANT, "p1", LOOKBACK) == [observation(1), observation(2)]


def test_a_retried_batch_stores_nothing_twice(store: DeteriorationRiskStore) -> None:
    register(store)
    batch = [observation(1), observation(2)]
    first = record(store, "p1", batch)
    again = record(store, "p1", batch)
    assert (again.stored, again.duplicates) == (0, 2)
    assert again.score == first.score  # no new version for nothing new
    partly = record(store, "p1", [observation(2), observation(3)])
    assert (partly.stored, partly.duplicates) == (1, 1)
    assert partly.score.version == 2 and seen_ids(partly.score) == ["obs-1", "obs-2", "obs-3"]
    assert partly.score.score.previous_band == "low"


def test_a_reused_id_with_other_content_rejects_the_whole_batch_at_the_path_given(store: DeteriorationRiskStore) -> None:
    register(store)
    record(store, "p1", [observation(1)])
    with pytest.raises(InvalidInput) as caught, store.recording(TENANT, "p1") as visit:
        visit.add([observation(5), observation(1, heart_rate=90.0)], field="batch.observations")
    assert [v.field for v in caught.value.violations] == ["batch.observations[1].observation_id"]
    # Nothing of the rejected batch was stored, and no score was added.
    assert [o.observation_id for o in store.observations(TENANT, "p1", LOOKBACK)] == ["obs-1"]
    latest = store.latest_score(TENANT, "p1")
    assert latest is not None and latest.version == 1


def test_a_failure_inside_a_recording_rolls_back_everything(store: DeteriorationRiskStore) -> None:
    register(store)
    with pytest.raises(RuntimeError, match="the model failed"), store.recording(TENANT, "p1") as visit:
        visit.add([observation(1)], field="observations")
        visit.save(counting_score(visit.window(LOOKBACK), None))
        raise RuntimeError("the model failed")
    assert store.observations(TENANT, "p1", LOOKBACK) == []
    assert store.latest_score(TENANT, "p1") is None
    assert store.last_seq(TENANT) == 0
    # The patient is not left locked: the next batch records as the first.
    assert record(store, "p1", [observation(1)]).score.version == 1


def test_a_recording_is_unusable_once_its_transaction_ended(store: DeteriorationRiskStore) -> None:
    register(store)
    with store.recording(TENANT, "p1") as visit:
        visit.add([observation(1)], field="observations")
    with pytest.raises(RuntimeError, match="transaction has ended"):
        visit.window(LOOKBACK)


def test_unknown_patients_are_not_found(store: DeteriorationRiskStore) -> None:
    with pytest.raises(NotFound):
        record(store, "nobody", [observation(1)])
    with pytest.raises(NotFound):
        store.latest_score(TENANT, "nobody")
    with pytest.raises(NotFound):
        store.score_history(TENANT, "nobody", page_size=3)


def test_tenants_never_see_each_others_patients(store: DeteriorationRiskStore) -> None:
    register(store)
    record(store, "p1", [observation(1)])
    with pytest.raises(NotFound):
        store.latest_score("other-hospital", "p1")
    assert store.scores_after("other-hospital", 0) == []


def test_history_pages_newest_first(store: DeteriorationRiskStore) -> None:
    register(store)
    for i in range(7):
        record(store, "p1", [observation(i)])
    first = store.score_history(TENANT, "p1", page_size=3)
    second = store.score_history(TENANT, "p1", page_size=3, before_version=first[-1].version)
    third = store.score_history(TENANT, "p1", page_size=3, before_version=second[-1].version)
    assert [s.version for s in first + second + third] == [7, 6, 5, 4, 3, 2, 1]


def test_watchers_read_scores_in_commit_order(store: DeteriorationRiskStore) -> None:
    register(store, "p1")
    register(store, "p2", ward="oncology-b")
    for i in range(3):
        record(store, "p1", [observation(i)])
        record(store, "p2", [observation(i)])
    seen = store.scores_after(TENANT, 0)
    assert [s.seq for s in seen] == list(range(1, 7))
    assert [s.patient_id for s in seen] == ["p1", "p2"] * 3
    assert store.scores_after(TENANT, seen[3].seq) == seen[4:]
    assert store.last_seq(TENANT) == 6
    assert {s.ward for s in seen} == {"oncology-a", "oncology-b"}


def _set_payload(url: str, patient_id: str, version: int, payload: dict[str, object]) -> None:
    """Rewrites a stored row's payload behind the store's back, as an older release would have written it."""
    sql = "UPDATE risk_scores SET payload = {0} WHERE tenant = {0} AND patient_id = {0} AND version = {0}"
    params = (json.dumps(payload, sort_keys=True), TENANT, patient_id, version)
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            connection.execute(sql.format("?"), params)
        return
    with psycopg.connect(url) as connection:
        connection.execute(sql.format("%s"), params)


def test_rows_of_the_first_release_read_as_typed_scores(store: DeteriorationRiskStore, store_url: str) -> None:
    register(store)
    record(store, "p1", [observation(1)])
    _set_payload(store_url, "p1", 1, VERSION_1_ROW)
    latest = store.latest_score(TENANT, "p1")
    assert latest is not None and latest.score == StoredScore.from_payload(VERSION_1_ROW)
    # The next score is numbered after it and sees its band as the previous one.
    after = record(store, "p1", [observation(2)])
    assert after.score.version == 2 and after.score.score.previous_band == "high"


def test_migrating_twice_is_harmless(store_url: str) -> None:
    first = open_store(store_url)
    register(first)
    record(first, "p1", [observation(1)])
    first.close()
    second = open_store(store_url)
    latest = second.latest_score(TENANT, "p1")
    second.close()
    assert latest is not None and latest.version == 1


def test_concurrent_replicas_lose_nothing_and_number_scores_in_order(store_url: str) -> None:
    """Two store instances (two replicas) write one patient at once while a reader polls."""
    replicas = [open_store(store_url), open_store(store_url)]
    register(replicas[0])
    writers, per_writer = 4, 15
    errors: list[BaseException] = []
    seen: list[tuple[int, int]] = []
    done = threading.Event()

    def write(worker: int) -> None:
        replica = replicas[worker % 2]
        try:
            for i in range(per_writer):
                record(replica, "p1", [observation(worker * 1000 + i)])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def read() -> None:
        while not done.is_set():
            latest = replicas[1].latest_score(TENANT, "p1")
            if latest is not None:
                seen.append((latest.version, len(seen_ids(latest))))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    assert not errors, errors
    total = writers * per_writer
    assert len(replicas[0].observations(TENANT, "p1", LOOKBACK)) == total
    history = replicas[0].score_history(TENANT, "p1", page_size=1000)
    assert [s.version for s in history] == list(range(total, 0, -1))
    assert all(len(seen_ids(s)) == s.version for s in history)
    # Each score saw exactly the score before it.
    assert all(previous_version(s) == s.version - 1 for s in history)
    assert seen, "the reader saw no score"
    # A score's version and its data agree: version n was computed from exactly n observations.
    assert all(version == count for version, count in seen)
    versions = [version for version, _ in seen]
    assert versions == sorted(versions), "a reader saw a version go backwards"
    seqs = [s.seq for s in replicas[0].scores_after(TENANT, 0, limit=1000)]
    assert seqs == list(range(1, total + 1))
    for replica in replicas:
        replica.close()
