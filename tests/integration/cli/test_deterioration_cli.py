"""`clinpred call deterioration ...` against a real server on SQLite: files in, text or API JSON out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as pb_grpc
from tests.integration.cli.conftest import run_cli

NOW = datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def patient_json(patient_id: str) -> dict[str, Any]:
    return {
        "patientId": patient_id, "birthDate": "2017-09-02", "sex": "male", "diagnosisGroup": "aml",
        "treatmentIntensity": "high", "centralLine": True, "ward": "onc-cli", "team": "team-cli",
        "chemotherapyAt": [iso(NOW - timedelta(days=9))],
    }


def observations_json(prefix: str) -> list[dict[str, Any]]:
    readings = [
        (9, {"heartRate": 110, "respiratoryRate": 24, "temperatureC": 37.1, "spo2": 98}),
        (5, {"heartRate": 132, "respiratoryRate": 30, "temperatureC": 38.6, "spo2": 95}),
        (2, {"heartRate": 158, "respiratoryRate": 38, "temperatureC": 39.4, "spo2": 92, "capillaryRefillS": 3}),
    ]
    return [{"observationId": f"{prefix}-{h}", "observedAt": iso(NOW - timedelta(hours=h)), **v} for h, v in readings]


def write(path: Path, value: Any) -> str:
    path.write_text(json.dumps(value))
    return str(path)


async def test_register_record_latest_history_fhir_as_a_person_and_a_script(
    deterioration_target: str, tmp_path: Path
) -> None:
    target = ["--target", deterioration_target, "--insecure-development"]
    patient = write(tmp_path / "patient.json", patient_json("p-cli-1"))
    registered = await run_cli("call", "deterioration", "register", "--patient", patient, *target)
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.strip() == "registered patient p-cli-1 (ward onc-cli, team team-cli)"
    again = await run_cli("call", "deterioration", "register", "--patient", patient, "--json", *target)
    assert json_format.Parse(again.stdout, pb.RegisterPatientResponse()).patient.ward == "onc-cli"

    observations = write(tmp_path / "observations.json", observations_json("o"))
    recorded = await run_cli(
        "call", "deterioration", "record", "--patient-id", "p-cli-1", "--observations", observations, "--json", *target
    )
    assert recorded.returncode == 0, recorded.stderr
    answer = json_format.Parse(recorded.stdout, pb.RecordObservationsResponse())
    assert (answer.stored, answer.duplicates, answer.score.version) == (3, 0, 1)
    repeated = await run_cli(
        "call", "deterioration", "record", "--patient-id", "p-cli-1", "--observations", observations, *target
    )
    assert repeated.stdout.splitlines()[0] == "stored 0, already stored 3"
    assert f"P(deterioration within 24 h) = {answer.score.probability:.4f}" in repeated.stdout

    latest = await run_cli("call", "deterioration", "latest", "--patient-id", "p-cli-1", "--json", *target)
    assert json_format.Parse(latest.stdout, pb.GetLatestRiskResponse()).score == answer.score
    unchanged = await run_cli("call", "deterioration", "latest", "--patient-id", "p-cli-1", "--known-version", "1", *target)
    assert unchanged.stdout.strip() == "unchanged: version 1 is still the latest"

    history = await run_cli("call", "deterioration", "history", "--patient-id", "p-cli-1", *target)
    assert history.returncode == 0, history.stderr
    rows = [line.split("\t") for line in history.stdout.splitlines()]
    assert rows[0] == ["version", "scored_at", "probability", "band", "pews"]
    assert rows[1:] == [["1", iso(NOW - timedelta(hours=2)), f"{answer.score.probability:.4f}",
                         pb.RiskBand.Name(answer.score.band).removeprefix("RISK_BAND_").lower(), str(answer.score.pews.total)]]

    fhir = await run_cli("call", "deterioration", "fhir", "--patient-id", "p-cli-1", "--json", *target)
    exported = json_format.Parse(fhir.stdout, pb.ExportFhirResponse())
    bundle = json.loads(exported.bundle_json)
    risk = bundle["entry"][0]["resource"]
    assert risk["resourceType"] == "RiskAssessment"
    assert risk["prediction"][0]["probabilityDecimal"] == pytest.approx(answer.score.probability, abs=1e-12)
    readable = await run_cli("call", "deterioration", "fhir", "--patient-id", "p-cli-1", *target)
    lines = readable.stdout.splitlines()
    assert len(lines) == len(bundle["entry"])
    first, second, *vitals, device = lines
    assert first.startswith(f"RiskAssessment/{risk['id']} (final, ")
    band = pb.RiskBand.Name(answer.score.band).removeprefix("RISK_BAND_").lower()
    assert f"probability {answer.score.probability:.4f}, {band} alert band" in first
    assert second.startswith("Observation/") and second.endswith(f"= {answer.score.pews.total}")
    assert vitals and all(line.startswith("Observation/vital-") for line in vitals)
    assert device.startswith("Device/") and answer.score.model.sha256 in device


async def test_score_from_files_agrees_with_the_api_and_stores_nothing(deterioration_target: str, tmp_path: Path) -> None:
    patient = write(tmp_path / "patient.json", patient_json("p-cli-stateless"))
    observations = write(tmp_path / "observations.json", observations_json("s"))
    at = NOW - timedelta(hours=1)
    done = await run_cli(
        "call", "deterioration", "score", "--patient", patient, "--observations", observations, "--at", iso(at),
        "--json", "--target", deterioration_target, "--insecure-development",
    )
    assert done.returncode == 0, done.stderr
    printed = json_format.Parse(done.stdout, pb.ScoreObservationsResponse())

    request = pb.ScoreObservationsRequest(
        patient=json_format.ParseDict(patient_json("p-cli-stateless"), pb.Patient()),
        observations=[json_format.ParseDict(o, pb.Observation()) for o in observations_json("s")],
    )
    request.at.FromDatetime(at)
    async with grpc.aio.insecure_channel(deterioration_target) as channel:
        stub = pb_grpc.DeteriorationServiceStub(channel)
        direct = await stub.ScoreObservations(request)
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # scoring stored no patient
            await stub.GetLatestRisk(pb.GetLatestRiskRequest(patient_id="p-cli-stateless"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert printed.score.probability == pytest.approx(direct.score.probability, abs=1e-12)
    assert printed.score.pews == direct.score.pews and printed.score.band == direct.score.band

    readable = await run_cli(
        "call", "deterioration", "score", "--patient", patient, "--observations", "-", "--at", iso(at),
        "--target", deterioration_target, "--insecure-development", stdin=json.dumps(observations_json("s")),
    )
    assert readable.returncode == 0, readable.stderr
    assert readable.stdout.startswith(
        f"patient p-cli-stateless: P(deterioration within 24 h) = {direct.score.probability:.4f}"
    )
    assert "(not stored)" in readable.stdout.splitlines()[0]


async def test_info_and_the_example(deterioration_target: str) -> None:
    info = await run_cli("call", "deterioration", "info", "--json", "--target", deterioration_target, "--insecure-development")
    model = json_format.Parse(info.stdout, pb.GetModelInfoResponse())
    assert model.horizon_hours == 24 and model.signals
    readable = await run_cli("call", "deterioration", "info", "--target", deterioration_target, "--insecure-development")
    assert readable.stdout.splitlines()[0] == f"model: {model.model.name} {model.model.version} sha256 {model.model.sha256}"
    assert "metrics:" in readable.stdout and "test.auroc" in readable.stdout
    assert f"gain over the best baseline ({model.best_baseline}): AUROC" in readable.stdout
    assert {line.split(":")[0] for line in readable.stdout.splitlines()} >= {"model", "pews", "pathway", "logistic"}

    example = await run_cli(
        "call", "deterioration", "example", "--json", "--target", deterioration_target, "--insecure-development",
    )
    assert example.returncode == 0, example.stderr
    parts = json.loads(example.stdout)
    record = json_format.ParseDict(parts["record"], pb.RecordObservationsResponse())
    latest = json_format.ParseDict(parts["latest"], pb.GetLatestRiskResponse())
    assert json_format.ParseDict(parts["register"], pb.RegisterPatientResponse()).patient.patient_id == "demo-0001"
    assert latest.WhichOneof("answer") == "unchanged" and latest.unchanged.version == record.score.version
