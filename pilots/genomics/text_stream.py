"""Lines of a text file that arrives as a path, bytes or a stream of chunks, plain or gzipped.

Scoring files and VCFs come from disk in tests and from a gRPC
client-streaming upload in production; both end up here as chunks of bytes.
Gzip (and bgzip, which is a series of gzip members) is detected from the
magic bytes rather than the file name, because uploads have no name.
Decompression is bounded by `max_bytes` chunk by chunk, so a small
compressed bomb cannot expand in memory before the limit is checked.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from clinpred.pilots.common.errors import InvalidInput, ResourceExhausted

TextSource = str | os.PathLike[str] | bytes | bytearray | memoryview | Iterable[bytes] | Iterable[str]

_GZIP_MAGIC = b"\x1f\x8b"
# bgzip ends every file with this empty block; its absence means the stream was cut at a block boundary.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_READ_BLOCK = 1 << 20


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


def _raw_chunks(source: TextSource, name: str) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
        return
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            handle = path.open("rb")
        except (OSError, ValueError):
            # A str is a path here; text content must come as bytes or an iterable of lines.
            raise InvalidInput(f"{name}: no such file (text content must be passed as bytes)") from None
        with handle:
            yield from iter(lambda: handle.read(_READ_BLOCK), b"")
        return
    for chunk in source:
        if isinstance(chunk, str):
            yield chunk.encode()
        elif isinstance(chunk, (bytes, bytearray, memoryview)):
            yield bytes(chunk)
        else:
            raise InvalidInput(f"{name}: stream items must be bytes or str, not {type(chunk).__name__}")


class _GzipMembers:
    """Decompresses concatenated gzip members (bgzip), bounded and truncation-aware."""

    def __init__(self, name: str, max_bytes: int) -> None:
        self.name = name
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
            raise ResourceExhausted(f"{self.name}: decompressed size exceeds the limit of {self.max_bytes} bytes")

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
                raise InvalidInput(f"{self.name}: corrupt gzip stream") from None
            if self.decompressor.eof:
                data = self.decompressor.unused_data
                self.decompressor = zlib.decompressobj(wbits=31)
                self.member_open = False
            else:
                data = b""

    def finish(self) -> None:
        if self.member_open:
            raise InvalidInput(f"{self.name}: gzip stream is truncated (the last block is incomplete)")
        if self.is_bgzf and self.tail != BGZF_EOF:
            raise InvalidInput(f"{self.name}: bgzip stream is truncated (no end-of-file block)")


def _decoded_chunks(source: TextSource, name: str, max_bytes: int) -> Iterator[bytes]:
    received = 0
    head = b""
    gzip: _GzipMembers | None = None
    decided = False
    for chunk in _raw_chunks(source, name):
        if not chunk:
            continue
        received += len(chunk)
        if received > max_bytes:
            raise ResourceExhausted(f"{name}: input exceeds the limit of {max_bytes} bytes")
        if not decided:
            head += chunk
            if len(head) < 2:
                continue
            decided = True
            chunk, head = head, b""
            if chunk[:2] == _GZIP_MAGIC:
                gzip = _GzipMembers(name, max_bytes)
        if gzip is None:
            yield chunk
        else:
            yield from gzip.feed(chunk)
    if not decided and head:
        yield head
    if gzip is not None:
        gzip.finish()


def read_lines(source: TextSource, *, name: str | None = None, max_bytes: int = 1 << 30) -> Iterator[TextLine]:
    """Every line of `source` (numbered from 1), without line endings."""
    label = source_name(source, name)
    pending = b""
    number = 0
    for chunk in _decoded_chunks(source, label, max_bytes):
        pending += chunk
        if b"\n" not in chunk:
            continue
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            number += 1
            yield TextLine(number, _decode(raw, label, number), True)
    if pending:
        number += 1
        yield TextLine(number, _decode(pending, label, number), False)


def _decode(raw: bytes, name: str, number: int) -> str:
    try:
        return raw.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        raise InvalidInput(f"{name} line {number}: not valid UTF-8 text") from None
