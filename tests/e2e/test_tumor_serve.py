"""The tumour service as a hospital runs it: `clinpred serve` -> `bentoml serve-grpc`, two API workers."""

from __future__ import annotations

import asyncio
import json
import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.channel import open_channel
from clinpred.services.tumor.client import TumorClient
from tests.conftest import REPO
from tests.e2e.conftest import RunningServe, buf_tls_flags, scrape

pytestmark = pytest.mark.e2e


def test_serve_prints_where_it_listens_and_a_command_that_works(tumor_serve: RunningServe) -> None:
    banner = "".join(tumor_serve.output)
    assert f"grpcs://127.0.0.1:{tumor_serve.port} (mutual TLS)" in banner
    assert f"metrics https://127.0.0.1:{tumor_serve.metrics_port}/metrics" in banner
    assert f"made {tumor_serve.state_dir}/tls/ for mutual TLS" in banner
    command = tumor_serve.printed_command()
    assert "--tls-dir" not in command and "--insecure-development" not in command  # `clinpred call` finds the folder
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=tumor_serve.env)
    assert result.returncode == 0, result.stderr
    assert "malignant" in result.stdout and "sha256" in result.stdout


def test_health_and_classification_over_a_real_channel(tumor_serve: RunningServe) -> None:
    with open_channel(tumor_serve.target, tumor_serve.tls) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="clinpred.tumor.v1.TumorClassificationService"), timeout=10
        )
    assert status.status == health_pb2.HealthCheckResponse.SERVING
    with TumorClient(tumor_serve.target, tls=tumor_serve.tls) as client:
        names = [f.name for f in client.model_info().features]
        from sklearn.datasets import load_breast_cancer

        data = load_breast_cancer()
        cases = [(f"c{i}", dict(zip(names, map(float, row)))) for i, row in enumerate(data.data[:20])]
        answers = client.classify_batch(cases)
        streamed = list(client.classify_stream(cases))
    truth = ["malignant" if t == 0 else "benign" for t in data.target[:20]]
    assert [a.label for a in answers] == truth
    # `clinpred serve` serves the default package: the logistic regression, explained by linear SHAP.
    assert {(a.model.name, a.explanation.method.split(" ")[0]) for a in answers} == {("wdbc-logistic", "Linear")}
    assert [a.case_id for a in streamed] == [c for c, _ in cases]
    assert [a.positive_probability for a in streamed] == pytest.approx([a.positive_probability for a in answers])


def test_encrypted_classification_answers_like_the_plain_one_under_bentoml(tumor_serve: RunningServe) -> None:
    """Two API workers behind one port: the layout one worker publishes fits the ciphertexts another multiplies."""
    from sklearn.datasets import load_breast_cancer

    with TumorClient(tumor_serve.target, tls=tumor_serve.tls, timeout=60) as client:
        names = [f.name for f in client.model_info().features]
        cases = [(f"c{i}", dict(zip(names, map(float, row)))) for i, row in enumerate(load_breast_cancer().data[:20])]
        plain = client.classify_batch(cases)
        encrypted = client.classify_encrypted_batch(cases)
    assert [a.label for a in encrypted] == [a.label for a in plain]
    assert [a.confidence for a in encrypted] == [a.confidence for a in plain]
    assert [a.positive_probability for a in encrypted] == pytest.approx([a.positive_probability for a in plain], abs=1e-3)
    for mine, theirs in zip(encrypted, plain, strict=True):
        shap = [c.shap_value for c in theirs.explanation.contributions]
        assert [c.shap_value for c in mine.explanation.contributions] == pytest.approx(shap, abs=1e-3)
        assert mine.model == theirs.model


def test_invalid_input_is_invalid_argument_in_production_too(tumor_serve: RunningServe) -> None:
    with TumorClient(tumor_serve.target, tls=tumor_serve.tls) as client, pytest.raises(grpc.RpcError) as caught:
        client.classify({"mean_radius": -1.0})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_buf_curl_classifies_through_server_reflection(tumor_serve: RunningServe) -> None:
    """An independent client: buf curl discovers the API by reflection and gets an explained answer."""
    with TumorClient(tumor_serve.target, tls=tumor_serve.tls) as client:
        names = [f.name for f in client.model_info().features]
    from sklearn.datasets import load_breast_cancer

    row = load_breast_cancer().data[0]
    body = json.dumps({"tumorCase": {"caseId": "buf-1", "features": dict(zip(names, map(float, row)))}})
    buf = REPO / "node_modules" / ".bin" / "buf"
    result = subprocess.run(
        [
            str(buf),
            "curl",
            "--protocol",
            "grpc",
            *buf_tls_flags(tumor_serve),
            "--data",
            body,
            f"https://{tumor_serve.target}/clinpred.tumor.v1.TumorClassificationService/Classify",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)["classification"]
    assert answer["caseId"] == "buf-1"
    assert answer["label"] == "malignant"
    assert len(answer["explanation"]["contributions"]) == 30
    assert answer["explanation"]["topReasons"][0]["text"]
    assert len(answer["model"]["sha256"]) == 64


def test_metrics_count_calls_across_api_workers(tumor_serve: RunningServe) -> None:
    def classify_ok_count() -> float:
        _status, text = scrape(tumor_serve, "/")
        total = 0.0
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if (
                    s.name == "clinpred_grpc_requests_total"
                    and s.labels.get("method") == "Classify"
                    and s.labels.get("code") == "OK"
                ):
                    total += s.value
        return total

    from sklearn.datasets import load_breast_cancer

    rows = load_breast_cancer().data
    before = classify_ok_count()
    calls = 24
    # A new channel per call: the kernel spreads connections over the SO_REUSEPORT workers.
    for i in range(calls):
        with TumorClient(tumor_serve.target, tls=tumor_serve.tls) as client:
            names = [f.name for f in client.model_info().features]
            client.classify(dict(zip(names, map(float, rows[i]))))
    assert classify_ok_count() == before + calls


def test_bentoml_serve_grpc_recycles_connections(tumor_serve: RunningServe) -> None:
    """max_connection_age reaches the server `bentoml serve-grpc` builds: idle clients see GOAWAY."""

    async def watch() -> list[grpc.ChannelConnectivity]:
        assert tumor_serve.tls is not None
        async with grpc.aio.secure_channel(tumor_serve.target, tumor_serve.tls.credentials()) as channel:
            stub = tumor_pb2_grpc.TumorClassificationServiceStub(channel)
            await stub.GetModelInfo(tumor_pb2.GetModelInfoRequest())
            states = [channel.get_state()]
            for _ in range(80):  # up to 8 s
                await asyncio.sleep(0.1)
                states.append(channel.get_state())
                if states[-1] != grpc.ChannelConnectivity.READY:
                    break
            await stub.GetModelInfo(tumor_pb2.GetModelInfoRequest())
            return states

    states = asyncio.run(watch())
    assert states[0] == grpc.ChannelConnectivity.READY
    assert grpc.ChannelConnectivity.IDLE in states, states
