"""With --tls-dir the service speaks mutual TLS only: clients must present a certificate of the CA."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from clinpred.cli.certificates import write_mutual_tls_folder
from clinpred.services.common.channel import ClientTls
from clinpred.services.tumor.client import TumorClient
from tests.e2e.conftest import RunningServe, start_clinpred_serve, stop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tls")
    write_mutual_tls_folder(folder, hosts=["localhost", "127.0.0.1"])
    return folder


@pytest.fixture(scope="module")
def tls_serve(tls_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServe]:
    running = start_clinpred_serve(
        "tumor", tmp_path_factory.mktemp("state"), api_workers=1, extra=("--tls-dir", str(tls_dir))
    )
    yield running
    stop(running)


def test_a_client_with_a_certificate_is_answered(tls_serve: RunningServe, tls_dir: Path) -> None:
    assert f"grpcs://127.0.0.1:{tls_serve.port} (mutual TLS)" in "".join(tls_serve.output)
    tls = ClientTls(tls_dir / "ca.crt", tls_dir / "client.crt", tls_dir / "client.key")
    with TumorClient(tls_serve.target, tls=tls) as client:
        info = client.model_info()
    assert len(info.model.sha256) == 64
    suggested = next(line.split("try:", 1)[1].split() for line in tls_serve.output if "try:" in line)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("clinpred")), *suggested[1:]], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "malignant" in result.stdout


def test_a_client_without_a_certificate_is_refused(tls_serve: RunningServe, tls_dir: Path) -> None:
    tls = ClientTls(tls_dir / "ca.crt")
    with TumorClient(tls_serve.target, tls=tls, timeout=5) as client, pytest.raises(grpc.RpcError) as caught:
        client.model_info()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_plaintext_is_refused(tls_serve: RunningServe) -> None:
    with TumorClient(tls_serve.target, timeout=5) as client, pytest.raises(grpc.RpcError) as caught:
        client.model_info()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
