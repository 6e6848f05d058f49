"""Audit records: what a caller hands in (`AuditEntry`) and what is stored (`AuditRecord`).

A record is stored as canonical JSON (sorted keys, no spaces, ASCII), the exact bytes its
chain hash covers. Parsing is strict: unknown or missing fields, wrong types and unknown
schema versions are refused, so a record is never half understood.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from clinpred.services.common.audit.errors import AuditRecordError

SCHEMA_VERSION = 1

# Every gRPC status code name (grpc.StatusCode), spelled out so the domain of audit records needs no grpc import.
STATUS_NAMES = frozenset(
    {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_WRITER_ID = re.compile(r"[0-9a-f]{32}")
# Always six fractional digits and "Z": one spelling per instant, so the canonical bytes are unique.
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def canonical_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def instant_text(moment: datetime) -> str:
    """`2026-12-03T12:46:50.123456Z`: UTC with microseconds."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_instant(text: str) -> datetime:
    if not _INSTANT.fullmatch(text):
        raise ValueError("not a UTC instant with microseconds (YYYY-MM-DDTHH:MM:SS.ffffffZ)")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class AuditEntry:
    """One call as the caller of the library describes it. No raw patient data: only the pseudonym."""

    tenant: str
    client: str
    service: str
    method: str
    outcome: str  # gRPC status code name, e.g. "OK", "NOT_FOUND"
    model: str  # e.g. "deterioration:3", "" when no model was involved
    patient_pseudonym: str  # AuditKeys.pseudonym(...), "" when the call concerns no patient
    request_digest: str  # hex SHA-256 of the request bytes
    request_id: str  # the caller's x-request-id (bounded by the caller), "" when absent

    def __post_init__(self) -> None:
        problems = _entry_problems(self)
        if problems:
            raise ValueError("invalid audit entry: " + "; ".join(problems))


def _entry_problems(entry: AuditEntry) -> list[str]:
    problems = [f"{f.name} must be a string" for f in fields(entry) if not isinstance(getattr(entry, f.name), str)]
    if problems:
        return problems
    for name in ("tenant", "client", "service", "method"):
        if not getattr(entry, name):
            problems.append(f"{name} must not be empty")
    if entry.outcome not in STATUS_NAMES:
        problems.append("outcome must be a gRPC status code name such as OK or NOT_FOUND")
    if entry.patient_pseudonym and not _HEX64.fullmatch(entry.patient_pseudonym):
        problems.append("patient_pseudonym must be AuditKeys.pseudonym(...) (64 hex digits) or empty")
    if not _HEX64.fullmatch(entry.request_digest):
        problems.append("request_digest must be a hex SHA-256 (64 lowercase hex digits)")
    return problems


@dataclass(frozen=True)
class AuditRecord:
    """An entry as stored: numbered in its writer's chain and sealed with the chain hash."""

    entry: AuditEntry
    writer_id: str  # uuid4 hex of the log instance that wrote it
    sequence: int  # 1, 2, ... per writer
    recorded_at: datetime  # UTC, microseconds
    previous_hash: str
    hash: str
    schema_version: int = SCHEMA_VERSION

    def unsealed_fields(self) -> dict[str, Any]:
        """Every stored field but `hash`: what the chain hash covers."""
        return {
            **asdict(self.entry),
            "schema_version": self.schema_version,
            "writer_id": self.writer_id,
            "sequence": self.sequence,
            "recorded_at": instant_text(self.recorded_at),
            "previous_hash": self.previous_hash,
        }

    def to_json(self) -> bytes:
        """The canonical JSON of the record (one line, no newline)."""
        return canonical_json({**self.unsealed_fields(), "hash": self.hash})

    @classmethod
    def from_json(cls, text: str | bytes) -> AuditRecord:
        """Parses one stored record; AuditRecordError names what is wrong (never a field's value)."""
        try:
            value = json.loads(text)
        except (ValueError, UnicodeDecodeError) as error:
            raise AuditRecordError(f"audit record is not JSON: {type(error).__name__}") from None
        if not isinstance(value, dict):
            raise AuditRecordError("audit record is not a JSON object")
        version = value.get("schema_version")
        if type(version) is not int:
            raise AuditRecordError("audit record has no integer schema_version")
        if version != SCHEMA_VERSION:
            raise AuditRecordError(
                f"audit record schema version {version} is not supported (this clinpred reads version {SCHEMA_VERSION});"
                " read it with the clinpred release that wrote it or a newer one"
            )
        entry_names = [f.name for f in fields(AuditEntry)]
        expected = {*entry_names, "schema_version", "writer_id", "sequence", "recorded_at", "previous_hash", "hash"}
        unknown, missing = sorted(value.keys() - expected), sorted(expected - value.keys())
        if unknown or missing:
            raise AuditRecordError(f"audit record fields differ from schema version 1: unknown {unknown}, missing {missing}")
        problems = [name for name in expected - {"schema_version", "sequence"} if not isinstance(value[name], str)]
        if problems:
            raise AuditRecordError(f"audit record fields must be strings: {sorted(problems)}")
        sequence = value["sequence"]
        if type(sequence) is not int or sequence < 1:
            raise AuditRecordError("audit record sequence must be an integer >= 1")
        if not _WRITER_ID.fullmatch(value["writer_id"]):
            raise AuditRecordError("audit record writer_id must be 32 hex digits")
        for name in ("previous_hash", "hash"):
            if not _HEX64.fullmatch(value[name]):
                raise AuditRecordError(f"audit record {name} must be 64 hex digits")
        try:
            recorded_at = parse_instant(value["recorded_at"])
            entry = AuditEntry(**{name: value[name] for name in entry_names})
        except ValueError as error:
            raise AuditRecordError(f"audit record: {error}") from None
        return cls(
            entry=entry,
            writer_id=value["writer_id"],
            sequence=sequence,
            recorded_at=recorded_at,
            previous_hash=value["previous_hash"],
            hash=value["hash"],
            schema_version=version,
        )
