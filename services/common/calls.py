"""The domain `Call` of the RPC being served, made once per call by the access interceptor.

Held in a context variable: the interceptor sets it before the servicer runs and `Rpc` hands it
to the handler; asyncio.to_thread copies the context, so handlers in worker threads see the same
object (and what they note on it reaches the audit record).
"""

from __future__ import annotations

import time
from contextvars import ContextVar

import grpc

from clinpred.pilots.common.call import Call

_CURRENT: ContextVar[Call] = ContextVar("clinpred_call")


def start_call(context: grpc.aio.ServicerContext, tenant: str, client: str) -> Call:
    """A Call whose deadline is the caller's and which ends when gRPC ends the RPC (done, cancelled, expired)."""
    remaining = context.time_remaining()
    deadline = time.monotonic() + remaining if remaining is not None else None
    call = Call(tenant=tenant, client=client, deadline=deadline)
    # Worker threads read the Event, never the gRPC context, which belongs to the event loop.
    context.add_done_callback(lambda _done: call.ended.set())
    _CURRENT.set(call)
    return call


def current_call() -> Call:
    try:
        return _CURRENT.get()
    except LookupError:
        raise RuntimeError("no call: the access interceptor sets one before every RPC") from None
