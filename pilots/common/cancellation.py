"""Cooperative stopping of long domain work: the caller's deadline passed or it went away.

Domain loops (VCF lines, ciphertexts, batches) call `check()` every few
hundred items; the transport decides when to stop (a gRPC deadline, a
cancelled call) and hands a `Deadline` in. The domain never learns why.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from clinpred.pilots.common.errors import DeadlineExceeded


class Deadline:
    """Passed when `expires_at` (a `time.monotonic()` instant) is reached or `should_stop()` says so."""

    def __init__(self, expires_at: float | None = None, should_stop: Callable[[], bool] | None = None) -> None:
        self.expires_at = expires_at
        self.should_stop = should_stop

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(expires_at=time.monotonic() + seconds)

    def passed(self) -> bool:
        if self.expires_at is not None and time.monotonic() >= self.expires_at:
            return True
        return self.should_stop is not None and self.should_stop()

    def check(self) -> None:
        """Raises DeadlineExceeded once the deadline has passed, so the work stops where it is."""
        if self.passed():
            raise DeadlineExceeded("the call's deadline passed before the work was done; the work was stopped")


def check_deadline(deadline: Deadline | None) -> None:
    """`deadline.check()` when there is one: domain functions take `deadline: Deadline | None = None`."""
    if deadline is not None:
        deadline.check()
