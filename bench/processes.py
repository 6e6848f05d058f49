"""Servers started by the benchmark: free loopback ports, start, wait, stop by PID.

Every server is started in its own session; stopping sends SIGTERM to the
process we started, waits, and then kills only the descendants of that
process (found by PID, never by name) that are still alive.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

LOOPBACK = "127.0.0.1"


def without_tenant_limits(env: dict[str, str], service: str) -> dict[str, str]:
    """`env` with the service's per-tenant limits lifted: the load generator is one tenant sending what
    many hospitals would, and the benchmark measures the server, not that tenant's quota."""
    prefix = f"CLINPRED_{service.upper()}_"
    unlimited = str(10**9)
    return env | {
        f"{prefix}RATE_PER_SECOND": unlimited,
        f"{prefix}RATE_BURST": unlimited,
        f"{prefix}MAX_CALLS_IN_PROGRESS_PER_TENANT": unlimited,
        f"{prefix}MAX_STREAMS_PER_TENANT": unlimited,
    }


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Distinct ports that were free on `host` a moment ago (bound and released together)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class ManagedServer:
    """One server process we started; a context manager that always stops it."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        finally:
            log.close()

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `ready` until it is true; fail early if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited before {what}; log {self.log_path}:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.5)
        raise TimeoutError(f"{self.name}: no {what} within {timeout:.0f} s; log {self.log_path}:\n{self.log_tail()}")

    def stop(self, grace: float = 30.0) -> None:
        if self.process is None:
            return
        try:
            descendants = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            descendants = []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        # Whatever the process left behind (it should have stopped its children itself).
        _, alive = psutil.wait_procs(descendants, timeout=5)
        for child in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                os.kill(child.pid, signal.SIGKILL)

    def __enter__(self) -> ManagedServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
