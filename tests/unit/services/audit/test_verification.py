"""verify(): each kind of damage to a chain is found and named with its writer and sequence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from clinpred.services.common.audit import AuditRecord, ChainHead, ProblemKind, UnreadableRecord, verify
from clinpred.services.common.audit.chain import seal
from tests.unit.services.audit.sample_entries import sample_entry, sample_keys

KEYS = sample_keys()
WRITER = "a" * 32
OTHER = "b" * 32


def _chain(writer: str, length: int) -> tuple[list[AuditRecord], ChainHead]:
    head = ChainHead(writer, 0, KEYS.genesis_hash(writer))
    records = []
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for number in range(length):
        record = seal(KEYS, sample_entry(KEYS, request_id=f"req-{number}"), head, start + timedelta(seconds=number))
        records.append(record)
        head = ChainHead(writer, record.sequence, record.hash)
    return records, head


def _problems(records: list[AuditRecord], head: ChainHead | None) -> list[tuple[ProblemKind, int | None]]:
    heads = {WRITER: head} if head else {}
    report = verify({WRITER: records}, heads, KEYS)
    return [(p.kind, p.sequence) for p in report.problems]


def test_an_intact_chain_has_no_problems() -> None:
    records, head = _chain(WRITER, 5)
    other, other_head = _chain(OTHER, 3)
    report = verify({WRITER: records, OTHER: other}, {WRITER: head, OTHER: other_head}, KEYS)
    assert report.intact and report.writers == 2 and report.records == 8
    assert report.summary() == "2 writer(s), 8 record(s): intact"


def test_a_removed_record_is_a_gap() -> None:
    records, head = _chain(WRITER, 5)
    assert _problems(records[:2] + records[3:], head) == [(ProblemKind.REMOVED, 3)]


def test_two_removed_records_are_one_gap() -> None:
    records, head = _chain(WRITER, 6)
    report = verify({WRITER: records[:1] + records[3:]}, {WRITER: head}, KEYS)
    assert [(p.kind, p.sequence, p.detail) for p in report.problems] == [
        (ProblemKind.REMOVED, 2, "sequence 2-3 missing before 4")
    ]


def test_reordered_records_are_found() -> None:
    records, head = _chain(WRITER, 5)
    assert _problems([records[0], records[2], records[1], records[3], records[4]], head) == [(ProblemKind.REORDERED, 2)]


def test_an_edited_record_fails_its_hash() -> None:
    records, head = _chain(WRITER, 5)
    edited = replace(records[2], entry=replace(records[2].entry, outcome="NOT_FOUND"))
    assert _problems([*records[:2], edited, *records[3:]], head) == [(ProblemKind.EDITED, 3)]


def test_a_record_rehashed_without_the_key_breaks_the_link() -> None:
    records, head = _chain(WRITER, 4)
    forged = seal(sample_keys(bytes(64)), records[2].entry, ChainHead(WRITER, 2, "f" * 64), records[2].recorded_at)
    # 3 links to nothing and fails its hash; 4 no longer links to what now stands at 3.
    assert _problems([*records[:2], forged, records[3]], head) == [
        (ProblemKind.EDITED, 3),
        (ProblemKind.EDITED, 3),
        (ProblemKind.EDITED, 4),
    ]


def test_a_cut_tail_is_truncation_against_the_head() -> None:
    records, head = _chain(WRITER, 5)
    report = verify({WRITER: records[:3]}, {WRITER: head}, KEYS)
    assert [(p.kind, p.sequence) for p in report.problems] == [(ProblemKind.TRUNCATED, 4)]
    assert "chain ends at 3, its head at 5" in report.problems[0].detail
    assert _problems([], head) == [(ProblemKind.TRUNCATED, 1)]


def test_a_duplicated_record_is_found() -> None:
    records, head = _chain(WRITER, 3)
    assert (ProblemKind.DUPLICATED, 2) in _problems([records[0], records[1], records[1], records[2]], head)


def test_records_of_a_writer_with_no_head_are_an_unknown_writer() -> None:
    records, _ = _chain(WRITER, 2)
    assert _problems(records, None) == [(ProblemKind.UNKNOWN_WRITER, None)]


def test_a_head_whose_hash_differs_is_a_mismatch() -> None:
    records, head = _chain(WRITER, 3)
    assert _problems(records, replace(head, hash="0" * 64)) == [(ProblemKind.HEAD_MISMATCH, 3)]


def test_a_record_after_the_head_is_unacknowledged() -> None:
    records, _ = _chain(WRITER, 3)
    head = ChainHead(WRITER, 2, records[1].hash)
    assert _problems(records, head) == [(ProblemKind.UNACKNOWLEDGED, 3)]


def test_a_torn_last_line_and_unreadable_lines_are_reported() -> None:
    records, head = _chain(WRITER, 2)
    unreadable = [
        UnreadableRecord(WRITER, "line 3", "the last line has no end", torn=True),
        UnreadableRecord(WRITER, "line 1", "audit record is not JSON"),
    ]
    report = verify({WRITER: records}, {WRITER: head}, KEYS, unreadable)
    assert [p.kind for p in report.problems] == [ProblemKind.TORN, ProblemKind.UNREADABLE]
    assert report.problems[0].line() == f"torn: writer {WRITER}: line 3: the last line has no end"


def test_a_wrong_key_fails_every_record() -> None:
    records, head = _chain(WRITER, 3)
    report = verify({WRITER: records}, {WRITER: head}, sample_keys(bytes(64)))
    assert [p.kind for p in report.problems].count(ProblemKind.EDITED) >= 3
