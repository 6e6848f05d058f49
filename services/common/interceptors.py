"""Server interceptors: errors to gRPC status, and call metrics.

Order matters: `server_interceptors()` puts metrics outside error mapping, so the status code
counted is the one the caller receives; the audit trail inside it, so a call's record is written
before its answer (gRPC ends a handler once the status is sent); access innermost.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_interceptor import AsyncServerInterceptor
from grpc_interceptor.exception_to_status import AsyncExceptionToStatusInterceptor
from grpc_interceptor.exceptions import GrpcException
from grpc_status import rpc_status

from clinpred.pilots.common.errors import ClinpredError
from clinpred.services.common import metrics
from clinpred.services.common.access import AccessInterceptor
from clinpred.services.common.call_audit import AuditInterceptor
from clinpred.services.common.calls import call_outcome, deadline_of
from clinpred.services.common.settings import ServiceSettings
from clinpred.services.common.undecodable import tolerant

logger = logging.getLogger("clinpred.errors")

ERROR_DOMAIN = "clinpred.ai"
_REASONS = {
    "INVALID_ARGUMENT": "ERROR_REASON_INVALID_INPUT",
    "NOT_FOUND": "ERROR_REASON_NOT_FOUND",
    "FAILED_PRECONDITION": "ERROR_REASON_FAILED_PRECONDITION",
    "UNAVAILABLE": "ERROR_REASON_MODEL_UNAVAILABLE",
    "RESOURCE_EXHAUSTED": "ERROR_REASON_RESOURCE_EXHAUSTED",
    "UNAUTHENTICATED": "ERROR_REASON_UNAUTHENTICATED",
    "PERMISSION_DENIED": "ERROR_REASON_PERMISSION_DENIED",
    "DEADLINE_EXCEEDED": "ERROR_REASON_DEADLINE_EXCEEDED",
    "INTERNAL": "ERROR_REASON_INTERNAL",
}


def _packed(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


# The details travel base64-encoded in the grpc-status-details-bin trailer, and clients refuse
# trailers over 16 KiB by default: violations are listed up to this many serialized bytes (about
# 8 KiB once encoded), each field and description cut to a bounded length, and counted in ErrorInfo.
MAX_DETAIL_BYTES = 6000
MAX_FIELD_CHARS = 200
MAX_DESCRIPTION_CHARS = 300
MAX_MESSAGE_CHARS = 500


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown_violations(error: ClinpredError) -> list[error_details_pb2.BadRequest.FieldViolation]:
    shown: list[error_details_pb2.BadRequest.FieldViolation] = []
    size = 0
    for violation in error.violations:
        item = error_details_pb2.BadRequest.FieldViolation(
            field=_bounded(violation.field, MAX_FIELD_CHARS), description=_bounded(violation.description, MAX_DESCRIPTION_CHARS)
        )
        size += item.ByteSize() + 4
        if size > MAX_DETAIL_BYTES:
            break
        shown.append(item)
    return shown


def status_of(error: ClinpredError) -> status_pb2.Status:
    """The rich status for a domain error: BadRequest violations (bounded), ErrorInfo, and RetryInfo when
    the caller may retry after a known time (a rate limit)."""
    details = []
    # A domain error may name a more specific reason (an ErrorReason value) that clients act on.
    reason = getattr(error, "reason", None) or _REASONS.get(error.status, "ERROR_REASON_UNSPECIFIED")
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)
    if error.violations:
        shown = _shown_violations(error)
        details.append(_packed(error_details_pb2.BadRequest(field_violations=shown)))
        info.metadata["violations"] = str(len(error.violations))
        info.metadata["violations_shown"] = str(len(shown))
    missing = getattr(error, "missing_scopes", None)
    if missing:
        info.metadata["missing_scopes"] = " ".join(missing)
    details.append(_packed(info))
    retry_after = getattr(error, "retry_after_seconds", None)
    if isinstance(retry_after, (int, float)):
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(0, int(retry_after * 1e9)))
        details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    message = _bounded(error.message, MAX_MESSAGE_CHARS)
    return status_pb2.Status(code=getattr(code_pb2, error.status), message=message, details=details)


class ErrorStatusInterceptor(AsyncExceptionToStatusInterceptor):
    """Maps domain errors to their gRPC status; anything else to INTERNAL without echoing input."""

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        async def tolerant_continuation(details: Any) -> Any:
            handler = await continuation(details)
            if handler is None or handler.request_deserializer is None:
                return handler
            return handler._replace(request_deserializer=tolerant(handler.request_deserializer, details.method))

        return await super().intercept_service(tolerant_continuation, handler_call_details)

    async def handle_exception(
        self, ex: Exception, request_or_iterator: Any, context: grpc.aio.ServicerContext, method_name: str
    ) -> NoReturn:
        if isinstance(ex, ClinpredError):
            status = rpc_status.to_status(status_of(ex))
            await context.abort(status.code, status.details, status.trailing_metadata)
        if isinstance(ex, GrpcException):
            await context.abort(ex.status_code, ex.details)
        if isinstance(ex, (grpc.aio.AbortError, grpc.aio.UsageError)) or context.code() not in (None, grpc.StatusCode.OK):
            raise ex
        reference = uuid.uuid4().hex[:12]
        # The exception's message may quote request values, so only its type and frames are logged.
        frames = "".join(traceback.format_tb(ex.__traceback__))
        logger.error("internal error %s in %s: %s\n%s", reference, method_name, type(ex).__name__, frames)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error (reference {reference})")
        raise AssertionError("unreachable")  # context.abort always raises


class _CallRecord:
    """Counts and times one call once, at whichever of its endings is seen first."""

    def __init__(self, service: str, method_name: str, context: grpc.aio.ServicerContext) -> None:
        self.service = service
        self.method = method_name.rsplit("/", 1)[-1]
        self.start = time.perf_counter()
        self.deadline = deadline_of(context)
        self.recorded = False

    def finish(self, context: grpc.aio.ServicerContext, error: BaseException | None = None, abandoned: bool = False) -> None:
        """Records the status the caller gets: `abandoned` (or a CancelledError) when gRPC stopped the
        handler, which it does, by cancelling the handler's task, when the client cancels or its deadline passes."""
        if self.recorded:
            return
        self.recorded = True
        code = call_outcome(context, error, abandoned, self.deadline)
        metrics.observe_call(self.service, self.method, code, time.perf_counter() - self.start)


class MetricsInterceptor(AsyncServerInterceptor):
    """Counts calls by method and status code and times them."""

    def __init__(self, service: str) -> None:
        self.service = service

    @staticmethod
    async def _stream(
        responses: AsyncIterator[Any], context: grpc.aio.ServicerContext, record: _CallRecord
    ) -> AsyncIterator[Any]:
        try:
            async for response in responses:
                yield response
        except BaseException as error:
            record.finish(context, error)
            raise
        # A client that cancels while the server waits for its next message ends up here too: gRPC
        # asyncio ends the request stream as if the client had closed it (its _receive_message
        # merges the two), so the server finishes the call and it counts with that status.
        record.finish(context)

    async def intercept(
        self, method: Callable[..., Any], request_or_iterator: Any, context: grpc.aio.ServicerContext, method_name: str
    ) -> Any:
        record = _CallRecord(self.service, method_name, context)
        try:
            response_or_iterator = method(request_or_iterator, context)
            if hasattr(response_or_iterator, "__aiter__"):
                # A client that cancels while a response is being written stops gRPC's writer, not
                # the stream below, which stays paused at `yield` until it is closed some time later;
                # the call is over, though, and counted so, when gRPC runs its done callbacks.
                context.add_done_callback(lambda done: record.finish(done, abandoned=True))
                return self._stream(response_or_iterator, context, record)
            response = await response_or_iterator
        except BaseException as error:
            record.finish(context, error)
            raise
        record.finish(context)
        return response


def server_interceptors(
    service: str, settings: ServiceSettings | None = None
) -> list[tuple[type[grpc.aio.ServerInterceptor], dict[str, Any]]]:
    """Interceptor classes with their options, outermost first, for BentoML and the in-process server alike.

    Classes and options rather than factories: BentoML's add_grpc_interceptor
    takes (class, **options) and rejects a functools.partial. Access is inside error mapping, so
    its refusals reach the caller as their status like any domain error.
    """
    return [
        (MetricsInterceptor, {"service": service}),
        (ErrorStatusInterceptor, {}),
        (AuditInterceptor, {"service": service, "settings": settings}),
        (AccessInterceptor, {"service": service, "settings": settings}),
    ]
