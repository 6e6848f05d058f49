"""The cross-call batcher: items of concurrent callers run together; one item's failure is its caller's alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from clinpred.services.common.batching import CallBatcher


class Doubling:
    """Doubles numbers, a batch at a time; a batch holding a negative number raises as a whole."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.release.wait(5)
        self.batches.append(list(items))
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return [2 * i for i in items]


async def test_an_idle_batcher_runs_a_call_at_once_and_alone() -> None:
    run = Doubling()
    batcher = CallBatcher("test", run, window_seconds=0.05, max_items=8)
    assert await batcher.submit(3) == 6
    assert run.batches == [[3]]
    batcher.close()


async def test_calls_arriving_during_a_batch_go_together_next() -> None:
    run = Doubling()
    run.release.clear()
    batcher = CallBatcher("test", run, window_seconds=0.0005, max_items=4)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.01)  # the first batch is running (held in the batch thread)
    rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(2, 8)]
    await asyncio.sleep(0.01)
    run.release.set()
    assert await first == 2
    assert await asyncio.gather(*rest) == [4, 6, 8, 10, 12, 14]
    assert run.batches[0] == [1]
    assert sorted(len(b) for b in run.batches[1:]) == [2, 4]  # at most max_items per batch
    batcher.close()


async def test_a_failing_item_fails_its_caller_only() -> None:
    run = Doubling()
    run.release.clear()
    batcher = CallBatcher("test", run, window_seconds=0.001, max_items=16)
    blocker = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.01)
    outcomes = [asyncio.ensure_future(batcher.submit(i)) for i in (1, -1, 2)]
    await asyncio.sleep(0.01)
    run.release.set()
    assert await blocker == 0
    assert await outcomes[0] == 2
    with pytest.raises(ValueError, match="negative"):
        await outcomes[1]
    assert await outcomes[2] == 4
    assert [1, -1, 2] in run.batches and [1] in run.batches and [2] in run.batches  # retried item by item
    batcher.close()


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    run = Doubling()
    run.release.clear()
    batcher = CallBatcher("test", run, window_seconds=0.001, max_items=16)
    blocker = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.01)
    waiting = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2, 3)]
    await asyncio.sleep(0.01)
    waiting[1].cancel()
    run.release.set()
    assert await blocker == 0
    assert await waiting[0] == 2 and await waiting[2] == 6
    assert waiting[1].cancelled()
    assert [1, 3] in run.batches  # the caller that left before its batch started is not in it
    batcher.close()
