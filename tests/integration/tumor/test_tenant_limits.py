"""One tenant flooding the tumour service does not starve another: per-tenant rate and concurrency.

Over mutual TLS with a policy, as deployed; the flood is refused RESOURCE_EXHAUSTED with a
google.rpc.RetryInfo saying when to retry, while the other tenant's calls during it succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clinpred.cli.certificates import issue_client_certificate, write_mutual_tls_folder
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.audit import write_key_file
from clinpred.services.common.model_store import register_package
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.tumor.service import tumor_mount
from clinpred.services.tumor.settings import TumorSettings

POLICY = """
version = 1
[[grants]]
tenant = "busy-hospital"
clients = ["batch-job"]
scopes = ["clinpred/tumor.classify"]
[[grants]]
tenant = "quiet-hospital"
clients = ["pathology"]
scopes = ["clinpred/tumor.classify"]
"""
RATE, BURST = 5.0, 5


@pytest.fixture(scope="module")
async def limited(tumor_package: ModelPackage, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, Path]]:
    register_package(tumor_package)
    folder = tmp_path_factory.mktemp("limits")
    tls = folder / "tls"
    write_mutual_tls_folder(tls, hosts=["127.0.0.1"])
    (folder / "policy.toml").write_text(POLICY)
    write_key_file(folder / "audit.key")
    settings = TumorSettings(
        development_plaintext=False,
        policy_file=folder / "policy.toml",
        audit_key_file=folder / "audit.key",
        audit_dir=folder / "audit",
        rate_per_second=RATE,
        rate_burst=BURST,
    )
    credentials = grpc.ssl_server_credentials(
        [((tls / "server.key").read_bytes(), (tls / "server.crt").read_bytes())],
        root_certificates=(tls / "ca.crt").read_bytes(),
        require_client_auth=True,
    )
    server, port = await start_inprocess_server(tumor_mount(settings), credentials=credentials)
    yield f"127.0.0.1:{port}", tls
    await server.stop(grace=None)


def _channel(target: str, tls: Path, tenant: str, client: str) -> grpc.aio.Channel:
    issued = issue_client_certificate(tls, tenant, client)
    credentials = grpc.ssl_channel_credentials(
        (tls / "ca.crt").read_bytes(), issued.key.read_bytes(), issued.certificate.read_bytes()
    )
    return grpc.aio.secure_channel(target, credentials)


async def test_a_flooding_tenant_is_throttled_and_the_other_is_served(
    limited: tuple[str, Path], wdbc_cases: list[tuple[dict[str, float], str]]
) -> None:
    target, tls = limited
    request = tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(case_id="c", features=wdbc_cases[0][0]))
    async with (
        _channel(target, tls, "busy-hospital", "batch-job") as busy,
        _channel(target, tls, "quiet-hospital", "pathology") as quiet,
    ):
        flooder = tumor_pb2_grpc.TumorClassificationServiceStub(busy)
        other = tumor_pb2_grpc.TumorClassificationServiceStub(quiet)

        async def attempt(stub: tumor_pb2_grpc.TumorClassificationServiceStub) -> grpc.aio.AioRpcError | None:
            try:
                await stub.Classify(request, timeout=30)
            except grpc.aio.AioRpcError as error:
                return error
            return None

        flood = [asyncio.create_task(attempt(flooder)) for _ in range(60)]
        meanwhile = [await attempt(other) for _ in range(BURST)]
        flooded = await asyncio.gather(*flood)

    assert meanwhile == [None] * BURST, "the quiet tenant's calls all succeed during the flood"
    refused = [error for error in flooded if error is not None]
    # At most the burst plus what the rate refilled during the flood got through.
    assert len(refused) >= 60 - BURST - 20
    assert {error.code() for error in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    status = rpc_status.from_call(refused[0])
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details if detail.Is(retry.DESCRIPTOR))
    assert 0 < retry.retry_delay.ToTimedelta().total_seconds() <= 1 / RATE + 1e-6
