"""The domain `Call` of the RPC being served, made once per call by the access interceptor.

Held in a context variable: the interceptor sets it before the servicer runs and `Rpc` hands it
to the handler; asyncio.to_thread copies the context, so handlers in worker threads see the same
object (and what they note on it reaches the audit record).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from clinpred.pilots.common.call import Call
from clinpred.pilots.common.cancellation import Deadline

_CURRENT: ContextVar[Call] = ContextVar("clinpred_call")
_SLOT: ContextVar[CallSlot] = ContextVar("clinpred_call_slot")
# Authorizes another method for the caller the access interceptor admitted (a sealed call's inner method).
_GATE: ContextVar[Callable[[str], None]] = ContextVar("clinpred_method_gate")


@dataclass(frozen=True)
class SealedInner:
    """What a sealed call carried, for its audit record: the inner method, its outcome and request digest."""

    method: str
    outcome: str
    request_digest: str


class CallSlot:
    """Where an outer interceptor (the audit trail's) finds the call an inner one started, if any."""

    def __init__(self) -> None:
        self.call: Call | None = None
        self.sealed: SealedInner | None = None


def open_slot() -> CallSlot:
    slot = CallSlot()
    _SLOT.set(slot)
    return slot


def start_call(context: grpc.aio.ServicerContext, tenant: str, client: str) -> Call:
    """A Call whose deadline is the caller's and which ends when gRPC ends the RPC (done, cancelled, expired)."""
    # Worker threads read the Event, never the gRPC context, which belongs to the event loop.
    ended = threading.Event()
    context.add_done_callback(lambda _done: ended.set())
    call = Call(tenant=tenant, client=client, deadline=Deadline(deadline_of(context), should_stop=ended.is_set))
    _CURRENT.set(call)
    slot = _SLOT.get(None)
    if slot is not None:
        slot.call = call
    return call


def note_sealed(inner: SealedInner) -> None:
    """Tells the audit trail which method a sealed call carried and how it ended."""
    slot = _SLOT.get(None)
    if slot is not None:
        slot.sealed = inner


def admit_methods(gate: Callable[[str], None]) -> None:
    """Set by the access interceptor once the caller is admitted: raises unless it may call a method."""
    _GATE.set(gate)


def authorize_method(method: str) -> None:
    """Raises PermissionDenied unless the admitted caller may call `method`, exactly as if it had called it."""
    try:
        gate = _GATE.get()
    except LookupError:
        raise RuntimeError("no admitted caller: the access interceptor admits one before every RPC") from None
    gate(method)


def current_call() -> Call:
    try:
        return _CURRENT.get()
    except LookupError:
        raise RuntimeError("no call: the access interceptor sets one before every RPC") from None


DEADLINE_SLACK_SECONDS = 0.25
"""How close to its deadline a cancelled call counts as having run out of time, not as cancelled:
more than a request's transit time on a loaded node, far less than any deadline a caller sets."""


def deadline_of(context: grpc.aio.ServicerContext) -> float | None:
    """The call's deadline on time.monotonic()'s clock, read at its start (None: the caller set none)."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def call_outcome(
    context: grpc.aio.ServicerContext,
    error: BaseException | None = None,
    abandoned: bool = False,
    deadline: float | None = None,
) -> str:
    """The status name the caller gets: `abandoned` (or a CancelledError) when gRPC stopped the handler,
    which it does, by cancelling the handler's task, when the client cancels or its deadline passes.

    `deadline` (from `deadline_of` at the call's start) decides DEADLINE_EXCEEDED even when the
    context no longer reports the time left, as on a loaded machine once the call has ended."""
    code = context.code()
    remaining = context.time_remaining()
    # A client whose deadline passes cancels the call, and that cancel can arrive a little before the
    # server's own copy of the deadline (which started when the headers arrived) runs out.
    if (remaining is not None and remaining <= DEADLINE_SLACK_SECONDS) or (
        deadline is not None and time.monotonic() >= deadline - DEADLINE_SLACK_SECONDS
    ):
        return grpc.StatusCode.DEADLINE_EXCEEDED.name
    if abandoned or isinstance(error, (asyncio.CancelledError, GeneratorExit)):
        return grpc.StatusCode.CANCELLED.name
    if not isinstance(code, grpc.StatusCode):
        # Not aborted: a return is OK, and gRPC answers any other exception with UNKNOWN.
        return grpc.StatusCode.OK.name if error is None else grpc.StatusCode.UNKNOWN.name
    return code.name


async def awaited_unless_stream(response_or_iterator: Any) -> Any:
    """What an interceptor hands on: a unary handler's awaited response, or a stream's iterator as is."""
    if hasattr(response_or_iterator, "__aiter__"):
        return response_or_iterator
    return await response_or_iterator
