"""Over mutual TLS with a policy, as deployed: a context registered by one tenant is not there for another,
which is answered exactly as for a digest never registered; each tenant's own registration serves it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tenseal as ts

from clinpred.cli.certificates import issue_client_certificate, write_mutual_tls_folder
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.genomics.encrypted import create_client_context, encrypt_dosages, public_context_bytes
from clinpred.pilots.genomics.evaluation_keys import NOT_REGISTERED_REASON
from clinpred.services.api.genomics.v1 import genomics_pb2
from clinpred.services.common.audit import write_key_file
from clinpred.services.common.channel import ClientTls
from clinpred.services.common.model_store import register_package
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.genomics.client import GenomicsClient, error_reason, layout_of
from clinpred.services.genomics.service import genomics_mount
from clinpred.services.genomics.settings import GenomicsSettings

POLICY = """
version = 1
[[grants]]
tenant = "st-olav"
clients = ["genetics"]
scopes = ["clinpred/genomics.encrypted"]
[[grants]]
tenant = "haukeland"
clients = ["genetics"]
scopes = ["clinpred/genomics.encrypted"]
"""


@pytest.fixture(scope="module")
async def secured(breast_package: ModelPackage, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, Path]]:
    register_package(breast_package)
    folder = tmp_path_factory.mktemp("keys-tenants")
    tls = folder / "tls"
    write_mutual_tls_folder(tls, hosts=["127.0.0.1"])
    (folder / "policy.toml").write_text(POLICY)
    write_key_file(folder / "audit.key")
    settings = GenomicsSettings(
        development_plaintext=False,
        policy_file=folder / "policy.toml",
        audit_key_file=folder / "audit.key",
        audit_dir=folder / "audit",
    )
    credentials = grpc.ssl_server_credentials(
        [((tls / "server.key").read_bytes(), (tls / "server.crt").read_bytes())],
        root_certificates=(tls / "ca.crt").read_bytes(),
        require_client_auth=True,
    )
    server, port = await start_inprocess_server(genomics_mount(settings), credentials=credentials)
    yield f"127.0.0.1:{port}", tls
    await server.stop(grace=None)


def client_of(target: str, tls: Path, tenant: str) -> GenomicsClient:
    issued = issue_client_certificate(tls, tenant, "genetics")
    return GenomicsClient(target, tls=ClientTls(tls / "ca.crt", issued.certificate, issued.key))


def scored(client: GenomicsClient, ciphertexts: list[bytes], digest: str) -> list[genomics_pb2.ScoreEncryptedResponse]:
    header = genomics_pb2.EncryptedScoreHeader(
        score="breast", ciphertext_lengths=[len(c) for c in ciphertexts], public_context_sha256=digest
    )
    requests = [genomics_pb2.ScoreEncryptedRequest(header=header)]
    requests += [
        genomics_pb2.ScoreEncryptedRequest(ciphertext_chunk=genomics_pb2.CiphertextChunk(index=i, data=blob))
        for i, blob in enumerate(ciphertexts)
    ]
    return list(client.stub.ScoreEncrypted(iter(requests), timeout=60))


async def test_another_tenant_cannot_use_a_registered_digest(secured: tuple[str, Path]) -> None:
    target, tls = secured
    context: ts.Context = create_client_context()
    public = public_context_bytes(context)
    digest = hashlib.sha256(public).hexdigest()

    def work() -> tuple[int, grpc.RpcError, grpc.RpcError, int]:
        with client_of(target, tls, "st-olav") as owner, client_of(target, tls, "haukeland") as other:
            layout = layout_of(owner.score_layout("breast"))
            ciphertexts = list(encrypt_dosages(context, np.ones(len(layout)), layout).ciphertexts)
            assert owner.register_evaluation_keys(public).public_context_sha256 == digest
            variants = scored(owner, ciphertexts, digest)[0].summary.variants
            with pytest.raises(grpc.RpcError) as foreign:
                scored(other, ciphertexts, digest)
            with pytest.raises(grpc.RpcError) as unknown:
                scored(other, ciphertexts, "0" * 64)
            # The other tenant's own registration of the very same bytes serves it.
            other.register_evaluation_keys(public)
            return variants, foreign.value, unknown.value, scored(other, ciphertexts, digest)[0].summary.variants

    variants, foreign, unknown, after = await asyncio.to_thread(work)
    assert variants == after == 313
    for error in (foreign, unknown):
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(error) == NOT_REGISTERED_REASON
    assert foreign.details() == unknown.details()
