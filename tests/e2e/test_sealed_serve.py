"""Sealed calls as a hospital makes them: `clinpred serve tumor` (`bentoml serve-grpc`, two API workers, mutual
TLS, the keyring it makes on first use) and the client library and `clinpred call --sealed` over real TLS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from clinpred.services.api.tumor.v1 import tumor_pb2
from clinpred.services.common.sealing_keys import Keyring
from clinpred.services.tumor.client import TumorClient
from tests.e2e.conftest import RunningServe

pytestmark = pytest.mark.e2e
CLINPRED = str(Path(sys.executable).with_name("clinpred"))


def test_sealed_answers_over_mutual_tls_equal_plain_ones(tumor_serve: RunningServe) -> None:
    with TumorClient(tumor_serve.target, tls=tumor_serve.tls) as plain, TumorClient(
        tumor_serve.target, tls=tumor_serve.tls, sealed=True
    ) as sealed:
        names = [f.name for f in plain.model_info().features]
        case = {name: 1.0 for name in names} | {"mean_radius": 14.0}
        assert sealed.model_info() == plain.model_info()
        # Several calls, so both API workers answer some.
        for _ in range(6):
            assert sealed.classify(case, case_id="e2e") == plain.classify(case, case_id="e2e")
        with pytest.raises(grpc.RpcError) as sealed_error:
            sealed.classify({"mean_radius": -1.0})
        with pytest.raises(grpc.RpcError) as plain_error:
            plain.classify({"mean_radius": -1.0})
    assert sealed_error.value.code() == plain_error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sealed_error.value.details() == plain_error.value.details()
    # The key sealed to is the one `clinpred serve` made under its state dir.
    keyring = Keyring.load(Path(tumor_serve.state_dir) / "sealing-keys" / "tumor")
    with TumorClient(tumor_serve.target, tls=tumor_serve.tls) as client:
        served = client.stub.GetKeyConfigurations(tumor_pb2.GetKeyConfigurationsRequest(), timeout=30)
    assert [key.key_id for key in keyring.configurations()] == [key.key_id for key in served.keys]
    assert served.current_key_id == served.keys[0].key_id


def test_the_cli_prints_the_same_sealed(tumor_serve: RunningServe) -> None:
    def call(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [CLINPRED, "call", "tumor", "classify", "--example", "--target", tumor_serve.target, *extra]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env=tumor_serve.env)

    plain, sealed = call("--json"), call("--json", "--sealed")
    assert plain.returncode == sealed.returncode == 0, sealed.stderr
    assert json.loads(sealed.stdout) == json.loads(plain.stdout)
    listed = subprocess.run(
        [CLINPRED, "keys", "list", str(Path(tumor_serve.state_dir) / "sealing-keys" / "tumor")],
        capture_output=True, text=True, timeout=60, env=tumor_serve.env,
    )
    assert listed.returncode == 0 and listed.stdout.rstrip().endswith("current")
