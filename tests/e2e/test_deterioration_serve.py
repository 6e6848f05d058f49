"""The deterioration service as a hospital runs it: real `bentoml serve-grpc` processes and real databases."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.deterioration.client import DeteriorationClient, observation
from tests.conftest import REPO
from tests.e2e.conftest import RunningServe, buf_tls_flags, kill, start_clinpred_serve, stop
from tests.fhir_js import fhir_js_answers
from tests.integration.deterioration.conftest import ADMIN_URL

pytestmark = pytest.mark.e2e
CLINPRED = str(Path(sys.executable).with_name("clinpred"))
NOW = datetime.now(UTC).replace(microsecond=0)
PATIENT = {
    "patientId": "e2e-1",
    "birthDate": "2017-07-01",
    "sex": "female",
    "diagnosisGroup": "all",
    "treatmentIntensity": "medium",
    "centralLine": True,
    "ward": "onc-e2e",
    "team": "t1",
}


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    name = f"clinpred_e2e_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def reading(index: int, hours_ago: float, heart_rate: float = 120) -> pb.Observation:
    return observation(f"obs-{index}", NOW - timedelta(hours=hours_ago), heart_rate=heart_rate, spo2=97, temperature_c=37.5)


def run_printed_command(running: RunningServe) -> str:
    result = subprocess.run(running.printed_command(), capture_output=True, text=True, timeout=60, env=running.env)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_acknowledged_write_survives_sigkill(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {}
    if backend == "postgresql":
        env["CLINPRED_DETERIORATION_DATABASE_URL"] = request.getfixturevalue("postgres_database")
    running = start_clinpred_serve("deterioration", tmp_path, api_workers=1, env_extra=env)
    try:
        with DeteriorationClient(running.target, tls=running.tls) as client:
            client.register_patient(PATIENT)
            acknowledged = client.record("e2e-1", [reading(1, 5), reading(2, 3, heart_rate=150)])
    finally:
        kill(running)  # right after the acknowledgement, no chance to flush anything
    assert acknowledged.stored == 2
    restarted = start_clinpred_serve("deterioration", tmp_path, api_workers=1, env_extra=env, port=running.port)
    try:
        with DeteriorationClient(restarted.target, tls=restarted.tls) as client:
            latest = client.latest("e2e-1")
            retried = client.record("e2e-1", [reading(1, 5), reading(2, 3, heart_rate=150)])
    finally:
        stop(restarted)
    assert latest.score == acknowledged.score
    assert (retried.stored, retried.duplicates) == (0, 2)
    assert not any(line.startswith("made ") for line in restarted.output)  # the first start's TLS folder, reused


def test_the_printed_example_and_buf_curl_work_with_a_tls_folder_of_your_own(tmp_path: Path) -> None:
    certificates = tmp_path / "certificates"
    made = subprocess.run([CLINPRED, "tls", "init", str(certificates)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    running = start_clinpred_serve(
        "deterioration", tmp_path / "state", api_workers=1, extra=("--tls-dir", str(certificates))
    )
    try:
        assert not (tmp_path / "state" / "tls").exists()  # the folder given, not the default one
        assert running.printed_command()[-2:] == ["--tls-dir", str(certificates)]
        printed = run_printed_command(running)
        assert "P(deterioration within 24 h)" in printed and "polling with version 1: unchanged" in printed
        buf = REPO / "node_modules" / ".bin" / "buf"
        body = json.dumps({"patientId": "demo-0001", "knownVersion": "0"})
        result = subprocess.run(
            [
                str(buf), "curl", "--protocol", "grpc", *buf_tls_flags(running), "--data", body,
                f"https://{running.target}/clinpred.deterioration.v1.DeteriorationService/GetLatestRisk",
            ],
            capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        score = json.loads(result.stdout)["score"]
        assert score["patientId"] == "demo-0001" and score["version"] == "1"
        assert 0 <= score["probability"] <= 1 and score["pews"]["items"]
        exported = subprocess.run(
            [
                str(buf), "curl", "--protocol", "grpc", *buf_tls_flags(running), "--data", json.dumps({"patientId": "demo-0001"}),
                f"https://{running.target}/clinpred.deterioration.v1.DeteriorationService/ExportFhir",
            ],
            capture_output=True, text=True, timeout=60,
        )
        assert exported.returncode == 0, exported.stderr
        bundle = json.loads(json.loads(exported.stdout)["bundleJson"])
        (answer,) = fhir_js_answers([bundle])
        assert answer["valid"] and not [m for m in answer["messages"] if m["severity"] in ("error", "fatal")], answer
        assessment = bundle["entry"][0]["resource"]
        assert assessment["prediction"][0]["probabilityDecimal"] == pytest.approx(score["probability"], abs=1e-12)
    finally:
        stop(running)


def test_two_replicas_on_one_postgresql_lose_nothing(tmp_path: Path, postgres_database: str) -> None:
    env = {"CLINPRED_DETERIORATION_DATABASE_URL": postgres_database}
    replicas = [
        start_clinpred_serve("deterioration", tmp_path / f"replica-{i}", api_workers=1, env_extra=env) for i in range(2)
    ]
    writers, batches = 4, 8
    errors: list[BaseException] = []
    try:
        with DeteriorationClient(replicas[0].target, tls=replicas[0].tls) as client:
            client.register_patient(PATIENT | {"patientId": "shared"})

        def write(worker: int) -> None:
            try:
                with DeteriorationClient(replicas[worker % 2].target, tls=replicas[worker % 2].tls) as client:
                    for i in range(batches):
                        client.record("shared", [reading(worker * 100 + i, 40 - i * 0.1 - worker * 0.01)])
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with DeteriorationClient(replicas[1].target, tls=replicas[1].tls) as client:
            history = client.history("shared", page_size=100)
            first_of_each = [reading(w * 100, 40 - w * 0.01) for w in range(writers)]
            again = client.record("shared", first_of_each)
    finally:
        for replica in replicas:
            stop(replica)
    assert not errors, errors
    total = writers * batches
    assert [s.version for s in history.scores] == list(range(total, 0, -1))
    assert again.duplicates == writers and again.stored == 0
