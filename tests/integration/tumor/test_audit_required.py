"""No answer without its audit record: a trail that cannot be written fails the call UNAVAILABLE."""

from __future__ import annotations

from pathlib import Path

import grpc

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.audit import AuditKeys, read_records, verify, write_key_file
from clinpred.services.common.model_store import register_package
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.tumor.service import tumor_mount
from clinpred.services.tumor.settings import TumorSettings
from tests.conftest import served_package


async def _classify_once(settings: TumorSettings, features: dict[str, float]) -> grpc.aio.AioRpcError | None:
    register_package(served_package("tumor", settings.model_name, settings.model_version))
    server, port = await start_inprocess_server(tumor_mount(settings))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = tumor_pb2_grpc.TumorClassificationServiceStub(channel)
            request = tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(case_id="c", features=features))
            try:
                await stub.Classify(request)
            except grpc.aio.AioRpcError as error:
                return error
            return None
    finally:
        await server.stop(grace=None)


async def test_an_unwritable_trail_refuses_the_call(
    tumor_package: ModelPackage, wdbc_cases: list[tuple[dict[str, float], str]], tmp_path: Path
) -> None:
    key = tmp_path / "audit.key"
    write_key_file(key)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the audit folder should be")
    settings = TumorSettings(audit_key_file=key, audit_dir=blocker / "audit")
    refused = await _classify_once(settings, wdbc_cases[0][0])
    assert refused is not None and refused.code() == grpc.StatusCode.UNAVAILABLE
    assert "audit trail" in (refused.details() or "")


async def test_a_writable_trail_records_the_answered_call(
    tumor_package: ModelPackage, wdbc_cases: list[tuple[dict[str, float], str]], tmp_path: Path
) -> None:
    key = tmp_path / "audit.key"
    write_key_file(key)
    settings = TumorSettings(audit_key_file=key, audit_dir=tmp_path / "audit")
    assert await _classify_once(settings, wdbc_cases[0][0]) is None
    stored = read_records(directory=tmp_path / "audit")
    assert verify(stored.records_by_writer, stored.heads, AuditKeys.from_file(key)).intact
    (record,) = [r for chain in stored.records_by_writer.values() for r in chain]
    assert (record.entry.method, record.entry.outcome) == ("/clinpred.tumor.v1.TumorClassificationService/Classify", "OK")
    assert record.entry.model.startswith(tumor_package.identity.name)
