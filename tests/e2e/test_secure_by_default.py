"""`clinpred serve` is secure by default: mutual TLS with the state dir's folder, made on first use;
plaintext only with --insecure-development, which it announces loudly."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from clinpred.services.common.channel import ClientTls
from clinpred.services.tumor.client import TumorClient
from tests.e2e.conftest import RunningServe, start_clinpred_serve, stop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def development_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServe]:
    running = start_clinpred_serve("tumor", tmp_path_factory.mktemp("state"), api_workers=1, extra=("--insecure-development",))
    yield running
    stop(running)


def test_without_flags_the_default_client_certificate_is_answered(tumor_serve: RunningServe) -> None:
    # tumor_serve is `clinpred serve tumor` with no TLS option: the default folder under its state dir.
    tls = ClientTls.from_folder(Path(tumor_serve.state_dir) / "tls")
    with TumorClient(tumor_serve.target, tls=tls) as client:
        info = client.model_info()
    assert len(info.model.sha256) == 64
    policy = (Path(tumor_serve.state_dir) / "tls" / "policy.toml").read_text()
    assert 'tenant = "demo"' in policy and 'clients = ["cli"]' in policy


def test_without_flags_a_client_without_a_certificate_is_refused(tumor_serve: RunningServe) -> None:
    tls = ClientTls(Path(tumor_serve.state_dir) / "tls" / "ca.crt")
    with TumorClient(tumor_serve.target, tls=tls, timeout=5) as client, pytest.raises(grpc.RpcError) as caught:
        client.model_info()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_without_flags_plaintext_is_refused(tumor_serve: RunningServe) -> None:
    with TumorClient(tumor_serve.target, timeout=5) as client, pytest.raises(grpc.RpcError) as caught:
        client.model_info()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_certificate_of_another_ca_is_refused(tumor_serve: RunningServe, tmp_path: Path) -> None:
    from clinpred.cli.certificates import write_mutual_tls_folder

    write_mutual_tls_folder(tmp_path, hosts=["127.0.0.1"])
    own = Path(tumor_serve.state_dir) / "tls"
    tls = ClientTls(own / "ca.crt", tmp_path / "client.crt", tmp_path / "client.key")
    with TumorClient(tumor_serve.target, tls=tls, timeout=5) as client, pytest.raises(grpc.RpcError) as caught:
        client.model_info()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_insecure_development_serves_plaintext_and_says_so_loudly(development_serve: RunningServe) -> None:
    output = "".join(development_serve.output)
    warning = [line for line in output.splitlines() if line.startswith("WARNING ")]
    assert len(warning) >= 5 and any("PLAINTEXT in DEVELOPMENT MODE" in line for line in warning)
    assert f"grpc://127.0.0.1:{development_serve.port} (PLAINTEXT, development mode)" in output
    assert not (Path(development_serve.state_dir) / "tls").exists()  # no certificates made or needed
    with TumorClient(development_serve.target, timeout=10) as client:
        assert len(client.model_info().model.sha256) == 64
    command = development_serve.printed_command()
    assert command[-1] == "--insecure-development"
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=development_serve.env)
    assert result.returncode == 0, result.stderr
    assert "malignant" in result.stdout


def test_calling_without_the_flag_and_without_a_tls_folder_says_what_to_do(development_serve: RunningServe) -> None:
    command = [arg for arg in development_serve.printed_command() if arg != "--insecure-development"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=development_serve.env)
    assert result.returncode == 7, result.stderr  # ExitCode.FAILED_PRECONDITION
    (line,) = result.stderr.strip().splitlines()
    assert f"no TLS folder at {development_serve.state_dir}/tls" in line and "`clinpred serve`" in line
