"""The audit trail as files: one append-only JSON Lines file per writer, and its head beside it.

`<writer id>.jsonl` holds the records; `<writer id>.head` the last acknowledged sequence and
hash, replaced atomically (write, fsync, rename, fsync the folder) after each group of records
is fsynced (a group: the records of calls that ended while the previous group was stored).
A crash between the two leaves that group after the head, which verification reports as
unacknowledged rather than as tampering; a missing tail shows as a chain
shorter than its head. After a failed write the file is cut back to its last whole record
and the next append starts a new writer.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import suppress
from datetime import datetime
from pathlib import Path

from clinpred.services.common.audit.chain import ChainHead, ChainWriter, now, seal
from clinpred.services.common.audit.errors import AuditRecordError, AuditUnavailable
from clinpred.services.common.audit.keys import AuditKeys
from clinpred.services.common.audit.records import AuditEntry, AuditRecord, canonical_json
from clinpred.services.common.audit.verification import StoredChains, UnreadableRecord

LOG_SUFFIX = ".jsonl"
HEAD_SUFFIX = ".head"
_WRITER_ID = re.compile(r"[0-9a-f]{32}")


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class AuditFileLog:
    """An `AuditTrail` in `directory`; thread-safe, and each process writes its own files."""

    def __init__(self, directory: Path, keys: AuditKeys) -> None:
        self.directory = Path(directory)
        self._keys = keys
        self._chain = ChainWriter(keys)
        self._lock = threading.Lock()
        self._descriptor: int | None = None
        self._offset = 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as error:
            raise AuditUnavailable(f"audit directory {self.directory} cannot be created: {error.strerror}") from None

    @property
    def writer_id(self) -> str | None:
        return self._chain.writer_id

    def append(self, entry: AuditEntry) -> AuditRecord:
        return self.append_group([entry])[0]

    def append_group(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        """Stores the entries in order with one write, one fsync and one head update: all or none."""
        if not entries:
            return []
        with self._lock:
            try:
                head = self._chain.current() or self._start()
                records = []
                for entry in entries:
                    record = seal(self._keys, entry, head, now())
                    records.append(record)
                    head = ChainHead(record.writer_id, record.sequence, record.hash)
                lines = b"".join(record.to_json() + b"\n" for record in records)
                self._append_line(lines)
                self._write_head(head)
            except OSError as error:
                self._abandon()
                raise AuditUnavailable(f"audit record could not be stored in {self.directory}: {error.strerror}") from None
            self._offset += len(lines)
            self._chain.advanced(records[-1])
            return records

    def close(self) -> None:
        with self._lock:
            self._close_descriptor()
            self._chain.failed()

    def _start(self) -> ChainHead:
        # A descriptor inherited from a parent process belongs to the parent's chain.
        self._close_descriptor()
        head = self._chain.start()
        # The head exists before the file, so a crash never leaves records of a writer without one.
        self._write_head(head)
        path = self.directory / f"{head.writer_id}{LOG_SUFFIX}"
        self._descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._offset = 0
        self._chain.started(head)
        return head

    def _append_line(self, line: bytes) -> None:
        assert self._descriptor is not None
        _write_all(self._descriptor, line)
        os.fsync(self._descriptor)

    def _write_head(self, head: ChainHead) -> None:
        path = self.directory / f"{head.writer_id}{HEAD_SUFFIX}"
        temporary = path.with_name(path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            _write_all(descriptor, canonical_json({"writer_id": head.writer_id, "sequence": head.sequence, "hash": head.hash}))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
        _fsync_directory(self.directory)

    def _abandon(self) -> None:
        """After a failed write: cut the file back to its last whole record; the next append starts a new writer."""
        if self._descriptor is not None:
            try:
                os.ftruncate(self._descriptor, self._offset)
                os.fsync(self._descriptor)
            except OSError:
                pass  # verification will report the torn or unacknowledged line
        self._close_descriptor()
        self._chain.failed()

    def _close_descriptor(self) -> None:
        if self._descriptor is not None:
            with suppress(OSError):
                os.close(self._descriptor)
            self._descriptor = None


def _parse_head(path: Path) -> ChainHead:
    try:
        value = json.loads(path.read_bytes())
    except ValueError:
        raise AuditRecordError("head file is not JSON") from None
    if not isinstance(value, dict) or set(value) != {"writer_id", "sequence", "hash"}:
        raise AuditRecordError("head file must hold exactly writer_id, sequence and hash")
    writer_id, sequence, hash_ = value["writer_id"], value["sequence"], value["hash"]
    if writer_id != path.name.removesuffix(HEAD_SUFFIX) or type(sequence) is not int or sequence < 0:
        raise AuditRecordError("head file names another writer or a bad sequence")
    if not isinstance(hash_, str) or not re.fullmatch(r"[0-9a-f]{64}", hash_):
        raise AuditRecordError("head file hash must be 64 hex digits")
    return ChainHead(writer_id, sequence, hash_)


def _writer_ids(directory: Path) -> list[str]:
    names = {p.name.removesuffix(LOG_SUFFIX) for p in directory.glob(f"*{LOG_SUFFIX}")}
    names |= {p.name.removesuffix(HEAD_SUFFIX) for p in directory.glob(f"*{HEAD_SUFFIX}")}
    return sorted(names)


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line without its end, whether it had a line end)."""
    with open(path, "rb") as file:
        for number, line in enumerate(file, start=1):
            yield number, line.removesuffix(b"\n"), line.endswith(b"\n")


def _records_of(directory: Path, writer_id: str, unreadable: list[UnreadableRecord] | None) -> Iterator[AuditRecord]:
    path = directory / f"{writer_id}{LOG_SUFFIX}"
    if not path.exists():
        return
    for number, line, complete in _lines(path):
        if not complete:
            if unreadable is not None:
                unreadable.append(UnreadableRecord(writer_id, f"line {number}", "the last line has no end", torn=True))
            continue
        try:
            yield AuditRecord.from_json(line)
        except AuditRecordError as error:
            if unreadable is not None:
                unreadable.append(UnreadableRecord(writer_id, f"line {number}", error.message))


def read_directory(directory: Path) -> StoredChains:
    """Every writer's records in file order, heads and unreadable lines, for `verify`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise AuditUnavailable(f"audit directory {directory} does not exist")
    records: dict[str, list[AuditRecord]] = {}
    heads: dict[str, ChainHead] = {}
    unreadable: list[UnreadableRecord] = []
    for writer_id in _writer_ids(directory):
        if not _WRITER_ID.fullmatch(writer_id):
            unreadable.append(UnreadableRecord(writer_id, "file name", "not a writer id (32 hex digits)"))
            continue
        head_path = directory / f"{writer_id}{HEAD_SUFFIX}"
        if head_path.exists():
            try:
                heads[writer_id] = _parse_head(head_path)
            except AuditRecordError as error:
                unreadable.append(UnreadableRecord(writer_id, "head file", error.message))
        stored = list(_records_of(directory, writer_id, unreadable))
        if stored or (directory / f"{writer_id}{LOG_SUFFIX}").exists():
            records[writer_id] = stored
    return StoredChains(records, heads, unreadable)


def iter_directory(directory: Path, since: datetime | None = None, until: datetime | None = None) -> Iterator[AuditRecord]:
    """Readable records recorded in [since, until), writer by writer (oldest writer first), each in sequence.

    Streams: one record in memory at a time. Unreadable lines are skipped; `verify` reports them.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise AuditUnavailable(f"audit directory {directory} does not exist")
    firsts: list[tuple[datetime, str]] = []
    for writer_id in _writer_ids(directory):
        first = next(_records_of(directory, writer_id, None), None)
        if first is not None:
            firsts.append((first.recorded_at, writer_id))
    for _, writer_id in sorted(firsts):
        for record in _records_of(directory, writer_id, None):
            if (since is None or record.recorded_at >= since) and (until is None or record.recorded_at < until):
                yield record
