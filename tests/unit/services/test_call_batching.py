"""The cross-call batcher: items of concurrent callers run together; one item's failure is its caller's alone.

The window here is long (half a second) so that which calls share a batch does not depend on the
machine's speed; nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from clinpred.services.common.batching import CallBatcher

WINDOW = 0.5


class Doubling:
    """Doubles numbers, a batch at a time; a batch holding a negative number raises as a whole."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return [2 * i for i in items]


async def test_an_idle_batcher_runs_a_call_at_once_and_alone() -> None:
    run = Doubling()
    batcher = CallBatcher("test", run, window_seconds=WINDOW, max_items=8)
    waiting = asyncio.ensure_future(batcher.submit(3))
    await asyncio.sleep(0)  # one loop turn, far less than the window: an idle batcher did not wait
    assert waiting.done() and waiting.result() == 6
    assert run.batches == [[3]]


async def test_calls_arriving_soon_after_a_batch_go_together_up_to_the_limit() -> None:
    run = Doubling()
    batcher = CallBatcher("test", run, window_seconds=WINDOW, max_items=4)
    assert await batcher.submit(1) == 2
    assert await asyncio.gather(*(batcher.submit(i) for i in range(2, 8))) == [4, 6, 8, 10, 12, 14]
    assert run.batches == [[1], [2, 3, 4, 5], [6, 7]]  # the fourth filled a batch, which went at once


async def test_a_failing_item_fails_its_caller_only() -> None:
    run = Doubling()
    batcher = CallBatcher("test", run, window_seconds=WINDOW, max_items=16)
    await batcher.submit(0)
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in (1, -1, 2)), return_exceptions=True)
    assert outcomes[0] == 2 and outcomes[2] == 4
    assert isinstance(outcomes[1], ValueError)
    assert run.batches == [[0], [1, -1, 2], [1], [-1], [2]]  # retried item by item


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    run = Doubling()
    batcher = CallBatcher("test", run, window_seconds=WINDOW, max_items=16)
    await batcher.submit(0)
    waiting = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2, 3)]
    await asyncio.sleep(0)
    waiting[1].cancel()
    assert await waiting[0] == 2 and await waiting[2] == 6
    assert waiting[1].cancelled()
    assert run.batches == [[0], [1, 3]]  # the caller that left before its batch started is not in it


async def test_a_window_of_zero_never_waits() -> None:
    run = Doubling()
    batcher = CallBatcher("test", run, window_seconds=0.0, max_items=16)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(3))) == [0, 2, 4]
    assert run.batches == [[0], [1], [2]]
