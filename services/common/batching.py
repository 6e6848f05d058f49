"""Cross-call batching: the items of concurrent calls, run together in one vectorised call.

Adaptive, never a fixed delay on an idle server:

- a call that arrives more than a window after the last batch ended finds the server idle and runs
  at once, alone, exactly as without batching (no timer, no thread hop);
- a call arriving within a window of the last batch's end is a sign of load: it waits at most
  `window` for companions (gRPC's asyncio server hands over one new call per event-loop turn, so the
  calls of a burst arrive spread over a few hundred microseconds), and the batch starts as soon as it
  holds `max_items`; calls arriving while a batch runs go next.

Batches run on the event loop, like the single-case path they replace: a thread of their own was
measured costing more CPU per call (hops, GIL hand-overs) than the batch saved. One call's failure fails
only that call: a batch that raises is run again item by item. A caller that cancels (or whose deadline
passes) only loses its answer; the batch it was in finishes for the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
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
        self._waiting: list[_Waiting[Item, Outcome]] = []
        self._running = False
        self._timer: asyncio.TimerHandle | None = None
        self._last_end = float("-inf")
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
        return self.window_seconds > 0 and time.perf_counter() - self._last_end < self.window_seconds

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
        self._run(loop, batch)

    def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Waiting[Item, Outcome]]) -> None:
        started = time.perf_counter()
        for waiting in batch:
            observe_stage(self.service, "queue", started - waiting.since)
        try:
            outcomes: list[Outcome | Exception] = self._run_isolated([w.item for w in batch])
        except Exception as error:  # a batch function that broke its own contract: every caller learns it
            outcomes = [error] * len(batch)
        finally:
            self._running = False
            self._last_end = time.perf_counter()
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
            # More waited than one batch holds: the rest go now, together.
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
