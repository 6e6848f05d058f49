"""Access control as deployed: `clinpred serve deterioration` (bentoml serve-grpc, two API workers,
mutual TLS) with a hospital's policy. Two tenants, cross-tenant reads NOT_FOUND, a forbidden
method PERMISSION_DENIED, an unknown client refused, and the audit trail verified afterwards."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from clinpred.cli.certificates import issue_client_certificate, write_mutual_tls_folder
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as pb_grpc
from clinpred.services.common.channel import ClientTls, open_channel
from clinpred.services.deterioration.client import observation
from tests.e2e.conftest import RunningServe, start_clinpred_serve, stop

pytestmark = pytest.mark.e2e

POLICY = """
version = 1
[[grants]]
tenant = "st-olav"
clients = ["home-app"]
scopes = ["system/Patient.write", "system/Observation.write", "system/RiskAssessment.read"]
[[grants]]
tenant = "haukeland"
clients = ["home-app", "ward-board"]
scopes = ["system/RiskAssessment.read"]
[[grants]]
tenant = "haukeland"
clients = ["home-app"]
scopes = ["system/Patient.write", "system/Observation.write"]
"""
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Deployed:
    serving: RunningServe
    tls: Path
    audit_key: Path
    database: Path

    def stub(self, tenant: str, client: str) -> pb_grpc.DeteriorationServiceStub:
        issued = issue_client_certificate(self.tls, tenant, client)
        tls = ClientTls(self.tls / "ca.crt", issued.certificate, issued.key)
        return pb_grpc.DeteriorationServiceStub(open_channel(self.serving.target, tls))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    folder = tmp_path_factory.mktemp("hospital")
    tls = folder / "tls"
    write_mutual_tls_folder(tls, hosts=["localhost", "127.0.0.1"])
    (folder / "policy.toml").write_text(POLICY)
    key = folder / "audit.key"
    subprocess.run([sys.executable, "-m", "clinpred.cli.main", "audit", "keygen", str(key)], check=True, capture_output=True)
    database = folder / "risk.db"
    env = {
        "CLINPRED_DETERIORATION_POLICY_FILE": str(folder / "policy.toml"),
        "CLINPRED_DETERIORATION_AUDIT_KEY_FILE": str(key),
        "CLINPRED_DETERIORATION_DATABASE_URL": f"sqlite:///{database}",
    }
    serving = start_clinpred_serve("deterioration", folder / "state", api_workers=2, extra=("--tls-dir", str(tls)), env_extra=env)
    yield Deployed(serving, tls, key, database)
    stop(serving)


def _patient(patient_id: str) -> pb.Patient:
    message = pb.Patient(
        patient_id=patient_id,
        birth_date="2018-03-14",
        sex="male",
        diagnosis_group="aml",
        treatment_intensity="high",
        central_line=True,
        ward="onc-a",
        team="team-1",
    )
    message.chemotherapy_at.add().FromDatetime(NOW - timedelta(days=9))
    return message


def _observations() -> list[pb.Observation]:
    return [
        observation(f"o-{i}", NOW - timedelta(hours=6 - i), heart_rate=110, respiratory_rate=24, temperature_c=37.2, spo2=97)
        for i in range(3)
    ]


def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code()  # type: ignore[no-any-return,attr-defined]


def test_two_tenants_one_service(deployed: Deployed) -> None:
    olav, hauk = deployed.stub("st-olav", "home-app"), deployed.stub("haukeland", "home-app")
    for stub in (olav, hauk):  # several calls: both API workers take some
        stub.RegisterPatient(pb.RegisterPatientRequest(patient=_patient("child-17")), timeout=30)
        answer = stub.RecordObservations(
            pb.RecordObservationsRequest(patient_id="child-17", observations=_observations()), timeout=30
        )
        assert answer.stored == 3 and answer.score.version == 1
    olav.RegisterPatient(pb.RegisterPatientRequest(patient=_patient("olav-only")), timeout=30)
    olav.RecordObservations(pb.RecordObservationsRequest(patient_id="olav-only", observations=_observations()), timeout=30)

    # Haukeland cannot see St. Olav's patient, and cannot tell it exists.
    foreign = lambda: hauk.GetLatestRisk(pb.GetLatestRiskRequest(patient_id="olav-only"), timeout=30)  # noqa: E731
    missing = lambda: hauk.GetLatestRisk(pb.GetLatestRiskRequest(patient_id="nobody"), timeout=30)  # noqa: E731
    assert _code(foreign) == _code(missing) == grpc.StatusCode.NOT_FOUND

    # A ward board of Haukeland may read risks but not register patients.
    board = deployed.stub("haukeland", "ward-board")
    assert board.GetLatestRisk(pb.GetLatestRiskRequest(patient_id="child-17"), timeout=30).score.version == 1
    forbidden = lambda: board.RegisterPatient(pb.RegisterPatientRequest(patient=_patient("x")), timeout=30)  # noqa: E731
    assert _code(forbidden) == grpc.StatusCode.PERMISSION_DENIED

    # A client the policy does not name is refused.
    stranger = deployed.stub("st-olav", "unknown-system")
    unknown = lambda: stranger.GetLatestRisk(pb.GetLatestRiskRequest(patient_id="child-17"), timeout=30)  # noqa: E731
    assert _code(unknown) == grpc.StatusCode.PERMISSION_DENIED


def test_the_audit_trail_verifies_after_the_run(deployed: Deployed) -> None:
    verified = subprocess.run(
        [
            sys.executable,
            "-m",
            "clinpred.cli.main",
            "audit",
            "verify",
            "--database",
            f"sqlite:///{deployed.database}",
            "--key-file",
            str(deployed.audit_key),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    import json

    report = json.loads(verified.stdout)
    assert report["intact"] is True and report["records"] == 11  # every call of the test above, refusals included
    # Each API worker writes its own chain; which of the two workers the kernel hands a connection is
    # its choice, so the calls may all have reached one (tests/integration/audit runs several writers).
    assert 1 <= report["writers"] <= 2, "at most one chain per API worker"
