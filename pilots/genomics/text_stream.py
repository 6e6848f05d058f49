"""Lines of a text file that arrives as a path, bytes or a stream of chunks, plain or gzipped.

Scoring files and VCFs come from disk in tests and from a gRPC
client-streaming upload in production; both end up here as chunks of bytes.
Gzip (and bgzip, which is a series of gzip members) is detected from the
magic bytes rather than the file name, because uploads have no name.
Decompression is bounded by `max_bytes` chunk by chunk, so a small
compressed bomb cannot expand in memory before the limit is checked.
Lines are bounded by `max_line_bytes`: a line longer than that is refused
(with its number) as soon as the limit is crossed, without a newline ever
arriving, so memory per line stays bounded and a newline-free stream is
not buffered whole. A `Deadline` is checked every few lines and chunks.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from clinpred.pilots.common.cancellation import Deadline, check_deadline
from clinpred.pilots.common.errors import InputOrigin, InvalidInput, ResourceExhausted

TextSource = str | os.PathLike[str] | bytes | bytearray | memoryview | Iterable[bytes] | Iterable[str]

_GZIP_MAGIC = b"\x1f\x8b"
# bgzip ends every file with this empty block; its absence means the stream was cut at a block boundary.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_READ_BLOCK = 1 << 20
# Default longest line: generous for scoring files and headers. VCF readers pass their own (see vcf.py).
DEFAULT_MAX_LINE_BYTES = 1 << 20
# Deadline checks: every this many lines or bytes of text, whichever comes first (a check costs a
# clock read; parsing a line of a VCF costs far more, in proportion to its length).
DEADLINE_EVERY_LINES = 1024
DEADLINE_EVERY_BYTES = 1 << 20

@dataclass(frozen=True)
class TextLine:
    number: int
    text: str
    terminated: bool  # False only for a last line without its newline, a hint of truncation


def source_name(source: TextSource, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, str) and ("\n" in source or len(source) > 4096):
        return "text"  # content passed where a path belongs; never echo it
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name[:100]
    return "upload"


def _raw_chunks(source: TextSource, origin: InputOrigin) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
        return
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            handle = path.open("rb")
        except (OSError, ValueError):
            # A str is a path here; text content must come as bytes or an iterable of lines.
            raise origin.error(InvalidInput, f"{origin.label}: no such file (text content must be passed as bytes)") from None
        with handle:
            yield from iter(lambda: handle.read(_READ_BLOCK), b"")
        return
    for chunk in source:
        if isinstance(chunk, str):
            yield chunk.encode()
        elif isinstance(chunk, (bytes, bytearray, memoryview)):
            yield bytes(chunk)
        else:
            raise origin.error(InvalidInput, f"{origin.label}: stream items must be bytes or str, not {type(chunk).__name__}")


class _GzipMembers:
    """Decompresses concatenated gzip members (bgzip), bounded and truncation-aware."""

    def __init__(self, origin: InputOrigin, max_bytes: int) -> None:
        self.origin = origin
        self.max_bytes = max_bytes
        self.produced = 0
        self.decompressor = zlib.decompressobj(wbits=31)
        self.member_open = False
        self.is_bgzf: bool | None = None
        self.head = b""
        self.tail = b""

    def _check_size(self, size: int) -> None:
        self.produced += size
        if self.produced > self.max_bytes:
            message = f"{self.origin.label}: decompressed size exceeds the limit of {self.max_bytes} bytes"
            raise self.origin.error(ResourceExhausted, message)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self.is_bgzf is None:
            self.head += data[: 14 - len(self.head)]
            if len(self.head) >= 14:
                # bgzip: FEXTRA flag set and a "BC" subfield right after the 12-byte header.
                self.is_bgzf = bool(self.head[3] & 4) and self.head[12:14] == b"BC"
        self.tail = (self.tail + data)[-len(BGZF_EOF):]
        while data:
            self.member_open = True
            try:
                out = self.decompressor.decompress(data, _READ_BLOCK)
                self._check_size(len(out))
                yield out
                while self.decompressor.unconsumed_tail:
                    out = self.decompressor.decompress(self.decompressor.unconsumed_tail, _READ_BLOCK)
                    self._check_size(len(out))
                    yield out
            except zlib.error:
                raise self.origin.error(InvalidInput, f"{self.origin.label}: corrupt gzip stream") from None
            if self.decompressor.eof:
                data = self.decompressor.unused_data
                self.decompressor = zlib.decompressobj(wbits=31)
                self.member_open = False
            else:
                data = b""

    def finish(self) -> None:
        if self.member_open:
            message = f"{self.origin.label}: gzip stream is truncated (the last block is incomplete)"
            raise self.origin.error(InvalidInput, message)
        if self.is_bgzf and self.tail != BGZF_EOF:
            raise self.origin.error(InvalidInput, f"{self.origin.label}: bgzip stream is truncated (no end-of-file block)")


def _decoded_chunks(
    source: TextSource, origin: InputOrigin, max_bytes: int, deadline: Deadline | None = None
) -> Iterator[bytes]:
    received = 0
    head = b""
    gzip: _GzipMembers | None = None
    decided = False
    for chunk in _raw_chunks(source, origin):
        check_deadline(deadline)
        if not chunk:
            continue
        received += len(chunk)
        if received > max_bytes:
            raise origin.error(ResourceExhausted, f"{origin.label}: input exceeds the limit of {max_bytes} bytes")
        if not decided:
            head += chunk
            if len(head) < 2:
                continue
            decided = True
            chunk, head = head, b""
            if chunk[:2] == _GZIP_MAGIC:
                gzip = _GzipMembers(origin, max_bytes)
        if gzip is None:
            yield chunk
        else:
            yield from gzip.feed(chunk)
    if not decided and head:
        yield head
    if gzip is not None:
        gzip.finish()


def read_lines(
    source: TextSource,
    *,
    name: str | None = None,
    max_bytes: int = 1 << 30,
    origin: InputOrigin | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    deadline: Deadline | None = None,
) -> Iterator[TextLine]:
    """Every line of `source` (numbered from 1), without line endings.

    `origin` (else `name`) names the input in errors; see `InputOrigin`. A line longer than
    `max_line_bytes` (without its newline) is refused as soon as it is; `deadline` is checked
    every chunk read and every `DEADLINE_EVERY_LINES` lines or `DEADLINE_EVERY_BYTES` bytes.
    """
    origin = origin or InputOrigin(source_name(source, name))
    # The line being read, as pieces: joining once per line keeps a long line linear, not quadratic.
    pending: list[bytes] = []
    pending_bytes = 0
    number = 0
    unchecked_bytes = 0
    for chunk in _decoded_chunks(source, origin, max_bytes, deadline):
        check_deadline(deadline)
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            pending_bytes += len(piece)
            if pending_bytes > max_line_bytes + 1:  # + 1: a "\r" before the newline
                raise _too_long(origin, number + 1, max_line_bytes)
            if end < 0:
                if piece:
                    pending.append(piece)
                break
            pending.append(piece)
            number += 1
            unchecked_bytes += pending_bytes
            if number % DEADLINE_EVERY_LINES == 0 or unchecked_bytes > DEADLINE_EVERY_BYTES:
                check_deadline(deadline)
                unchecked_bytes = 0
            raw = b"".join(pending)
            pending, pending_bytes = [], 0
            yield TextLine(number, _decode(raw, origin, number, max_line_bytes), True)
            start = end + 1
    if pending:
        number += 1
        yield TextLine(number, _decode(b"".join(pending), origin, number, max_line_bytes), False)


def _too_long(origin: InputOrigin, number: int, limit: int) -> InvalidInput:
    return origin.error(InvalidInput, f"{origin.label} line {number}: longer than {limit} bytes; reading stopped")


def _decode(raw: bytes, origin: InputOrigin, number: int, max_line_bytes: int) -> str:
    raw = raw.rstrip(b"\r")
    if len(raw) > max_line_bytes:
        raise _too_long(origin, number, max_line_bytes)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise origin.error(InvalidInput, f"{origin.label} line {number}: not valid UTF-8 text") from None
