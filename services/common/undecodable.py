"""Requests whose bytes are not a valid message of the method's type: answered INVALID_ARGUMENT, not INTERNAL.

The error interceptor installs `tolerant` deserializers; the access interceptor, once the caller is
known, refuses what they could not parse (`checked`), inside the audit trail so the refusal is recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.message import DecodeError

from clinpred.pilots.common.errors import FieldViolation, InvalidInput


class Undecodable:
    """Stands in for a request whose bytes did not parse; keeps them (`raw`) for the audit trail's digest."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw


def tolerant(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError:
            return Undecodable(data)

    return parse


def _undecodable_error(path: str) -> InvalidInput:
    return InvalidInput.of([FieldViolation(path, "is not a valid protobuf message of this method's request type")])


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    index = 0
    async for request in requests:
        if isinstance(request, Undecodable):
            raise _undecodable_error(f"stream[{index}]")
        yield request
        index += 1


def checked(request_or_iterator: Any) -> Any:
    """The request, or a stream that raises at the first message that did not parse."""
    if isinstance(request_or_iterator, Undecodable):
        raise _undecodable_error("request")
    if hasattr(request_or_iterator, "__aiter__"):
        return _checked_stream(request_or_iterator)
    return request_or_iterator
