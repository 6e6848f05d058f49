"""Audit records: canonical JSON, strict parsing, entry checks."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from clinpred.services.common.audit import AuditRecord, AuditRecordError, ChainHead
from clinpred.services.common.audit.chain import seal
from clinpred.services.common.audit.records import canonical_json
from tests.unit.services.audit.sample_entries import sample_entry, sample_keys

WHEN = datetime(2026, 11, 1, 7, 30, 0, 123456, tzinfo=UTC)


def _record() -> AuditRecord:
    keys = sample_keys()
    writer = "0" * 31 + "1"
    return seal(keys, sample_entry(keys), ChainHead(writer, 0, keys.genesis_hash(writer)), WHEN)


def test_a_record_is_canonical_json_and_parses_back_equal() -> None:
    record = _record()
    text = record.to_json()
    assert b" " not in text.replace(b"hospital-a", b"")  # no spaces between tokens
    value = json.loads(text)
    assert list(value) == sorted(value)
    assert value["recorded_at"] == "2026-11-01T07:30:00.123456Z"
    assert value["schema_version"] == 1 and value["sequence"] == 1
    assert canonical_json(value) == text
    assert AuditRecord.from_json(text) == record


def test_microseconds_are_kept_and_always_six_digits() -> None:
    record = seal(sample_keys(), sample_entry(), ChainHead("a" * 32, 4, "b" * 64), WHEN.replace(microsecond=0))
    assert json.loads(record.to_json())["recorded_at"] == "2026-11-01T07:30:00.000000Z"
    assert record.sequence == 5 and record.previous_hash == "b" * 64


def _changed(**changes: object) -> bytes:
    value = json.loads(_record().to_json())
    value.update(changes)
    return json.dumps(value).encode()


def test_an_unknown_schema_version_is_refused_with_a_clear_message() -> None:
    with pytest.raises(AuditRecordError, match=r"schema version 2 is not supported \(this clinpred reads version 1\)"):
        AuditRecord.from_json(_changed(schema_version=2))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_changed(extra="x"), r"unknown \['extra'\]"),
        (_changed(sequence=0), "sequence must be an integer >= 1"),
        (_changed(sequence=True), "sequence must be an integer >= 1"),
        (_changed(sequence="1"), "sequence must be an integer >= 1"),
        (_changed(hash="XYZ"), "hash must be 64 hex digits"),
        (_changed(writer_id="w-1"), "writer_id must be 32 hex digits"),
        (_changed(recorded_at="2026-11-01T07:30:00+00:00"), "UTC instant with microseconds"),
        (_changed(outcome="FINE"), "outcome must be a gRPC status code name"),
        (_changed(tenant=7), r"must be strings: \['tenant'\]"),
        (_changed(schema_version="1"), "no integer schema_version"),
    ],
)
def test_parsing_is_strict(text: bytes, message: str) -> None:
    with pytest.raises(AuditRecordError, match=message):
        AuditRecord.from_json(text)


def test_a_missing_field_is_named() -> None:
    value = json.loads(_record().to_json())
    del value["model"]
    with pytest.raises(AuditRecordError, match=r"missing \['model'\]"):
        AuditRecord.from_json(json.dumps(value))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"outcome": "ok"}, "outcome must be a gRPC status code name"),
        ({"request_digest": "abc"}, "request_digest must be a hex SHA-256"),
        ({"patient_pseudonym": "child-17"}, "patient_pseudonym must be AuditKeys.pseudonym"),
        ({"tenant": ""}, "tenant must not be empty"),
        ({"method": None}, "method must be a string"),
    ],
)
def test_an_entry_is_checked_when_built(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(sample_entry(), **changes)


def test_an_entry_error_never_echoes_the_value() -> None:
    with pytest.raises(ValueError) as raised:
        replace(sample_entry(), patient_pseudonym="child-MARKER-4711")
    assert "MARKER" not in str(raised.value)
