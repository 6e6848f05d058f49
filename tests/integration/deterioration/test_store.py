"""The deterioration risk store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest

from clinpred.pilots.common.errors import InvalidInput, NotFound
from clinpred.pilots.deterioration.store import (
    ComputedScore,
    DeteriorationRiskStore,
    ObservationRecord,
    PatientRecord,
    ScoreRecord,
    open_store,
)

TENANT = "default"
LOOKBACK = timedelta(days=30)
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def counting_score(
    patient: PatientRecord, history: Sequence[ObservationRecord], previous: ScoreRecord | None
) -> ComputedScore:
    """A score that records exactly which observations and which previous score it saw."""
    heart_rates = [o.values["heart_rate"] for o in history]
    return ComputedScore(
        scored_at=history[-1].observed_at if history else T0,
        probability=min(1.0, len(history) / 1000),
        band="low",
        payload={
            "observations": len(history),
            "ids": [o.observation_id for o in history],
            "hr": heart_rates[-1],
            "previous_version": previous.version if previous else 0,
        },
    )


def observation(index: int, heart_rate: float = 120.0) -> ObservationRecord:
    return ObservationRecord(f"obs-{index}", T0 + timedelta(minutes=index), {"heart_rate": heart_rate})


def register(store: DeteriorationRiskStore, patient_id: str = "p1", ward: str = "oncology-a") -> None:
    store.upsert_patient(TENANT, PatientRecord(patient_id, date(2019, 5, 1), "female", ward, "team-1"))


def test_recording_stores_observations_and_a_first_score(store: DeteriorationRiskStore) -> None:
    register(store)
    outcome = store.record(TENANT, "p1", [observation(1), observation(2)], counting_score, LOOKBACK)
    assert (outcome.stored, outcome.duplicates) == (2, 0)
    assert outcome.score is not None and outcome.score.version == 1
    assert outcome.score.payload["ids"] == ["obs-1", "obs-2"]
    assert store.latest_score(TENANT, "p1") == outcome.score
    assert [o.observation_id for o in store.observations(TENANT, "p1", LOOKBACK)] == ["obs-1", "obs-2"]


def test_a_retried_batch_stores_nothing_twice(store: DeteriorationRiskStore) -> None:
    register(store)
    batch = [observation(1), observation(2)]
    first = store.record(TENANT, "p1", batch, counting_score, LOOKBACK)
    again = store.record(TENANT, "p1", batch, counting_score, LOOKBACK)
    assert (again.stored, again.duplicates) == (0, 2)
    assert again.score == first.score  # no new version for nothing new
    partly = store.record(TENANT, "p1", [observation(2), observation(3)], counting_score, LOOKBACK)
    assert (partly.stored, partly.duplicates) == (1, 1)
    assert partly.score is not None and partly.score.version == 2
    assert partly.score.payload["observations"] == 3


def test_a_reused_id_with_other_content_rejects_the_whole_batch(store: DeteriorationRiskStore) -> None:
    register(store)
    store.record(TENANT, "p1", [observation(1)], counting_score, LOOKBACK)
    with pytest.raises(InvalidInput) as caught:
        store.record(TENANT, "p1", [observation(5), observation(1, heart_rate=90.0)], counting_score, LOOKBACK)
    assert caught.value.violations[0].field == "observations[1].observation_id"
    # Nothing of the rejected batch was stored, and no score was added.
    assert [o.observation_id for o in store.observations(TENANT, "p1", LOOKBACK)] == ["obs-1"]
    latest = store.latest_score(TENANT, "p1")
    assert latest is not None and latest.version == 1


def test_unknown_patients_are_not_found(store: DeteriorationRiskStore) -> None:
    with pytest.raises(NotFound):
        store.record(TENANT, "nobody", [observation(1)], counting_score, LOOKBACK)
    with pytest.raises(NotFound):
        store.latest_score(TENANT, "nobody")


def test_tenants_never_see_each_others_patients(store: DeteriorationRiskStore) -> None:
    register(store)
    store.record(TENANT, "p1", [observation(1)], counting_score, LOOKBACK)
    with pytest.raises(NotFound):
        store.latest_score("other-hospital", "p1")
    assert store.scores_after("other-hospital", 0) == []


def test_history_pages_newest_first(store: DeteriorationRiskStore) -> None:
    register(store)
    for i in range(7):
        store.record(TENANT, "p1", [observation(i)], counting_score, LOOKBACK)
    first = store.score_history(TENANT, "p1", page_size=3)
    second = store.score_history(TENANT, "p1", page_size=3, before_version=first[-1].version)
    third = store.score_history(TENANT, "p1", page_size=3, before_version=second[-1].version)
    assert [s.version for s in first + second + third] == [7, 6, 5, 4, 3, 2, 1]


def test_watchers_read_scores_in_commit_order(store: DeteriorationRiskStore) -> None:
    register(store, "p1")
    register(store, "p2", ward="oncology-b")
    for i in range(3):
        store.record(TENANT, "p1", [observation(i)], counting_score, LOOKBACK)
        store.record(TENANT, "p2", [observation(i)], counting_score, LOOKBACK)
    seen = store.scores_after(TENANT, 0)
    assert [s.seq for s in seen] == list(range(1, 7))
    assert [s.patient_id for s in seen] == ["p1", "p2"] * 3
    assert store.scores_after(TENANT, seen[3].seq) == seen[4:]
    assert store.last_seq(TENANT) == 6
    assert {s.ward for s in seen} == {"oncology-a", "oncology-b"}


def test_migrating_twice_is_harmless(store_url: str) -> None:
    first = open_store(store_url)
    register(first)
    first.record(TENANT, "p1", [observation(1)], counting_score, LOOKBACK)
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
                replica.record(TENANT, "p1", [observation(worker * 1000 + i)], counting_score, LOOKBACK)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def read() -> None:
        while not done.is_set():
            latest = replicas[1].latest_score(TENANT, "p1")
            if latest is not None:
                seen.append((latest.version, latest.payload["observations"]))

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
    assert all(s.payload["observations"] == s.version for s in history)
    # Each score saw exactly the score before it.
    assert all(s.payload["previous_version"] == s.version - 1 for s in history)
    assert seen, "the reader saw no score"
    # A score's version and its data agree: version n was computed from exactly n observations.
    assert all(version == count for version, count in seen)
    versions = [version for version, _ in seen]
    assert versions == sorted(versions), "a reader saw a version go backwards"
    seqs = [s.seq for s in replicas[0].scores_after(TENANT, 0, limit=1000)]
    assert seqs == list(range(1, total + 1))
    for replica in replicas:
        replica.close()
