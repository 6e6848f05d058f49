"""The metrics port of `clinpred serve` is exposed as its gRPC port is: bound on `--host` only, and
with `--tls-dir` HTTPS with the server certificate, answering only clients with a certificate of
the folder's CA (mutual TLS, as gRPC)."""

from __future__ import annotations

import http.client
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinpred.cli.certificates import write_mutual_tls_folder
from tests.e2e.conftest import RunningServe, start_clinpred_serve, stop
from tests.support import another_local_address, https_get, listen_addresses

pytestmark = pytest.mark.e2e

REFUSED = (OSError, http.client.HTTPException)  # ssl.SSLError and ConnectionResetError are OSErrors


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tls")
    write_mutual_tls_folder(folder, hosts=["localhost", "127.0.0.1"])
    return folder


@pytest.fixture(scope="module")
def tls_serve(tls_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServe]:
    running = start_clinpred_serve(
        "tumor", tmp_path_factory.mktemp("state"), api_workers=1, extra=("--host", "127.0.0.1", "--tls-dir", str(tls_dir))
    )
    yield running
    stop(running)


def test_the_metrics_port_listens_on_the_service_host_only(tls_serve: RunningServe) -> None:
    assert listen_addresses(tls_serve.metrics_port) == {"127.0.0.1"}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((another_local_address(), tls_serve.metrics_port), timeout=5).close()


def test_https_with_a_client_certificate_of_the_folder_is_answered(tls_serve: RunningServe, tls_dir: Path) -> None:
    assert f"metrics https://127.0.0.1:{tls_serve.metrics_port}/metrics" in "".join(tls_serve.output)
    client = (tls_dir / "client.crt", tls_dir / "client.key")
    status, exposition = https_get(tls_serve.metrics_port, tls_dir / "ca.crt", client)
    assert status == 200 and "clinpred_grpc_request" in exposition
    # BentoML's own request metrics counted the same calls again: its Prometheus interceptor is left out.
    assert "bentoml_api_server_request" not in exposition
    assert https_get(tls_serve.metrics_port, tls_dir / "ca.crt", client, path="/")[0] == 200


def test_https_without_a_client_certificate_is_refused(tls_serve: RunningServe, tls_dir: Path) -> None:
    with pytest.raises(REFUSED):
        https_get(tls_serve.metrics_port, tls_dir / "ca.crt", None)


def test_a_client_certificate_of_another_ca_is_refused(tls_serve: RunningServe, tls_dir: Path, tmp_path: Path) -> None:
    write_mutual_tls_folder(tmp_path, hosts=["127.0.0.1"])
    with pytest.raises(REFUSED):
        https_get(tls_serve.metrics_port, tls_dir / "ca.crt", (tmp_path / "client.crt", tmp_path / "client.key"))


def test_plain_http_is_refused(tls_serve: RunningServe) -> None:
    with pytest.raises(REFUSED):
        urllib.request.urlopen(f"http://127.0.0.1:{tls_serve.metrics_port}/metrics", timeout=10)
