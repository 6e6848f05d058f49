"""The domain `Call` of the RPC being served, made once per call by the access interceptor.

Held in a context variable: the interceptor sets it before the servicer runs and `Rpc` hands it
to the handler; asyncio.to_thread copies the context, so handlers in worker threads see the same
object (and what they note on it reaches the audit record).
"""

from __future__ import annotations

import asyncio
import threading
import time
from contextvars import ContextVar
from typing import Any

import grpc

from clinpred.pilots.common.call import Call
from clinpred.pilots.common.cancellation import Deadline

_CURRENT: ContextVar[Call] = ContextVar("clinpred_call")
_SLOT: ContextVar[CallSlot] = ContextVar("clinpred_call_slot")


class CallSlot:
    """Where an outer interceptor (the audit trail's) finds the call an inner one started, if any."""

    def __init__(self) -> None:
        self.call: Call | None = None


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


def current_call() -> Call:
    try:
        return _CURRENT.get()
    except LookupError:
        raise RuntimeError("no call: the access interceptor sets one before every RPC") from None


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
    if (remaining is not None and remaining <= 0) or (deadline is not None and time.monotonic() >= deadline):
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
