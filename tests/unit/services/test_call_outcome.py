"""Which status a call is counted and audited with when gRPC stopped its handler."""

from __future__ import annotations

import asyncio
import time

import grpc

from clinpred.services.common.calls import DEADLINE_SLACK_SECONDS, call_outcome


class StoppedContext:
    """The two things `call_outcome` reads from a servicer context whose handler gRPC cancelled."""

    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining

    def code(self) -> None:
        return None

    def time_remaining(self) -> float | None:
        return self.remaining


def test_a_cancel_just_before_the_deadline_is_the_deadline() -> None:
    # The client's deadline ran out first: its cancel reached the server with a few ms of the server's copy left.
    context = StoppedContext(remaining=DEADLINE_SLACK_SECONDS / 10)
    assert call_outcome(context, asyncio.CancelledError()) == "DEADLINE_EXCEEDED"  # type: ignore[arg-type]
    started = StoppedContext(remaining=None)
    deadline = time.monotonic() + DEADLINE_SLACK_SECONDS / 10
    assert call_outcome(started, abandoned=True, deadline=deadline) == "DEADLINE_EXCEEDED"  # type: ignore[arg-type]


def test_a_cancel_well_before_the_deadline_or_without_one_is_a_cancel() -> None:
    assert call_outcome(StoppedContext(remaining=5.0), asyncio.CancelledError()) == "CANCELLED"  # type: ignore[arg-type]
    assert call_outcome(StoppedContext(remaining=None), abandoned=True) == "CANCELLED"  # type: ignore[arg-type]
    later = time.monotonic() + 10 * DEADLINE_SLACK_SECONDS
    assert call_outcome(StoppedContext(remaining=None), abandoned=True, deadline=later) == "CANCELLED"  # type: ignore[arg-type]


def test_a_returned_call_is_ok_and_an_escaped_exception_unknown() -> None:
    assert call_outcome(StoppedContext(remaining=5.0)) == grpc.StatusCode.OK.name  # type: ignore[arg-type]
    assert call_outcome(StoppedContext(remaining=5.0), ValueError()) == grpc.StatusCode.UNKNOWN.name  # type: ignore[arg-type]
