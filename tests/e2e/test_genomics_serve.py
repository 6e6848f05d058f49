"""The genomics service as a genetics unit runs it: `clinpred serve genomics` -> `bentoml serve-grpc`."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clinpred.pilots.genomics.encrypted import layout_scoring_file
from clinpred.pilots.genomics.example_vcf import simulated_vcf
from clinpred.pilots.genomics.scoring import score_vcf
from clinpred.services.common.channel import open_channel
from clinpred.services.genomics.client import GenomicsClient, layout_of, patient
from tests.conftest import REPO
from tests.e2e.conftest import RunningServe, buf_tls_flags, start_clinpred_serve, stop

pytestmark = pytest.mark.e2e
CLINPRED = str(Path(sys.executable).with_name("clinpred"))


@pytest.fixture(scope="module")
def genomics_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServe]:
    running = start_clinpred_serve("genomics", tmp_path_factory.mktemp("state"), api_workers=1)
    yield running
    stop(running)
    time.sleep(0.5)


def test_the_banner_command_works_on_a_fresh_clone(genomics_serve: RunningServe) -> None:
    banner = "".join(genomics_serve.output)
    assert f"grpcs://127.0.0.1:{genomics_serve.port} (mutual TLS)" in banner
    command = genomics_serve.printed_command()
    assert command[1:3] == ["call", "genomics"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=genomics_serve.env)
    assert result.returncode == 0, result.stderr
    assert "breast cancer, 10-year risk" in result.stdout and "percentile" in result.stdout and "sha256" in result.stdout


def test_readme_flow_example_vcf_then_assess(genomics_serve: RunningServe, tmp_path: Path) -> None:
    vcf = tmp_path / "patient.vcf"
    made = subprocess.run([CLINPRED, "genomics", "example-vcf", str(vcf)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    result = subprocess.run(
        [CLINPRED, "call", "genomics", "assess", "--vcf", str(vcf), "--build", "GRCh37", "--age", "52", "--sex", "female",
         "--relatives", "breast=1", "--target", genomics_serve.target, "--json"],
        capture_output=True, text=True, timeout=120, env=genomics_serve.env,
    )
    assert result.returncode == 0, result.stderr
    # --json prints the shape the API returns: the AssessVcfResponse
    risk = json.loads(result.stdout)["assessment"]["samples"][0]["risks"][0]
    assert risk["score"]["pgsId"] == "PGS000004" and 0 < risk["absoluteRisk"] < 1
    encrypted = subprocess.run(
        [CLINPRED, "call", "genomics", "encrypted", "--vcf", str(vcf), "--target", genomics_serve.target],
        capture_output=True, text=True, timeout=120, env=genomics_serve.env,
    )
    assert encrypted.returncode == 0, encrypted.stderr
    assert "decrypted here" in encrypted.stdout and "computed here with the published parameters" in encrypted.stdout


def test_plain_and_encrypted_scoring_over_a_real_channel(genomics_serve: RunningServe) -> None:
    with open_channel(genomics_serve.target, genomics_serve.tls) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="clinpred.genomics.v1.GenomicRiskService"), timeout=10
        )
    assert status.status == health_pb2.HealthCheckResponse.SERVING
    with GenomicsClient(genomics_serve.target, tls=genomics_serve.tls) as client:
        published = client.score_layout("breast")
        layout = layout_of(published)
        vcf = simulated_vcf(layout, "GRCh37", samples=3, seed=5)
        answer = client.assess(vcf, "GRCh37", [patient(60, "female")])
        started = time.perf_counter()
        encrypted = client.score_encrypted(vcf, "GRCh37", "breast", sample="example-2")
        print(f"encrypted round trip {time.perf_counter() - started:.2f} s, server call {encrypted.server_seconds:.2f} s")
        with pytest.raises(grpc.RpcError) as caught:
            client.assess(b"##fileformat=VCFv4.2\nnot a vcf\n", "GRCh37", [patient(60, "female")])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    expected = score_vcf(vcf, layout_scoring_file(layout, "GRCh37", "layout"))
    assert [s.risks[0].score_sum for s in answer.samples] == pytest.approx([e.score_sum for e in expected], abs=1e-12)
    assert abs(encrypted.score_sum - expected[1].score_sum) <= 1e-3


def test_buf_curl_assesses_a_vcf_through_server_reflection(genomics_serve: RunningServe) -> None:
    with GenomicsClient(genomics_serve.target, tls=genomics_serve.tls) as client:
        vcf = simulated_vcf(layout_of(client.score_layout("breast")), "GRCh37", seed=8)
    body = json.dumps({
        "assessment": {"build": "GENOME_BUILD_GRCH37", "patients": [{"age": 47, "sex": "SEX_FEMALE"}]},
        "vcf": base64.b64encode(vcf).decode(),
    })
    result = subprocess.run(
        [str(REPO / "node_modules" / ".bin" / "buf"), "curl", "--protocol", "grpc", *buf_tls_flags(genomics_serve),
         "--data", body, f"https://{genomics_serve.target}/clinpred.genomics.v1.GenomicRiskService/AssessVcf"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    risk = json.loads(result.stdout)["assessment"]["samples"][0]["risks"][0]
    assert risk["cancer"] == "breast" and risk["variants"]["matched"] == 282
    assert len(risk["explanation"]["contributions"]) == 3 and len(risk["model"]["sha256"]) == 64
    assert risk["riskInterval"]["lower"] < risk["absoluteRisk"] < risk["riskInterval"]["upper"]
