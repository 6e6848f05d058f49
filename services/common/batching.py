"""Cross-call batching: the items of concurrent calls, run together in one vectorised call.

Adaptive, never a fixed delay on an idle server:

- a call that finds no batch running starts one at once, alone (an idle server answers as fast as
  without batching, plus one hop to the batch thread);
- calls arriving while a batch runs wait for it and then go together as the next batch, up to
  `max_items`: the busier the server, the larger the batches, with no timer involved;
- `window` adds a bounded wait only under load: when the last batch held several calls and ended
  less than a window ago, the next one waits at most `window` for companions (gRPC's asyncio server
  hands over one new call per event-loop turn, so calls of a burst arrive spread over a few hundred
  microseconds), and starts as soon as it is full.

Batches run one at a time in one thread of their own, so the event loop keeps decoding, encoding
and answering other calls meanwhile. One call's failure fails only that call: a batch that raises
is run again item by item. A caller that cancels (or whose deadline passes) only loses its answer;
the batch it was in finishes for the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from clinpred.services.common.metrics import observe_stage

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

# What a batch function returns per item: its outcome, or the exception that item alone fails with.
BatchRun = Callable[[Sequence[Item]], Sequence["Outcome | Exception"]]


@dataclass
class _Waiting(Generic[Item, Outcome]):
    item: Item
    future: asyncio.Future[Outcome]
    since: float


class CallBatcher(Generic[Item, Outcome]):
    """Joins the items of concurrent calls into runs of `run_batch`; one per service and loop."""

    def __init__(self, service: str, run_batch: BatchRun[Item, Outcome], *, window_seconds: float, max_items: int) -> None:
        if window_seconds < 0 or max_items < 1:
            raise ValueError("the window must be >= 0 and a batch must hold at least one item")
        self.service = service
        self.run_batch = run_batch
        self.window_seconds = window_seconds
        self.max_items = max_items
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"clinpred-{service}-batch")
        self._waiting: list[_Waiting[Item, Outcome]] = []
        self._running = False
        self._timer: asyncio.TimerHandle | None = None
        self._last_size = 0
        self._last_end = 0.0
        # Totals since start (for tests and diagnostics): calls answered, and the batches they went in.
        self.calls_run = 0
        self.batches_run = 0

    async def submit(self, item: Item) -> Outcome:
        """The outcome of `item`, run in a batch with those of other calls (raises what it alone raised)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._waiting.append(_Waiting(item, future, time.perf_counter()))
        if not self._running:
            if len(self._waiting) >= self.max_items:
                self._start(loop)
            elif self._timer is None:
                if self._under_load():
                    self._timer = loop.call_later(self.window_seconds, self._start, loop)
                else:
                    self._start(loop)
        return await future

    def _under_load(self) -> bool:
        return self.window_seconds > 0 and self._last_size > 1 and time.perf_counter() - self._last_end < self.window_seconds

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # Callers that gave up before their batch started are left out of it.
        self._waiting = [w for w in self._waiting if not w.future.done()]
        if self._running or not self._waiting:
            return
        batch, self._waiting = self._waiting[: self.max_items], self._waiting[self.max_items :]
        self._running = True
        loop.create_task(self._run(loop, batch))

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Waiting[Item, Outcome]]) -> None:
        started = time.perf_counter()
        for waiting in batch:
            observe_stage(self.service, "queue", started - waiting.since)
        try:
            outcomes = await loop.run_in_executor(self._executor, self._run_isolated, [w.item for w in batch])
        except BaseException as error:  # the batch thread itself failed (shutdown): every caller learns it
            outcomes = [error if isinstance(error, Exception) else RuntimeError("batch interrupted")] * len(batch)
        finally:
            self._running = False
            self._last_size, self._last_end = len(batch), time.perf_counter()
            self.calls_run += len(batch)
            self.batches_run += 1
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if waiting.future.done():
                continue  # cancelled meanwhile
            if isinstance(outcome, Exception):
                waiting.future.set_exception(outcome)
            else:
                waiting.future.set_result(outcome)
        if self._waiting and self._timer is None:
            # These waited for the batch that just ended: they go now, together.
            self._start(loop)

    def _run_isolated(self, items: list[Item]) -> list[Outcome | Exception]:
        try:
            outcomes = list(self.run_batch(items))
        except Exception as error:
            if len(items) == 1:
                return [error]
            # Something in the batch broke it as a whole: each item alone finds out which.
            return [outcome for item in items for outcome in self._run_isolated([item])]
        if len(outcomes) != len(items):
            raise RuntimeError(f"a batch of {len(items)} items gave {len(outcomes)} outcomes")
        return outcomes

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
