"""End-to-end tier: real `clinpred serve` -> `bentoml serve-grpc` processes on free ports."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from clinpred.services.common.channel import ClientTls
from tests.conftest import REPO
from tests.support import free_port, https_get


@dataclass
class RunningServe:
    process: subprocess.Popen[str]
    port: int
    metrics_port: int
    state_dir: str = ""
    output: list[str] = field(default_factory=list)
    # The client side of the TLS folder it serves (None: --insecure-development).
    tls: ClientTls | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment `clinpred serve` ran in, for `clinpred` commands that find its state dir."""
        return dict(os.environ, CLINPRED_STATE_DIR=self.state_dir)

    def printed_command(self) -> list[str]:
        """The banner's `try:` command, split as a shell would."""
        suggested = next(line.split("try:", 1)[1].strip() for line in self.output if "try:" in line)
        words = shlex.split(suggested)
        assert words[0] == "clinpred"
        return [str(Path(sys.executable).with_name("clinpred")), *words[1:]]


def _pump(process: subprocess.Popen[str], sink: list[str], ready: threading.Event) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        sink.append(line)
        if "clinpred is serving" in line:
            ready.set()
    ready.set()


def start_clinpred_serve(
    service: str,
    state_dir: Path,
    api_workers: int,
    timeout: float = 240.0,
    extra: tuple[str, ...] = (),
    env_extra: dict[str, str] | None = None,
    port: int | None = None,
    metrics_port: int | None = None,
) -> RunningServe:
    port, metrics_port = port or free_port(), metrics_port or free_port()
    env = dict(os.environ, CLINPRED_STATE_DIR=str(state_dir), PYTHONUNBUFFERED="1", **(env_extra or {}))
    env.pop("BENTOML_HOME", None)  # `clinpred serve` gives each service its own home under the state dir
    command = [
        str(Path(sys.executable).with_name("clinpred")),
        "serve",
        service,
        "--port",
        str(port),
        "--metrics-port",
        str(metrics_port),
        "--api-workers",
        str(api_workers),
        *extra,
    ]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    running = RunningServe(process, port, metrics_port, state_dir=str(state_dir), tls=_served_tls(state_dir, extra))
    ready = threading.Event()
    threading.Thread(target=_pump, args=(process, running.output, ready), daemon=True).start()
    if not ready.wait(timeout) or process.poll() is not None:
        stop(running)
        pytest.fail("clinpred serve did not start:\n" + "".join(running.output[-60:]))
    return running


def buf_tls_flags(running: RunningServe) -> list[str]:
    """`buf curl`'s options for calling `running` with its client certificate (URLs then start https://)."""
    assert running.tls is not None and running.tls.cert is not None and running.tls.key is not None
    return ["--cacert", str(running.tls.ca), "--cert", str(running.tls.cert), "--key", str(running.tls.key)]


def _served_tls(state_dir: Path, extra: tuple[str, ...]) -> ClientTls | None:
    if "--insecure-development" in extra:
        return None
    if "--tls-dir" in extra:
        return ClientTls.from_folder(extra[extra.index("--tls-dir") + 1])
    return ClientTls.from_folder(state_dir / "tls")  # the default folder `clinpred serve` makes


def kill(running: RunningServe) -> None:
    """SIGKILL to clinpred serve and every server process under it: nothing gets to flush or clean up."""
    os.killpg(running.process.pid, signal.SIGKILL)
    running.process.wait()
    # bentoml's arbiter starts its workers in their own process groups; they share the state folder.
    for pid in _pids_using(running):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _pids_using(running: RunningServe) -> list[int]:
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        try:
            environ = process.info["environ"] or {}
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
        if environ.get("CLINPRED_STATE_DIR") == running.state_dir and process.pid != os.getpid():
            found.append(process.pid)
    return found


def stop(running: RunningServe) -> int:
    """Ctrl-C to clinpred serve, as a person stops it; then nothing of it may be left serving (on a
    loaded machine a stop can outlast the wait), so later tests find their ports free."""
    code = _interrupt(running)
    for pid in _pids_using(running):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return code


def _interrupt(running: RunningServe) -> int:
    if running.process.poll() is None:
        os.killpg(running.process.pid, signal.SIGINT)
        try:
            return running.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(running.process.pid, signal.SIGKILL)
    return running.process.wait()


@pytest.fixture(scope="session")
def tumor_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServe]:
    # A short connection age, so a test can watch the server recycle connections.
    age = {"CLINPRED_TUMOR_MAX_CONNECTION_AGE_SECONDS": "2", "CLINPRED_TUMOR_MAX_CONNECTION_AGE_GRACE_SECONDS": "5"}
    running = start_clinpred_serve("tumor", tmp_path_factory.mktemp("state"), api_workers=2, env_extra=age)
    yield running
    stop(running)
    time.sleep(0.5)


def scrape(running: RunningServe, path: str = "/metrics") -> tuple[int, str]:
    """The metrics port as Prometheus scrapes it: HTTPS with the client certificate under mutual TLS
    (the port is protected as the gRPC port is), plain HTTP in development mode."""
    if running.tls is not None and running.tls.cert is not None and running.tls.key is not None:
        return https_get(running.metrics_port, running.tls.ca, (running.tls.cert, running.tls.key), path=path)
    with urllib.request.urlopen(f"http://127.0.0.1:{running.metrics_port}{path}", timeout=10) as response:
        return response.status, response.read().decode()
