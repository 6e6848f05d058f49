"""One audit record per call, whatever its outcome, written before the caller gets the answer.

Inside the error interceptor, so the record is written before the status is sent (gRPC ends a
handler once it is) and records the status a domain error maps to. Health checks and reflection
(no patient, no model) are not recorded. The
record names the tenant and client, the service and method, the model, a keyed pseudonym of the
patient (never the identifier), a SHA-256 of the request bytes and the caller's x-request-id. A record
that cannot be written fails the call with UNAVAILABLE: nothing is answered unrecorded. Streams
are recorded when they end. A sealed call that opened is recorded as the call it carried: method
`/<service>/Sealed/<inner method>`, the inner outcome and the SHA-256 of the inner request's bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_interceptor import AsyncServerInterceptor

from clinpred.pilots.common.call import Call
from clinpred.pilots.common.errors import ClinpredError
from clinpred.services.common.audit import AuditEntry, AuditFileLog, AuditKeys, AuditSqlLog, AuditTrail, write_key_file
from clinpred.services.common.audit.errors import AuditUnavailable
from clinpred.services.common.audit.queued_trail import QueuedAuditTrail
from clinpred.services.common.authorization import OPEN_METHODS
from clinpred.services.common.calls import CallSlot, awaited_unless_stream, call_outcome, deadline_of, open_slot
from clinpred.services.common.settings import ServiceSettings

logger = logging.getLogger("clinpred.audit")

REQUEST_ID_KEY = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Tenant and client of a caller that was refused before it was identified.
UNIDENTIFIED = "-"


def _keys(settings: ServiceSettings) -> AuditKeys:
    if settings.audit_key_file is not None:
        return AuditKeys.from_file(settings.audit_key_file)
    if not settings.development_plaintext:
        raise ValueError("audit_key_file is required: `clinpred audit keygen FILE` makes one")
    key = settings.audit_dir / "audit.key"
    if not key.exists():
        settings.audit_dir.mkdir(parents=True, exist_ok=True)
        write_key_file(key)
    return AuditKeys.from_file(key)


def open_trail(settings: ServiceSettings) -> tuple[AuditTrail, AuditKeys]:
    keys = _keys(settings)
    if settings.audit_database_url:
        return AuditSqlLog(settings.audit_database_url, keys), keys
    return AuditFileLog(settings.audit_dir, keys), keys


def _request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and _REQUEST_ID.fullmatch(value):
            return value
    # Absent, or not an id this trail may store verbatim (it could carry anything).
    return ""


class _Digest:
    """SHA-256 over the serialized messages of a call's request, in order."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def add(self, message: Any) -> None:
        serialize = getattr(message, "SerializeToString", None)
        raw = getattr(message, "raw", None)  # a message whose bytes did not parse keeps them
        if isinstance(raw, bytes):
            self.hash.update(raw)
        elif serialize is not None:
            self.hash.update(serialize(deterministic=True))

    async def through(self, messages: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for message in messages:
            self.add(message)
            yield message


class AuditInterceptor(AsyncServerInterceptor):
    def __init__(self, service: str, settings: ServiceSettings | None = None) -> None:
        self.service = service
        self.settings = settings or ServiceSettings(model_name="", model_version="", development_plaintext=True)
        self._opened_trail: tuple[QueuedAuditTrail, AuditKeys] | None = None
        # Opened on first use, in the process that serves (each BentoML API worker forks its own writer).
        self._opening = asyncio.Lock()

    async def _opened(self) -> tuple[QueuedAuditTrail, AuditKeys]:
        if self._opened_trail is not None:
            return self._opened_trail
        async with self._opening:
            if self._opened_trail is None:
                trail, keys = await asyncio.to_thread(open_trail, self.settings)
                self._opened_trail = QueuedAuditTrail(trail), keys
            return self._opened_trail

    def _entry(
        self, keys: AuditKeys, slot: CallSlot, method_name: str, outcome: str, digest: _Digest, request_id: str
    ) -> AuditEntry:
        call: Call | None = slot.call
        tenant, client = (call.tenant, call.client) if call else (UNIDENTIFIED, UNIDENTIFIED)
        request_digest = digest.hash.hexdigest()
        if slot.sealed is not None and outcome == "OK":
            # A sealed call that was opened is recorded as its inner call, named ".../Sealed/<Method>".
            method_name, outcome, request_digest = slot.sealed.method, slot.sealed.outcome, slot.sealed.request_digest
        patient = keys.pseudonym(call.tenant, call.patient_ids[0]) if call and call.patient_ids else ""
        models = ",".join(f"{m.name}:{m.version}" for m in call.models) if call else ""
        return AuditEntry(
            tenant=tenant,
            client=client,
            service=self.service,
            method=method_name,
            outcome=outcome,
            model=models,
            patient_pseudonym=patient,
            request_digest=request_digest,
            request_id=request_id,
        )

    async def _record(self, entry_of: Callable[[AuditKeys], AuditEntry]) -> None:
        try:
            trail, keys = await self._opened()
            await trail.append(entry_of(keys))
        except (AuditUnavailable, OSError, ValueError) as error:
            logger.error("audit record not written (%s); the call is refused", type(error).__name__)
            raise AuditUnavailable("the audit trail is unavailable; nothing was answered unrecorded") from None

    async def intercept(
        self, method: Callable[..., Any], request_or_iterator: Any, context: grpc.aio.ServicerContext, method_name: str
    ) -> Any:
        if method_name in OPEN_METHODS:
            # Health checks and reflection touch no patient and no model; probes make thousands a day.
            return await awaited_unless_stream(method(request_or_iterator, context))
        slot = open_slot()
        deadline = deadline_of(context)
        digest = _Digest()
        request_id = _request_id(context)

        def entry_of(outcome: str) -> Callable[[AuditKeys], AuditEntry]:
            return lambda keys: self._entry(keys, slot, method_name, outcome, digest, request_id)

        if hasattr(request_or_iterator, "__aiter__"):
            request_or_iterator = digest.through(request_or_iterator)
        else:
            digest.add(request_or_iterator)
        try:
            response_or_iterator = await awaited_unless_stream(method(request_or_iterator, context))
        except BaseException as error:
            await _shielded(self._record(entry_of(_outcome(context, error, deadline))))
            raise
        if hasattr(response_or_iterator, "__aiter__"):
            return self._stream(response_or_iterator, context, entry_of, deadline)
        await self._record(entry_of("OK"))
        return response_or_iterator

    async def _stream(
        self,
        responses: AsyncIterator[Any],
        context: grpc.aio.ServicerContext,
        entry_of: Callable[[str], Callable[[AuditKeys], AuditEntry]],
        deadline: float | None,
    ) -> AsyncIterator[Any]:
        try:
            async for response in responses:
                yield response
        except BaseException as error:
            await _shielded(self._record(entry_of(_outcome(context, error, deadline))))
            raise
        # A client that stops sending at its deadline can end the request stream as if it closed it.
        await self._record(entry_of(call_outcome(context, deadline=deadline)))



def _outcome(context: grpc.aio.ServicerContext, error: BaseException, deadline: float | None) -> str:
    """The status the error interceptor (outside) will answer with: a domain error's own, INTERNAL for
    anything unexpected, CANCELLED or DEADLINE_EXCEEDED when gRPC stopped the call."""
    if isinstance(error, ClinpredError):
        return error.status
    if isinstance(error, (asyncio.CancelledError, GeneratorExit, grpc.aio.AbortError)):
        return call_outcome(context, error, deadline=deadline)
    return "INTERNAL"


async def _shielded(recording: Awaitable[None]) -> None:
    """Writes the record even when the call's task is being cancelled (the caller left): the record
    is finished in the background and the cancellation goes on."""
    await asyncio.shield(recording)
