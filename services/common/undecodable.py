"""Request messages the servicer never sees: bytes that are not a message of the method's type
(INVALID_ARGUMENT, not INTERNAL), and messages larger than the method needs (RESOURCE_EXHAUSTED).

The error interceptor installs `tolerant` deserializers; the access interceptor, once the caller is
known, refuses what they set aside (`checked`), inside the audit trail so the refusal is recorded.
Sizes are per message: the server's 16 MiB cap bounds every method, and methods whose requests are
small (a patient, a query) are bounded far lower, so a caller cannot make them parse megabytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.message import DecodeError

from clinpred.pilots.common.errors import FieldViolation, InvalidInput, ResourceExhausted

_KIB = 1024
_MIB = 1024 * 1024
# Largest message of each method's request; methods not listed keep the server's 16 MiB. Generous
# enough that a field merely too long is named by the codec's own check (INVALID_ARGUMENT).
MAX_MESSAGE_BYTES: dict[str, int] = {
    "/clinpred.tumor.v1.TumorClassificationService/Classify": 64 * _KIB,
    "/clinpred.tumor.v1.TumorClassificationService/ClassifyStream": 64 * _KIB,
    "/clinpred.tumor.v1.TumorClassificationService/GetModelInfo": 64 * _KIB,
    "/clinpred.tumor.v1.TumorClassificationService/GetEncryptionLayout": 64 * _KIB,
    "/clinpred.deterioration.v1.DeteriorationService/RegisterPatient": 1 * _MIB,
    "/clinpred.deterioration.v1.DeteriorationService/RecordObservations": 4 * _MIB,
    "/clinpred.deterioration.v1.DeteriorationService/GetLatestRisk": 64 * _KIB,
    "/clinpred.deterioration.v1.DeteriorationService/ListRiskHistory": 64 * _KIB,
    "/clinpred.deterioration.v1.DeteriorationService/WatchRisk": 64 * _KIB,
    "/clinpred.deterioration.v1.DeteriorationService/ScoreObservations": 4 * _MIB,
    "/clinpred.deterioration.v1.DeteriorationService/ExportFhir": 64 * _KIB,
    "/clinpred.deterioration.v1.DeteriorationService/GetModelInfo": 64 * _KIB,
    "/clinpred.genomics.v1.GenomicRiskService/ListScores": 64 * _KIB,
    "/clinpred.genomics.v1.GenomicRiskService/GetScoreLayout": 64 * _KIB,
    "/clinpred.genomics.v1.GenomicRiskService/GetModelInfo": 64 * _KIB,
}


class Oversized:
    """Stands in for a request message larger than its method accepts; keeps its bytes for the digest."""

    def __init__(self, raw: bytes, limit: int) -> None:
        self.raw = raw
        self.limit = limit


class Undecodable:
    """Stands in for a request whose bytes did not parse; keeps them (`raw`) for the audit trail's digest."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw


def tolerant(deserialize: Callable[[bytes], Any], method: str = "") -> Callable[[bytes], Any]:
    limit = MAX_MESSAGE_BYTES.get(method)

    def parse(data: bytes) -> Any:
        if limit is not None and len(data) > limit:
            return Oversized(data, limit)
        try:
            return deserialize(data)
        except DecodeError:
            return Undecodable(data)

    return parse


def _refusal(message: Undecodable | Oversized, path: str) -> InvalidInput | ResourceExhausted:
    if isinstance(message, Oversized):
        return ResourceExhausted(f"{path}: {len(message.raw)} bytes; this method accepts messages of at most {message.limit}")
    return InvalidInput.of([FieldViolation(path, "is not a valid protobuf message of this method's request type")])


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    index = 0
    async for request in requests:
        if isinstance(request, (Undecodable, Oversized)):
            raise _refusal(request, f"stream[{index}]")
        yield request
        index += 1


def checked(request_or_iterator: Any) -> Any:
    """The request, or a stream that raises at the first message that did not parse."""
    if isinstance(request_or_iterator, (Undecodable, Oversized)):
        raise _refusal(request_or_iterator, "request")
    if hasattr(request_or_iterator, "__aiter__"):
        return _checked_stream(request_or_iterator)
    return request_or_iterator
