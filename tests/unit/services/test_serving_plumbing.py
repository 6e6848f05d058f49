"""The pieces `bentoml serve-grpc` is run with: the log level and the health-check filter, the
metrics app on /metrics and /, and the environment and command `clinpred serve` starts it with."""

from __future__ import annotations

import io
import json
import logging
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clinpred.cli.services import SERVICES, bentoml_env, serve_command, warn_about_unknown_variables
from clinpred.cli.settings import CliSettings
from clinpred.services.common.metrics_server import MetricsApp, MetricsTls, serve_metrics_with_clinpred
from clinpred.services.common.server_logs import HealthChecksBelowInfo, LogSettings, checked_log_level

ACCESS_FORMAT = "%s (%s) (%s) %.3fms"  # bentoml.grpc.interceptors.access


def access_args(path: str) -> tuple[str, str, str, float]:
    return ("ipv4:127.0.0.1:5000", f"scheme=http,path={path},type=application/grpc,size=0", "http_status=200", 0.1)


@pytest.fixture
def access_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger like bentoml.access, with the filter, writing to a buffer."""
    logger = logging.getLogger("test.clinpred.access")
    logger.propagate = False
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.addFilter(HealthChecksBelowInfo())
    yield logger, sink
    logger.removeHandler(handler)
    logger.filters.clear()


def test_health_checks_leave_the_access_log_at_info(access_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, sink = access_log
    logger.setLevel(logging.INFO)
    logger.info(ACCESS_FORMAT, *access_args("/grpc.health.v1.Health/Check"))
    logger.info(ACCESS_FORMAT, *access_args("/grpc.health.v1.Health/Watch"))
    logger.info(ACCESS_FORMAT, *access_args("/clinpred.tumor.v1.TumorClassificationService/Classify"))
    logger.warning(ACCESS_FORMAT, *access_args("/grpc.health.v1.Health/Check"))
    lines = sink.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["INFO", "WARNING"]
    assert "TumorClassificationService/Classify" in lines[0]


def test_at_debug_health_checks_are_logged_as_debug(access_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, sink = access_log
    logger.setLevel(logging.DEBUG)
    logger.info(ACCESS_FORMAT, *access_args("/grpc.health.v1.Health/Check"))
    assert sink.getvalue().startswith("DEBUG ") and "Health/Check" in sink.getvalue()


def test_log_levels_are_checked_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    assert checked_log_level("WARNING") == "warning"
    with pytest.raises(ValueError, match="debug, info, warning, error, critical"):
        checked_log_level("verbose")
    monkeypatch.setenv("CLINPRED_LOG_LEVEL", "Error")
    assert LogSettings().log_level == "error"


def test_bentomls_access_log_and_its_tracing_are_left_out_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from bentoml.grpc.interceptors.access import AccessLogServerInterceptor
    from bentoml.grpc.interceptors.opentelemetry import AsyncOpenTelemetryServerInterceptor
    from bentoml.grpc.interceptors.prometheus import PrometheusServerInterceptor

    from clinpred.services.common.serving import dropped_bentoml_interceptors

    # The names dropped are BentoML's own class names (a rename in BentoML would silently keep them).
    access, tracing, prometheus = (
        AccessLogServerInterceptor.__name__, AsyncOpenTelemetryServerInterceptor.__name__, PrometheusServerInterceptor.__name__,
    )
    assert LogSettings().access_log is False
    assert dropped_bentoml_interceptors(LogSettings().access_log) == {access, tracing, prometheus}
    monkeypatch.setenv("CLINPRED_ACCESS_LOG", "true")
    assert dropped_bentoml_interceptors(LogSettings().access_log) == {prometheus}


async def call(app: MetricsApp, path: str, method: str = "GET") -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app({"type": "http", "path": path, "method": method}, receive, send)
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


async def test_the_metrics_app_answers_on_metrics_and_root_only() -> None:
    exposition = b"# TYPE clinpred_grpc_requests_total counter\nclinpred_grpc_requests_total 1.0\n"
    app = MetricsApp(lambda: exposition, "text/plain; version=0.0.4; charset=utf-8")
    for path in ("/metrics", "/"):
        status, headers, body = await call(app, path)
        assert (status, body) == (200, exposition)
        assert headers[b"content-type"].startswith(b"text/plain; version=0.0.4")
        assert headers[b"content-length"] == str(len(exposition)).encode()
    assert (await call(app, "/metrics", "HEAD"))[::2] == (200, b"")
    assert (await call(app, "/metrics/x"))[0] == 404
    assert (await call(app, "/metrics", "POST"))[0] == 405


def test_bentoml_serve_grpc_is_told_to_start_our_metrics_server() -> None:
    import bentoml.serving

    original = bentoml.serving.SCRIPT_GRPC_PROMETHEUS_SERVER
    try:
        assert serve_metrics_with_clinpred()
        assert bentoml.serving.SCRIPT_GRPC_PROMETHEUS_SERVER == "clinpred.services.common.metrics_server"
    finally:
        bentoml.serving.SCRIPT_GRPC_PROMETHEUS_SERVER = original


ARBITER_HOOK = """
import json, os, sys
import bentoml.serving
from bentoml._internal.configuration.containers import BentoMLContainer
from bentoml_cli.serve import serve_command
from clinpred.services.common.metrics_server import serve_metrics_with_clinpred

with serve_command.commands["serve-grpc"].make_context("serve-grpc", sys.argv[1:]):
    installed = serve_metrics_with_clinpred()
print(json.dumps([installed, BentoMLContainer.grpc.metrics.host.get(), os.environ["BENTOML_CONFIG_OPTIONS"]]))
"""
READ_TLS = """
import dataclasses, json
from clinpred.services.common.metrics_server import MetricsTls
print(json.dumps(dataclasses.asdict(MetricsTls.from_bentoml_config())))
"""


def python(script: str, *args: str, env: dict[str, str]) -> Any:
    """The JSON a Python child prints last (its own process: BentoML's CLI reconfigures logging)."""
    answer = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout.splitlines()[-1])


def test_the_metrics_port_gets_the_host_and_tls_of_bentomls_grpc_options() -> None:
    """serve_metrics_with_clinpred as the arbiter runs it: inside BentoML's own `serve-grpc` command."""
    env = dict(os.environ, BENTOML_CONFIG_OPTIONS="api_server.grpc.metrics.port=9961")
    tls = ("--ssl-certfile", "tls dir/server.crt", "--ssl-keyfile", "tls dir/true", "--ssl-ca-certs", "tls dir/ca.crt")
    installed, host, options = python(ARBITER_HOOK, "x:svc", "--host", "127.0.0.1", *tls, env=env)
    # The arbiter binds the metrics socket there (BentoML's default is 0.0.0.0).
    assert installed and host == "127.0.0.1"
    assert options.startswith("api_server.grpc.metrics.port=9961 api_server.ssl.enabled=true ")
    # The metrics server, a process the arbiter starts, reads the TLS files from BentoML's config.
    assert python(READ_TLS, env=dict(env, BENTOML_CONFIG_OPTIONS=options)) == {
        "certfile": "tls dir/server.crt",
        "keyfile": "tls dir/true",
        "client_ca": "tls dir/ca.crt",
    }
    # Without TLS: the host only.
    assert python(ARBITER_HOOK, "x:svc", "--host", "10.1.2.3", env=env) == [True, "10.1.2.3", env["BENTOML_CONFIG_OPTIONS"]]


def test_metrics_tls_requires_client_certificates_when_it_has_a_client_ca() -> None:
    mutual = MetricsTls("tls/server.crt", "tls/server.key", "tls/ca.crt").uvicorn_options()
    assert (mutual["ssl_ca_certs"], mutual["ssl_cert_reqs"]) == ("tls/ca.crt", ssl.CERT_REQUIRED)
    assert MetricsTls("tls/server.crt", "tls/server.key").uvicorn_options()["ssl_cert_reqs"] == ssl.CERT_NONE
    with pytest.raises(ValueError, match="quote"):
        MetricsTls('tls/"server".crt', "tls/server.key").bentoml_config_options()


def test_clinpred_serve_passes_the_log_level_to_the_served_processes(tmp_path: Path) -> None:
    settings = CliSettings(state_dir=tmp_path)
    env = bentoml_env(settings, "tumor", 9961, log_level="WARNING")
    assert env["CLINPRED_LOG_LEVEL"] == "warning"
    assert env["BENTOML_HOME"] == str(tmp_path / "bentoml" / "tumor")
    assert "api_server.grpc.metrics.port=9961" in env["BENTOML_CONFIG_OPTIONS"]
    assert bentoml_env(settings, "tumor")["CLINPRED_LOG_LEVEL"] == "info"
    with pytest.raises(ValueError):
        bentoml_env(settings, "tumor", log_level="loud")
    command = serve_command(SERVICES["tumor"], "127.0.0.1", 50961, 2, log_level="warning")
    assert command[1:3] == ["serve-grpc", "clinpred.services.tumor.service:svc"]
    with pytest.raises(ValueError):
        serve_command(SERVICES["tumor"], "127.0.0.1", 50961, 2, log_level="loud")


def test_clinpred_serve_can_warn_about_unknown_variables_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    lines = warn_about_unknown_variables({"CLINPRED_GENOMICS_SCORING_DIRS": "/srv/pgs", "CLINPRED_STATE_DIR": "/srv"})
    assert lines == [
        "warning: CLINPRED_GENOMICS_SCORING_DIRS is not a clinpred setting and is ignored"
        " (did you mean CLINPRED_GENOMICS_SCORING_DIR?)"
    ]
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", lines[0] + "\n")


def test_clinpred_serve_makes_each_service_a_sealing_keyring_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clinpred.services.common.sealing_keys import Keyring

    monkeypatch.delenv("CLINPRED_TUMOR_SEALING_KEYS_DIR", raising=False)
    monkeypatch.delenv("CLINPRED_GENOMICS_SEALING_KEYS_DIR", raising=False)
    settings = CliSettings(state_dir=tmp_path)
    folder = Path(bentoml_env(settings, "tumor")["CLINPRED_TUMOR_SEALING_KEYS_DIR"])
    assert folder == tmp_path / "sealing-keys" / "tumor"
    first = [key.key_id for key in Keyring.load(folder).configurations()]
    bentoml_env(settings, "tumor")
    assert [key.key_id for key in Keyring.load(folder).configurations()] == first and len(first) == 1
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    other = Path(bentoml_env(settings, "genomics")["CLINPRED_GENOMICS_SEALING_KEYS_DIR"])
    assert Keyring.load(other).configurations()[0].key_id != first[0]
    # A keyring the operator names is used as it is.
    monkeypatch.setenv("CLINPRED_TUMOR_SEALING_KEYS_DIR", str(tmp_path / "mine"))
    assert bentoml_env(settings, "tumor")["CLINPRED_TUMOR_SEALING_KEYS_DIR"] == str(tmp_path / "mine")
    assert not (tmp_path / "mine").exists()
