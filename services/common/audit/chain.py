"""One hash chain per writer, and the head that makes a cut-off tail detectable.

Each log instance (one per process) is a writer with a fresh uuid4 id, so API worker
processes and replicas never interleave into one chain. Its records are numbered 1, 2, ...;
each record's hash covers the previous record's hash, the first one's covers
HMAC(chain key, "genesis:" + writer id). The head (last sequence and hash) is stored
durably with every append; a chain shorter than its head has lost its tail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from clinpred.services.common.audit.keys import AuditKeys
from clinpred.services.common.audit.records import SCHEMA_VERSION, AuditEntry, AuditRecord


@dataclass(frozen=True)
class ChainHead:
    """A writer's last acknowledged record: sequence 0 with the genesis hash before the first."""

    writer_id: str
    sequence: int
    hash: str


class AuditTrail(Protocol):
    """Where every call's record goes: `append` returns only once the record is durably stored;
    `append_group` stores several in order with one durable write (all or none).

    Any failure to store raises `AuditUnavailable`.
    """

    def append(self, entry: AuditEntry) -> AuditRecord: ...

    def append_group(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]: ...

    def close(self) -> None: ...


def seal(keys: AuditKeys, entry: AuditEntry, head: ChainHead, recorded_at: datetime) -> AuditRecord:
    """The record after `head` in its writer's chain."""
    unsealed = AuditRecord(
        entry=entry,
        writer_id=head.writer_id,
        sequence=head.sequence + 1,
        recorded_at=recorded_at.astimezone(UTC),
        previous_hash=head.hash,
        hash="",
        schema_version=SCHEMA_VERSION,
    )
    return replace(unsealed, hash=keys.chain_hash(head.hash, unsealed.unsealed_fields()))


class ChainWriter:
    """A writer's position in its chain, renewed after a failed write and in a forked child.

    After a failure the stored tail is uncertain (a torn line, a commit whose answer was lost),
    so the next append starts a new writer rather than guess; the old chain ends at its head.
    A forked child must not continue its parent's chain: that would interleave two processes.
    """

    def __init__(self, keys: AuditKeys) -> None:
        self._keys = keys
        self._head: ChainHead | None = None
        self._pid = os.getpid()

    def current(self) -> ChainHead | None:
        """The head to append after, or None when a new writer must start (first use, failure, fork)."""
        if self._pid != os.getpid():
            self._head, self._pid = None, os.getpid()
        return self._head

    def start(self) -> ChainHead:
        writer_id = uuid.uuid4().hex
        return ChainHead(writer_id, 0, self._keys.genesis_hash(writer_id))

    def advanced(self, record: AuditRecord) -> None:
        self._head = ChainHead(record.writer_id, record.sequence, record.hash)

    def started(self, head: ChainHead) -> None:
        self._head = head

    def failed(self) -> None:
        self._head = None

    @property
    def writer_id(self) -> str | None:
        return self._head.writer_id if self._head else None


def now() -> datetime:
    return datetime.now(UTC)
