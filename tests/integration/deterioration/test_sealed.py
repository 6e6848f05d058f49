"""Sealed calls to the deterioration service: two replicas on one database (SQLite file, PostgreSQL) share
the replay guard, so an envelope opened by one is refused by the other; answers and audit records are those
of plain calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.rpc import code_pb2

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.deterioration.store import open_store
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as pb_grpc
from clinpred.services.common.audit.reading import iter_records
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.deterioration.client import DeteriorationClient
from clinpred.services.deterioration.service import deterioration_mount
from clinpred.services.deterioration.settings import DeteriorationSettings
from tests.integration.deterioration.test_service import calm, patient, septic
from tests.integration.sealed_support import RawSealed, new_keyring, raised

SERVICE = "/clinpred.deterioration.v1.DeteriorationService/"


@pytest.fixture(scope="module")
async def replicas(
    deterioration_package: ModelPackage, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[str, str]]:
    """Two servers, as two replicas are: one database, one keyring (a Kubernetes Secret in production)."""
    keys = new_keyring(tmp_path_factory.mktemp("sealed-deterioration") / "keys")
    settings = DeteriorationSettings(database_url=database_url, sealing_keys_dir=keys)
    servers = [await start_inprocess_server(deterioration_mount(settings)) for _ in range(2)]
    yield f"127.0.0.1:{servers[0][1]}", f"127.0.0.1:{servers[1][1]}"
    for server, _ in servers:
        await server.stop(grace=None)


def raw(target: str) -> RawSealed:
    return RawSealed(grpc.insecure_channel(target), pb_grpc.DeteriorationServiceStub, pb)


async def test_a_replay_to_another_replica_is_refused(replicas: tuple[str, str]) -> None:
    first, second = replicas

    def replay() -> tuple[int, object, int]:
        envelope, opener = raw(first).seal(SERVICE + "GetModelInfo", pb.GetModelInfoRequest())
        opened = raw(first).status(envelope, opener).code
        refused = raised(lambda: raw(second).send(envelope))
        # A fresh envelope of the same request opens on either replica.
        again = raw(second).status(*raw(second).seal(SERVICE + "GetModelInfo", pb.GetModelInfoRequest())).code
        return opened, refused, again

    opened, refused, again = await asyncio.to_thread(replay)
    assert opened == code_pb2.OK and again == code_pb2.OK
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "replay" in refused.details  # type: ignore[attr-defined]


async def test_concurrent_replays_on_both_replicas_open_once(replicas: tuple[str, str]) -> None:
    envelope, _ = await asyncio.to_thread(lambda: raw(replicas[0]).seal(SERVICE + "GetModelInfo", pb.GetModelInfoRequest()))

    def send(target: str) -> grpc.StatusCode:
        try:
            raw(target).send(envelope)
        except grpc.RpcError as error:
            assert isinstance(error, grpc.Call)
            return error.code()
        return grpc.StatusCode.OK

    # Threads of their own: the default executor's few workers also run the servers' store calls.
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(6) as senders:
        codes = await asyncio.gather(*(loop.run_in_executor(senders, send, replicas[i % 2]) for i in range(6)))
    assert sorted(code.name for code in codes) == ["INVALID_ARGUMENT"] * 5 + ["OK"]


async def test_sealed_recording_answers_and_audits_as_a_plain_one(replicas: tuple[str, str], database_url: str) -> None:
    first, second = replicas
    suffix = datetime.now(UTC).strftime("%H%M%S%f")

    def record(sealed: bool) -> tuple[pb.RecordObservationsResponse, pb.GetLatestRiskResponse]:
        patient_id = f"sealed-{sealed}-{suffix}"
        with DeteriorationClient(first, sealed=sealed) as client:
            client.register_patient(patient(patient_id))
            recorded = client.record(patient_id, [calm(1, 3), septic(2, 1)])
        with DeteriorationClient(second, sealed=sealed) as client:
            return recorded, client.latest(patient_id)

    (plain_recorded, plain_latest), (sealed_recorded, sealed_latest) = await asyncio.gather(
        asyncio.to_thread(record, False), asyncio.to_thread(record, True)
    )
    for answer in (plain_recorded.score, sealed_recorded.score, plain_latest.score, sealed_latest.score):
        answer.ClearField("scored_at")
        answer.ClearField("patient_id")
    assert sealed_recorded.score == plain_recorded.score
    assert sealed_latest.score == plain_latest.score
    assert sealed_recorded.stored == plain_recorded.stored == 2

    since = datetime.now(UTC) - timedelta(minutes=5)
    records = [r.entry for r in iter_records(database=database_url, since=since)]
    by_method = {(e.method, e.outcome) for e in records}
    assert (SERVICE + "Sealed/RecordObservations", "OK") in by_method
    assert (SERVICE + "Sealed/RegisterPatient", "OK") in by_method
    sealed_pseudonyms = {e.patient_pseudonym for e in records if e.method == SERVICE + "Sealed/RecordObservations"}
    plain_pseudonyms = {e.patient_pseudonym for e in records if e.method == SERVICE + "RecordObservations"}
    assert sealed_pseudonyms and plain_pseudonyms and "" not in sealed_pseudonyms
    assert not sealed_pseudonyms & plain_pseudonyms  # two different patients, each its own pseudonym
    # Nothing in a sealed call's record is the patient's id in clear.
    assert not any(suffix in str(entry) for entry in records)


async def test_watch_is_refused_sealed_with_the_unary_method_to_use(replicas: tuple[str, str]) -> None:
    def refused() -> object:
        sender = raw(replicas[0])
        return sender.status(*sender.seal(SERVICE + "WatchRisk", pb.WatchRiskRequest(ward="onc-a")))

    status = await asyncio.to_thread(refused)
    assert status.code == code_pb2.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "seal GetLatestRisk instead" in str(status)


def test_the_store_guard_takes_over_expired_digests_only(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'guard.db'}")
    try:
        now = datetime.now(UTC)
        digest = bytes(32)
        assert not store.seen_before(digest, now + timedelta(seconds=60), now)
        assert store.seen_before(digest, now + timedelta(seconds=60), now + timedelta(seconds=59))
        # Expired: the digest counts as unseen again (its envelope is outside its window by then anyway).
        assert not store.seen_before(digest, now + timedelta(seconds=200), now + timedelta(seconds=61))
        assert store.seen_before(digest, now + timedelta(seconds=200), now + timedelta(seconds=62))
    finally:
        store.close()
