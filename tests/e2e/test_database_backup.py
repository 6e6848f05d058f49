"""Backup and restore as an operator does them: a database with several patients' scores, backed up with
`clinpred db backup`, restored with `clinpred db restore` into a new database, answers the same latest
risks from the real service (`clinpred serve` -> `bentoml serve-grpc`, not allowed to migrate), and the
audit trail it holds verifies intact. A service that must not migrate refuses a database that is behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import psycopg
import pytest

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as pb_grpc
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.deterioration.client import DeteriorationClient, observation
from clinpred.services.deterioration.service import deterioration_mount
from clinpred.services.deterioration.settings import DeteriorationSettings
from tests.conftest import REPO, served_package
from tests.e2e.conftest import start_clinpred_serve, stop
from tests.integration.deterioration.conftest import ADMIN_URL
from tests.support import free_port

pytestmark = pytest.mark.e2e
CLINPRED = str(Path(sys.executable).with_name("clinpred"))
NOW = datetime.now(UTC).replace(microsecond=0)
# The tenant of the client certificate `clinpred serve` makes on first use.
TENANT = "demo"
PATIENTS = {"bk-calm": (100, 98), "bk-unwell": (150, 93), "bk-septic": (185, 88)}  # heart rate, SpO2


@pytest.fixture
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(source, target): two SQLite files, or two new PostgreSQL databases."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'risk.db'}", f"sqlite:///{tmp_path / 'restored' / 'risk.db'}"
        return
    names = [f"clinpred_backup_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def clinpred(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINPRED_DETERIORATION_")}
    done = subprocess.run([CLINPRED, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def patient(patient_id: str) -> pb.Patient:
    return pb.Patient(
        patient_id=patient_id, birth_date="2016-05-02", sex="female", diagnosis_group="all",
        treatment_intensity="high", central_line=True, ward="onc-backup", team="t1",
    )


async def recorded_latest_risks(database_url: str) -> dict[str, pb.GetLatestRiskResponse]:
    """Several patients, two batches each, recorded through the service; their latest risks as it answers them."""
    settings = DeteriorationSettings(database_url=database_url, development_tenant=TENANT)
    server, port = await start_inprocess_server(deterioration_mount(settings))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.DeteriorationServiceStub(channel)
            latest = {}
            for patient_id, (heart_rate, spo2) in PATIENTS.items():
                await stub.RegisterPatient(pb.RegisterPatientRequest(patient=patient(patient_id)))
                for batch in range(2):
                    readings = [
                        observation(f"{patient_id}-{batch}-{i}", NOW - timedelta(hours=6 - 3 * batch - i),
                                    heart_rate=heart_rate + 5 * batch, spo2=spo2, temperature_c=37.9, respiratory_rate=30)
                        for i in range(2)
                    ]
                    await stub.RecordObservations(pb.RecordObservationsRequest(patient_id=patient_id, observations=readings))
                latest[patient_id] = await stub.GetLatestRisk(pb.GetLatestRiskRequest(patient_id=patient_id))
    finally:
        await server.stop(grace=None)
    return latest


@pytest.mark.parametrize("databases", ["sqlite", "postgresql"], indirect=True)
async def test_a_restored_backup_answers_the_same_latest_risks(
    databases: tuple[str, str], tmp_path: Path, deterioration_package: ModelPackage
) -> None:
    source, target = databases
    before = await recorded_latest_risks(source)
    assert len({answer.score.probability for answer in before.values()}) == len(PATIENTS)  # distinct patients' risks
    assert all(answer.score.version == 2 for answer in before.values())

    clinpred("db", "backup", "--database", source, "--out", str(tmp_path / "risk.backup"))
    restored = json.loads(clinpred("db", "restore", str(tmp_path / "risk.backup"), "--database", target, "--json").stdout)
    assert restored["up_to_date"] is True
    # The audit trail lives in the same database: restored with it, every chain intact.
    key_file = DeteriorationSettings().audit_dir / "audit.key"
    verified = json.loads(clinpred("audit", "verify", "--database", target, "--key-file", str(key_file), "--json").stdout)
    assert verified["intact"] is True and verified["records"] >= len(PATIENTS) * 4

    # Not allowed to migrate: it serves only because the restored schema is current.
    env = {"CLINPRED_DETERIORATION_DATABASE_URL": target, "CLINPRED_DETERIORATION_MIGRATE_ON_START": "false"}
    running = start_clinpred_serve("deterioration", tmp_path / "state", api_workers=1, env_extra=env)
    try:
        with DeteriorationClient(running.target, tls=running.tls) as client:
            after = {patient_id: client.latest(patient_id) for patient_id in PATIENTS}
    finally:
        stop(running)
    assert after == before


def test_a_service_that_must_not_migrate_refuses_a_database_behind_naming_the_command(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    database = tmp_path / "empty" / "risk.db"
    env = dict(
        os.environ, CLINPRED_STATE_DIR=str(tmp_path / "state"), PYTHONUNBUFFERED="1",
        CLINPRED_DETERIORATION_DATABASE_URL=f"sqlite:///{database}", CLINPRED_DETERIORATION_MIGRATE_ON_START="false",
    )
    env.pop("BENTOML_HOME", None)
    done = subprocess.run(
        [CLINPRED, "serve", "deterioration", "--port", str(port), "--metrics-port", str(metrics_port)],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "the deterioration database's schema is older than this release's" in output
    assert "Run `clinpred db migrate`" in output
    assert "deterioration cannot start: " in output and "stopped while starting" in output  # ended, not left waiting
    assert not database.exists() or "risk_scores" not in database.read_bytes().decode("latin-1")


@pytest.fixture(scope="module")
def deterioration_package() -> ModelPackage:
    from clinpred.services.common.model_store import register_package

    settings = DeteriorationSettings()
    package = served_package("deterioration", settings.model_name, settings.model_version)
    register_package(package)
    return package
