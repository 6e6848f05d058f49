"""Two hospitals on one deterioration service over mutual TLS: each sees only its own patients.

Identities come from client certificates (`clinpred tls client`), grants from a policy file; the
audit trail records every call, succeeding or failing, and verifies intact afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from clinpred.cli.certificates import issue_client_certificate, write_mutual_tls_folder
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as pb_grpc
from clinpred.services.common.audit import AuditKeys, read_records, verify, write_key_file
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.deterioration.service import deterioration_mount
from clinpred.services.deterioration.settings import DeteriorationSettings
from tests.integration.deterioration.test_service import NOW, calm, patient

Stub = pb_grpc.DeteriorationServiceStub
POLICY = """
version = 1
[[grants]]
tenant = "st-olav"
clients = ["home-app"]
scopes = ["system/Patient.write", "system/Observation.write", "system/RiskAssessment.read"]
[[grants]]
tenant = "st-olav"
clients = ["ward-board"]
scopes = ["system/RiskAssessment.read", "clinpred/deterioration.watch"]
[[grants]]
tenant = "haukeland"
clients = ["home-app"]
scopes = ["system/Patient.write", "system/Observation.write", "system/RiskAssessment.read"]
"""


@dataclass
class Service:
    target: str
    tls: Path
    key_file: Path
    database_url: str

    def channel(self, tenant: str, client: str) -> grpc.aio.Channel:
        issued = self.tls / "clients" / tenant / f"{client}.crt"
        if not issued.exists():
            issue_client_certificate(self.tls, tenant, client)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(self.tls / "ca.crt").read_bytes(),
            private_key=issued.with_suffix(".key").read_bytes(),
            certificate_chain=issued.read_bytes(),
        )
        return grpc.aio.secure_channel(self.target, credentials)


@pytest.fixture(scope="module")
async def service(
    deterioration_package: ModelPackage, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Service]:
    folder = tmp_path_factory.mktemp("access")
    tls = folder / "tls"
    write_mutual_tls_folder(tls, hosts=["localhost", "127.0.0.1"])
    (folder / "policy.toml").write_text(POLICY)
    key_file = folder / "audit.key"
    write_key_file(key_file)
    settings = DeteriorationSettings(
        database_url=database_url,
        watch_poll_seconds=0.05,
        development_plaintext=False,
        policy_file=folder / "policy.toml",
        audit_key_file=key_file,
        ca_file=tls / "ca.crt",
        crl_file=tls / "crl.pem",
    )
    credentials = grpc.ssl_server_credentials(
        [((tls / "server.key").read_bytes(), (tls / "server.crt").read_bytes())],
        root_certificates=(tls / "ca.crt").read_bytes(),
        require_client_auth=True,
    )
    server, port = await start_inprocess_server(deterioration_mount(settings), credentials=credentials)
    yield Service(f"127.0.0.1:{port}", tls, key_file, database_url)
    await server.stop(grace=None)


async def _record(stub: Stub, patient_id: str, ward: str) -> pb.RecordObservationsResponse:
    await stub.RegisterPatient(pb.RegisterPatientRequest(patient=patient(patient_id, ward)))
    return await stub.RecordObservations(
        pb.RecordObservationsRequest(patient_id=patient_id, observations=[calm(1, 5), calm(2, 2)])
    )


async def _refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_tenants_see_only_their_own_patients(service: Service) -> None:
    async with service.channel("st-olav", "home-app") as a, service.channel("haukeland", "home-app") as b:
        olav, hauk = Stub(a), Stub(b)
        # Both hospitals may have a child-17: two patients, two histories.
        first = await _record(olav, "child-17", "onc-a")
        second = await _record(hauk, "child-17", "onc-b")
        assert first.stored == second.stored == 2 and first.score.version == second.score.version == 1
        await _record(olav, "only-at-st-olav", "onc-a")

        # Another tenant's patient answers exactly as a patient that does not exist.
        foreign = await _refused(hauk.GetLatestRisk(pb.GetLatestRiskRequest(patient_id="only-at-st-olav")))
        missing = await _refused(hauk.GetLatestRisk(pb.GetLatestRiskRequest(patient_id="nobody-anywhere")))
        assert foreign.code() == missing.code() == grpc.StatusCode.NOT_FOUND
        assert foreign.details() == missing.details()
        for call in (
            hauk.ListRiskHistory(pb.ListRiskHistoryRequest(patient_id="only-at-st-olav")),
            hauk.ExportFhir(pb.ExportFhirRequest(patient_id="only-at-st-olav")),
        ):
            assert (await _refused(call)).code() == grpc.StatusCode.NOT_FOUND
        # Recording for another tenant's patient cannot reach it either.
        stray = hauk.RecordObservations(pb.RecordObservationsRequest(patient_id="only-at-st-olav", observations=[calm(9, 1)]))
        assert (await _refused(stray)).code() == grpc.StatusCode.NOT_FOUND
        history = await olav.ListRiskHistory(pb.ListRiskHistoryRequest(patient_id="only-at-st-olav"))
        assert [s.version for s in history.scores] == [1]


async def test_a_ward_board_watches_only_its_tenant_and_may_not_write(service: Service) -> None:
    async with (
        service.channel("st-olav", "ward-board") as board_channel,
        service.channel("st-olav", "home-app") as olav_channel,
        service.channel("haukeland", "home-app") as hauk_channel,
    ):
        board, olav, hauk = Stub(board_channel), Stub(olav_channel), Stub(hauk_channel)
        # Both tenants have a ward named "shared-ward".
        watch = board.WatchRisk(pb.WatchRiskRequest(ward="shared-ward"))
        seen: list[str] = []

        async def read() -> None:
            async for answer in watch:
                seen.append(answer.score.patient_id)

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.3)
        await _record(hauk, "hauk-child", "shared-ward")
        await _record(olav, "olav-child", "shared-ward")
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        watch.cancel()
        reader.cancel()
        assert seen == ["olav-child"]

        denied = await _refused(board.RegisterPatient(pb.RegisterPatientRequest(patient=patient("x", "onc-a"))))
        assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "system/Patient.write" in denied.details()


async def test_an_identity_the_policy_does_not_know_is_refused_before_any_data(service: Service) -> None:
    async with service.channel("st-olav", "unknown-system") as channel:
        refused = await _refused(Stub(channel).GetLatestRisk(pb.GetLatestRiskRequest(patient_id="child-17")))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "child-17" not in refused.details()


async def test_every_call_is_in_an_intact_audit_trail_without_patient_ids(service: Service) -> None:
    async with service.channel("st-olav", "home-app") as channel:
        stub = Stub(channel)
        await _record(stub, "audited-child", "onc-a")
        await _refused(stub.GetLatestRisk(pb.GetLatestRiskRequest(patient_id="no-such-child")))
    stored = read_records(database=service.database_url)
    keys = AuditKeys.from_file(service.key_file)
    assert verify(stored.records_by_writer, stored.heads, keys).intact
    records = [r for chain in stored.records_by_writer.values() for r in chain]
    outcomes = {(r.entry.method.rsplit("/", 1)[-1], r.entry.outcome) for r in records if r.entry.tenant == "st-olav"}
    assert {("RegisterPatient", "OK"), ("RecordObservations", "OK"), ("GetLatestRisk", "NOT_FOUND")} <= outcomes, outcomes
    # A refused caller is recorded as who it was (its certificate was valid; its grant was not).
    refused = {(r.entry.tenant, r.entry.client) for r in records if r.entry.outcome == "PERMISSION_DENIED"}
    assert ("st-olav", "unknown-system") in refused and ("st-olav", "ward-board") in refused
    pseudonym = keys.pseudonym("st-olav", "audited-child")
    assert any(r.entry.patient_pseudonym == pseudonym and r.entry.model for r in records)
    text = b"".join(r.to_json() for r in records)
    assert b"audited-child" not in text and b"no-such-child" not in text
    assert all(r.recorded_at > NOW - timedelta(days=1) for r in records)
