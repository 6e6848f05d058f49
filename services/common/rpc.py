"""The one way every RPC goes: codec.decode -> handler -> codec.encode, timed per stage.

Servicer methods are a call to one of these, so that stage timing and off-loop
execution are decided here once, not in each servicer:

- `decode` and `encode` are the codec's (stateless, cheap) and run on the event loop,
  timed as the stages "decode" and "encode";
- the handler gets the decoded request and the call (`pilots.common.call.Call`: tenant, deadline,
  what the audit trail notes) and calls the pilot; its own stages (predict, explain, score, ...) are timed
  inside it. Blocking handlers (model, store, homomorphic arithmetic) run in a worker
  thread so the event loop keeps serving other calls;
- for streams, a timer never stays open across a `yield` (the caller's pace is not a stage).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TypeVar

from clinpred.pilots.common.call import Call
from clinpred.services.common.batching import CallBatcher
from clinpred.services.common.calls import current_call
from clinpred.services.common.metrics import stage

Request = TypeVar("Request")
Decoded = TypeVar("Decoded")
Received = TypeVar("Received")
Result = TypeVar("Result")
Response = TypeVar("Response")

# A handler runs in a worker thread when this says so: always, never, or by its decoded input
# (a batch of 100 cases yes, one case no: a thread hop costs more than a single prediction).
Blocking = bool | Callable[[Decoded], bool]
Handler = Callable[[Decoded, Call], Result]


class Rpc:
    """Runs the RPCs of one service (its name labels the stage metrics)."""

    def __init__(self, service: str) -> None:
        self.service = service

    def _decode(self, decode: Callable[[Request], Decoded], request: Request) -> Decoded:
        with stage(self.service, "decode"):
            return decode(request)

    def _encode(self, encode: Callable[[Result], Response], result: Result) -> Response:
        with stage(self.service, "encode"):
            return encode(result)

    @staticmethod
    async def _handle(handle: Handler[Decoded, Result], decoded: Decoded, blocking: Blocking[Decoded]) -> Result:
        call = current_call()
        off_loop = blocking(decoded) if callable(blocking) else blocking
        return await asyncio.to_thread(handle, decoded, call) if off_loop else handle(decoded, call)

    async def unary(
        self,
        request: Request,
        decode: Callable[[Request], Decoded],
        handle: Handler[Decoded, Result],
        encode: Callable[[Result], Response],
        *,
        blocking: Blocking[Decoded] = True,
    ) -> Response:
        """One request, one response."""
        decoded = self._decode(decode, request)
        result = await self._handle(handle, decoded, blocking)
        return self._encode(encode, result)

    async def unary_batched(
        self,
        request: Request,
        decode: Callable[[Request], Decoded],
        batcher: CallBatcher[tuple[Decoded, Call], Result],
        encode: Callable[[Result], Response],
    ) -> Response:
        """One request, one response, handled in a batch with concurrent calls' (`services.common.batching`).

        Decoding and encoding stay per call, so one call's bad input fails it alone before any batch."""
        decoded = self._decode(decode, request)
        result = await batcher.submit((decoded, current_call()))
        return self._encode(encode, result)

    async def each(
        self,
        requests: AsyncIterator[Request],
        decode: Callable[[Request, int], Decoded],
        handle: Handler[Decoded, Result],
        encode: Callable[[Result], Response],
        *,
        blocking: Blocking[Decoded] = False,
    ) -> AsyncIterator[Response]:
        """A bidirectional stream answering each message in turn; `decode` gets the message's index."""
        index = 0
        async for request in requests:
            with stage(self.service, "decode"):
                decoded = decode(request, index)
            result = await self._handle(handle, decoded, blocking)
            response = self._encode(encode, result)
            yield response
            index += 1

    async def server_stream(
        self,
        request: Request,
        decode: Callable[[Request], Decoded],
        handle: Handler[Decoded, AsyncIterator[Result]],
        encode: Callable[[Result], Response],
    ) -> AsyncIterator[Response]:
        """One request, a stream of answers as the (asynchronous) handler produces them."""
        decoded = self._decode(decode, request)
        async for result in handle(decoded, current_call()):
            response = self._encode(encode, result)
            yield response

    async def client_stream(
        self,
        requests: AsyncIterator[Request],
        receive: Callable[[AsyncIterator[Request]], Awaitable[Received]],
        decode: Callable[[Received], Decoded],
        handle: Handler[Decoded, Result],
        encode: Callable[[Result], Response],
        *,
        blocking: Blocking[Decoded] = True,
    ) -> Response:
        """A stream of messages (an upload), one answer.

        `receive` gathers the messages (untimed: it waits on the network, and enforces size
        limits as they arrive); `decode` checks what was received.
        """
        received = await receive(requests)
        decoded = self._decode(decode, received)
        result = await self._handle(handle, decoded, blocking)
        return self._encode(encode, result)

    async def client_to_server_stream(
        self,
        requests: AsyncIterator[Request],
        receive: Callable[[AsyncIterator[Request]], Awaitable[Received]],
        decode: Callable[[Received], Decoded],
        handle: Handler[Decoded, Result],
        encode: Callable[[Result], Iterable[Response]],
        *,
        blocking: Blocking[Decoded] = True,
    ) -> AsyncIterator[Response]:
        """A stream of messages in, one result out in several messages (large ciphertexts in chunks)."""
        received = await receive(requests)
        decoded = self._decode(decode, received)
        result = await self._handle(handle, decoded, blocking)
        with stage(self.service, "encode"):
            responses = list(encode(result))
        for response in responses:
            yield response
