"""The one file watcher behind policies, revocation lists and key sets."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from clinpred.services.common.watched_file import WatchedFile

logger = logging.getLogger("clinpred.test.watched")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def number(data: bytes) -> int:
    return int(data.decode())  # ValueError for anything but an integer


def watched(path: Path, clock: Clock) -> WatchedFile[int]:
    return WatchedFile(path, number, what="test number", logger=logger, check_interval_seconds=1.0, clock=clock)


def test_a_change_is_read_only_after_the_interval(tmp_path: Path) -> None:
    path, clock = tmp_path / "n", Clock()
    path.write_text("1")
    file = watched(path, clock)
    path.write_text("22")
    assert file.current() == 1
    clock.now = 1.0
    assert file.current() == 22


def test_an_atomic_replace_of_the_same_size_and_time_is_seen(tmp_path: Path) -> None:
    path, clock = tmp_path / "n", Clock()
    path.write_text("1")
    file = watched(path, clock)
    replacement = tmp_path / "n.new"
    replacement.write_text("2")
    stat = os.stat(path)
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, path)
    clock.now = 1.0
    assert file.current() == 2


def test_a_broken_or_missing_version_keeps_the_last_good_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, clock = tmp_path / "n", Clock()
    path.write_text("1")
    file = watched(path, clock)
    path.write_text("not a number")
    with caplog.at_level(logging.INFO, logger=logger.name):
        for second in (1.0, 2.0, 3.0):
            clock.now = second
            assert file.current() == 1
    assert file.last_error is not None and "invalid literal" in file.last_error
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    path.unlink()
    clock.now = 4.0
    assert file.current() == 1 and file.last_error is not None and "cannot be read" in file.last_error
    path.write_text("3")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=logger.name):
        clock.now = 5.0
        assert file.current() == 3
    assert file.last_error is None
    assert [r.getMessage() for r in caplog.records] == [f"test number {path} reloaded"]


def test_a_file_that_cannot_be_used_at_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        watched(tmp_path / "missing", Clock())
    (tmp_path / "bad").write_text("x")
    with pytest.raises(ValueError):
        watched(tmp_path / "bad", Clock())
