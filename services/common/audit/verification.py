"""Checking stored chains against their heads: every problem named with its writer and sequence."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from clinpred.services.common.audit.chain import ChainHead
from clinpred.services.common.audit.keys import AuditKeys
from clinpred.services.common.audit.records import AuditRecord


class ProblemKind(StrEnum):
    EDITED = "edited"  # the record's hash does not match its content, or it does not link to its predecessor
    REMOVED = "removed"  # a gap in the sequence
    REORDERED = "reordered"  # stored after a record with a higher sequence
    DUPLICATED = "duplicated"  # one sequence stored twice
    TRUNCATED = "truncated"  # the chain ends before its head
    TORN = "torn"  # the last line of a writer's file is incomplete (a write cut short)
    UNREADABLE = "unreadable"  # a stored record that is not a valid record
    UNKNOWN_WRITER = "unknown_writer"  # records of a writer that has no head
    HEAD_MISMATCH = "head_mismatch"  # the head names a hash the chain does not have at that sequence
    UNACKNOWLEDGED = "unacknowledged"  # a record after the head: stored, but its append never returned


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    writer_id: str
    sequence: int | None
    detail: str

    def line(self) -> str:
        where = f"writer {self.writer_id}" + (f" sequence {self.sequence}" if self.sequence is not None else "")
        return f"{self.kind.value}: {where}: {self.detail}"


@dataclass(frozen=True)
class UnreadableRecord:
    """A stored line or row that does not parse; `torn` when it is the cut-short last line of a writer's file."""

    writer_id: str
    where: str  # "line 7" (files), "row sequence 7" (SQL)
    reason: str
    torn: bool = False


@dataclass(frozen=True)
class StoredChains:
    """Everything a log holds: records per writer in storage order, heads, and what did not parse."""

    records_by_writer: dict[str, list[AuditRecord]]
    heads: dict[str, ChainHead]
    unreadable: list[UnreadableRecord] = field(default_factory=list)


@dataclass(frozen=True)
class VerificationReport:
    writers: int
    records: int
    problems: tuple[Problem, ...]

    @property
    def intact(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "intact" if self.intact else f"{len(self.problems)} problem(s)"
        return f"{self.writers} writer(s), {self.records} record(s): {verdict}"


def verify(
    records_by_writer: Mapping[str, Sequence[AuditRecord]],
    heads: Mapping[str, ChainHead],
    keys: AuditKeys,
    unreadable: Sequence[UnreadableRecord] = (),
) -> VerificationReport:
    """Checks every writer's chain (records in storage order) against its head."""
    problems: list[Problem] = []
    for item in unreadable:
        kind = ProblemKind.TORN if item.torn else ProblemKind.UNREADABLE
        problems.append(Problem(kind, item.writer_id, None, f"{item.where}: {item.reason}"))
    writers = sorted(set(records_by_writer) | set(heads))
    for writer_id in writers:
        problems += _check_writer(writer_id, list(records_by_writer.get(writer_id, ())), heads.get(writer_id), keys)
    total = sum(len(records) for records in records_by_writer.values())
    return VerificationReport(writers=len(writers), records=total, problems=tuple(problems))


def _check_writer(writer_id: str, stored: list[AuditRecord], head: ChainHead | None, keys: AuditKeys) -> list[Problem]:
    problems: list[Problem] = []

    def problem(kind: ProblemKind, sequence: int | None, detail: str) -> None:
        problems.append(Problem(kind, writer_id, sequence, detail))

    if head is None:
        problem(ProblemKind.UNKNOWN_WRITER, None, f"{len(stored)} record(s) from a writer with no head")
    highest = 0
    for record in stored:
        if record.writer_id != writer_id:
            problem(ProblemKind.EDITED, record.sequence, "stored under another writer than it names")
        if record.sequence < highest:
            problem(ProblemKind.REORDERED, record.sequence, f"stored after sequence {highest}")
        highest = max(highest, record.sequence)
    counts = Counter(record.sequence for record in stored)
    for sequence in sorted(s for s, n in counts.items() if n > 1):
        problem(ProblemKind.DUPLICATED, sequence, f"stored {counts[sequence]} times")

    by_sequence = {record.sequence: record for record in stored}
    expected_previous = keys.genesis_hash(writer_id)
    expected_sequence = 1
    for sequence in sorted(by_sequence):
        record = by_sequence[sequence]
        if sequence > expected_sequence:
            missing = f"{expected_sequence}" if sequence == expected_sequence + 1 else f"{expected_sequence}-{sequence - 1}"
            problem(ProblemKind.REMOVED, expected_sequence, f"sequence {missing} missing before {sequence}")
        elif record.previous_hash != expected_previous:
            problem(ProblemKind.EDITED, sequence, "does not link to the record before it")
        if keys.chain_hash(record.previous_hash, record.unsealed_fields()) != record.hash:
            problem(ProblemKind.EDITED, sequence, "content does not match its hash")
        expected_previous, expected_sequence = record.hash, sequence + 1

    last = max(by_sequence, default=0)
    if head is not None:
        if last < head.sequence:
            cut = f"{last + 1}" if last + 1 == head.sequence else f"{last + 1}-{head.sequence}"
            problem(ProblemKind.TRUNCATED, last + 1, f"chain ends at {last}, its head at {head.sequence}: {cut} missing")
        elif head.sequence == 0:
            if head.hash != keys.genesis_hash(writer_id):
                problem(ProblemKind.HEAD_MISMATCH, 0, "the head's genesis hash is not this writer's")
        elif head.sequence in by_sequence and by_sequence[head.sequence].hash != head.hash:
            problem(ProblemKind.HEAD_MISMATCH, head.sequence, "the head's hash differs from the record's")
        for sequence in sorted(s for s in by_sequence if s > head.sequence):
            problem(ProblemKind.UNACKNOWLEDGED, sequence, f"after the head ({head.sequence}): stored, never acknowledged")
    return problems
