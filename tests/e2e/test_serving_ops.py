"""`bentoml serve-grpc` as `clinpred serve` starts it (cli/services.py): metrics on /metrics and /, bound on its host,
the log level honoured, health checks out of the INFO access log, mistyped variables named once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer

from clinpred.cli.services import SERVICES, bentoml_env, register_models, serve_command
from clinpred.cli.settings import CliSettings
from clinpred.services.common.channel import is_serving
from clinpred.services.tumor.client import TumorClient
from tests.e2e.conftest import RunningServe, scrape
from tests.support import another_local_address, listen_addresses

pytestmark = pytest.mark.e2e

TUMOR = SERVICES["tumor"]
HEALTH_PATH = "path=/grpc.health.v1.Health/Check"
CLASSIFY_PATH = "path=/clinpred.tumor.v1.TumorClassificationService/Classify"
TYPO = "CLINPRED_TUMOR_MAX_BATCH_SIZ"


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    metrics_port: int
    lines: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> str:
        """Stops the server as Ctrl-C does and returns everything it printed."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        time.sleep(0.2)  # the reader thread drains the pipe
        return "".join(self.lines)


def _pump(process: subprocess.Popen[str], sink: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        sink.append(line)


StartServe = Callable[[int, int, str, dict[str, str]], "Served"]


@pytest.fixture
def serve_tumor(tmp_path: Path) -> Iterator[StartServe]:
    started: list[Served] = []

    def start(port: int, metrics_port: int, log_level: str, extra_env: dict[str, str]) -> Served:
        for number in (port, metrics_port):
            assert port_is_free(number), f"port {number} is in use; these tests use 5096x and 996x"
        settings = CliSettings(state_dir=tmp_path / log_level)
        register_models(settings, "tumor")
        env = bentoml_env(settings, "tumor", metrics_port, log_level=log_level) | extra_env
        env["CLINPRED_STATE_DIR"] = str(settings.state_dir)
        process = subprocess.Popen(
            serve_command(TUMOR, "127.0.0.1", port, 1, log_level=log_level),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        served = Served(process, port, metrics_port)
        started.append(served)
        threading.Thread(target=_pump, args=(process, served.lines), daemon=True).start()
        deadline = time.monotonic() + 180
        while not is_serving(served.target, TUMOR.grpc_service, timeout=1.0):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("bentoml serve-grpc did not start:\n" + served.stop()[-4000:])
            time.sleep(0.5)
        return served

    yield start
    for served in started:
        served.stop()


def health_checks_and_one_classification(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", TUMOR.grpc_service, TUMOR.grpc_service):
            assert health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status == 1
    with TumorClient(target) as client:
        names = [f.name for f in client.model_info().features]
        assert client.classify(dict(zip(names, map(float, load_breast_cancer().data[0])))).label == "malignant"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def classify_ok(exposition: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == "clinpred_grpc_requests_total" and s.labels.get("method") == "Classify" and s.labels.get("code") == "OK"
    )


def test_with_the_access_log_calls_are_logged_but_not_health_checks_and_metrics_are_on_metrics(
    serve_tumor: StartServe,
) -> None:
    served = serve_tumor(
        50961, 9961, "info", {"CLINPRED_ACCESS_LOG": "true", TYPO: "s3cr3t-value", "CLINPRED_TEST_ANYTHING": "1"}
    )
    health_checks_and_one_classification(served.target)

    status, metrics = get(f"http://127.0.0.1:{served.metrics_port}/metrics")
    assert status == 200 and "clinpred_grpc_requests_total" in metrics
    assert classify_ok(metrics) == 1.0
    status, root = get(f"http://127.0.0.1:{served.metrics_port}/")
    assert status == 200 and classify_ok(root) == 1.0
    assert get(f"http://127.0.0.1:{served.metrics_port}/not-metrics")[0] == 404

    output = served.stop()
    assert CLASSIFY_PATH in output  # BentoML's access log, at INFO when asked for
    assert HEALTH_PATH not in output
    # The mistyped name once (the arbiter, not once more per worker), with the closest name; never its value.
    warnings = [line for line in output.splitlines() if TYPO in line]
    assert len(warnings) == 1, output[-4000:]
    assert "[WARNING]" in warnings[0] and "did you mean CLINPRED_TUMOR_MAX_BATCH_SIZE?" in warnings[0]
    assert "s3cr3t" not in output and "CLINPRED_TEST_ANYTHING" not in output


def test_at_warning_neither_calls_nor_health_checks_nor_any_info_line_is_logged(serve_tumor: StartServe) -> None:
    served = serve_tumor(50962, 9962, "warning", {})
    health_checks_and_one_classification(served.target)
    assert get(f"http://127.0.0.1:{served.metrics_port}/metrics")[0] == 200
    output = served.stop()
    assert CLASSIFY_PATH not in output and HEALTH_PATH not in output
    assert "[INFO]" not in output, output[-4000:]


def test_at_the_default_level_calls_are_counted_and_audited_but_not_logged(serve_tumor: StartServe) -> None:
    served = serve_tumor(50963, 9963, "info", {})
    health_checks_and_one_classification(served.target)
    assert classify_ok(get(f"http://127.0.0.1:{served.metrics_port}/metrics")[1]) == 1.0
    output = served.stop()
    assert CLASSIFY_PATH not in output and HEALTH_PATH not in output
    assert "wdbc-logistic" in output and "loaded" in output, output[-4000:]  # clinpred's own INFO lines stay


def test_clinpred_serve_answers_prometheus_on_metrics(tumor_serve: RunningServe) -> None:
    with TumorClient(tumor_serve.target, tls=tumor_serve.tls) as client:
        names = [f.name for f in client.model_info().features]
        client.classify(dict(zip(names, map(float, load_breast_cancer().data[1]))))
    status, metrics = scrape(tumor_serve)
    assert status == 200
    assert classify_ok(metrics) >= 1.0


def test_clinpred_serve_binds_the_metrics_port_on_its_host_only(tumor_serve: RunningServe) -> None:
    """`clinpred serve` binds 127.0.0.1 by default: BentoML alone would bind the metrics port on 0.0.0.0."""
    assert listen_addresses(tumor_serve.metrics_port) == {"127.0.0.1"}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((another_local_address(), tumor_serve.metrics_port), timeout=5).close()
    assert scrape(tumor_serve)[0] == 200
