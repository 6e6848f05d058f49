"""Deadline: passes at its instant or when its callback says so; check() raises the domain's DeadlineExceeded."""

from __future__ import annotations

import time

import pytest

from clinpred.pilots.common.cancellation import Deadline, check_deadline
from clinpred.pilots.common.errors import DeadlineExceeded


def test_a_deadline_passes_at_its_instant() -> None:
    assert Deadline.after(-1.0).passed()
    assert not Deadline.after(3600.0).passed()
    assert not Deadline().passed()
    assert Deadline(expires_at=time.monotonic() - 1).passed()


def test_a_deadline_passes_when_its_callback_says_so() -> None:
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= 3

    deadline = Deadline(should_stop=should_stop)
    deadline.check()
    deadline.check()
    with pytest.raises(DeadlineExceeded) as caught:
        deadline.check()
    assert caught.value.status == "DEADLINE_EXCEEDED"
    assert len(calls) == 3


def test_check_deadline_accepts_none() -> None:
    check_deadline(None)
    with pytest.raises(DeadlineExceeded):
        check_deadline(Deadline.after(-1.0))
