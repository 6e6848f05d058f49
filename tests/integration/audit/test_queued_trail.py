"""The event loop's way into a trail: concurrent calls' records stored in groups, each call answered
only once its group is stored, a failed group failing exactly its calls (files, SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from clinpred.services.common.audit import AuditEntry, AuditFileLog, AuditKeys, AuditRecord, AuditUnavailable, verify
from clinpred.services.common.audit.queued_trail import QueuedAuditTrail
from tests.integration.audit.conftest import Trail
from tests.unit.services.audit.sample_entries import sample_entry


async def test_concurrent_appends_are_stored_in_few_groups_as_one_gapless_chain(trail: Trail, keys: AuditKeys) -> None:
    queued = QueuedAuditTrail(trail.open(keys))
    entries = [sample_entry(keys, request_id=f"req-{i:04d}") for i in range(200)]
    records = await asyncio.gather(*(queued.append(entry) for entry in entries))
    # Each caller gets its own entry's record, and the chain is in the order the calls ended.
    assert [r.entry.request_id for r in records] == [e.request_id for e in entries]
    assert [r.sequence for r in records] == list(range(1, 201))
    assert queued.records_stored == 200
    # All 200 ended in one turn of the loop, before the storing task ran: one group, one durable write.
    assert queued.groups_stored == 1
    stored = trail.read()
    assert verify(stored.records_by_writer, stored.heads, keys).intact
    assert sum(len(chain) for chain in stored.records_by_writer.values()) == 200


async def test_a_group_is_bounded(tmp_path: Path, keys: AuditKeys) -> None:
    queued = QueuedAuditTrail(AuditFileLog(tmp_path / "audit", keys), max_group=16)
    await asyncio.gather(*(queued.append(sample_entry(keys)) for _ in range(50)))
    # In groups of at most 16: 16, 16, 16, 2.
    assert (queued.records_stored, queued.groups_stored) == (50, 4)


class _HeldFirstGroup:
    """A real file trail whose first group's write waits until the test lets it go."""

    def __init__(self, inner: AuditFileLog) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.sizes: list[int] = []

    def append(self, entry: AuditEntry) -> AuditRecord:
        return self.append_group([entry])[0]

    def append_group(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        self.sizes.append(len(entries))
        if len(self.sizes) == 1:
            assert self.release.wait(10)
        return self.inner.append_group(entries)

    def close(self) -> None:
        self.inner.close()


async def test_records_of_calls_ending_while_a_group_is_stored_go_together_in_the_next(tmp_path: Path, keys: AuditKeys) -> None:
    trail = _HeldFirstGroup(AuditFileLog(tmp_path / "audit", keys))
    queued = QueuedAuditTrail(trail)
    first = asyncio.ensure_future(queued.append(sample_entry(keys)))
    while not trail.sizes:  # its group is being stored
        await asyncio.sleep(0.001)
    later = [asyncio.ensure_future(queued.append(sample_entry(keys))) for _ in range(30)]
    await asyncio.sleep(0.01)
    assert not first.done() and not any(call.done() for call in later)  # nobody answered before its record is stored
    trail.release.set()
    records = await asyncio.gather(first, *later)
    assert trail.sizes == [1, 30]
    assert [r.sequence for r in records] == list(range(1, 32))


class _FailingOnce:
    """A real file trail whose second group cannot be stored (a full disk, a database gone)."""

    def __init__(self, inner: AuditFileLog) -> None:
        self.inner = inner
        self.groups = 0

    def append(self, entry: AuditEntry) -> AuditRecord:
        return self.append_group([entry])[0]

    def append_group(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        self.groups += 1
        if self.groups == 2:
            raise AuditUnavailable("audit record could not be stored in the directory: No space left on device")
        return self.inner.append_group(entries)

    def close(self) -> None:
        self.inner.close()


async def test_a_group_that_cannot_be_stored_fails_its_calls_only_and_the_next_group_is_stored(
    tmp_path: Path, keys: AuditKeys
) -> None:
    trail = _FailingOnce(AuditFileLog(tmp_path / "audit", keys))
    queued = QueuedAuditTrail(trail)
    first = asyncio.ensure_future(queued.append(sample_entry(keys, request_id="first")))
    await asyncio.sleep(0)  # the first is being stored: these three wait and go together, and fail together
    failing = [asyncio.ensure_future(queued.append(sample_entry(keys, request_id=f"lost-{i}"))) for i in range(3)]
    assert (await first).entry.request_id == "first"
    for call in failing:
        with pytest.raises(AuditUnavailable, match="No space left on device"):
            await call
    later = await queued.append(sample_entry(keys, request_id="later"))
    assert later.entry.request_id == "later" and later.sequence == 2


async def test_a_caller_that_leaves_still_has_its_record_stored(tmp_path: Path, keys: AuditKeys) -> None:
    queued = QueuedAuditTrail(AuditFileLog(tmp_path / "audit", keys))
    call = asyncio.ensure_future(queued.append(sample_entry(keys, request_id="left")))
    await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    after = await queued.append(sample_entry(keys, request_id="after"))
    assert after.sequence == 2
    stored = [r.entry.request_id for chain in (await asyncio.to_thread(_read, tmp_path / "audit")) for r in chain]
    assert stored == ["left", "after"]


def _read(directory: Path) -> list[list[AuditRecord]]:
    from clinpred.services.common.audit import read_directory

    return list(read_directory(directory).records_by_writer.values())


def test_entries_are_frozen_so_a_group_stores_what_each_call_handed_in() -> None:
    entry = sample_entry()
    with pytest.raises(AttributeError):
        entry.outcome = "PERMISSION_DENIED"  # type: ignore[misc]
    assert replace(entry, outcome="PERMISSION_DENIED").outcome == "PERMISSION_DENIED"
