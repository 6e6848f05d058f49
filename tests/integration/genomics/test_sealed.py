"""Sealed calls to the genomics service: a whole VCF assessment sealed, answered as the plain call is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import code_pb2

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.services.api.genomics.v1 import genomics_pb2, genomics_pb2_grpc
from clinpred.services.common.model_store import register_package
from clinpred.services.common.sealed_channel import SealedStreamError
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.genomics.client import GenomicsClient, patient
from clinpred.services.genomics.service import genomics_mount
from clinpred.services.genomics.settings import GenomicsSettings
from tests.integration.genomics.conftest import MAX_PATIENTS, MAX_UPLOAD, vcf_text
from tests.integration.sealed_support import RawSealed, new_keyring, raised

SERVICE = "/clinpred.genomics.v1.GenomicRiskService/"


@pytest.fixture(scope="module")
async def target(breast_package: ModelPackage, scoring_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    register_package(breast_package)
    keys = new_keyring(tmp_path_factory.mktemp("sealed-genomics") / "keys")
    settings = GenomicsSettings(
        scoring_dir=scoring_dir, max_upload_bytes=MAX_UPLOAD, max_batch_size=MAX_PATIENTS, sealing_keys_dir=keys
    )
    server, port = await start_inprocess_server(genomics_mount(settings))
    yield f"127.0.0.1:{port}"
    await server.stop(grace=None)


async def test_a_sealed_assessment_equals_the_plain_one(target: str, pgs37: ScoringFile) -> None:
    vcf = vcf_text(pgs37, 3, seed=21)
    patients = [patient(52, "female", sample_id="person-001")]

    def both() -> list[tuple[object, ...]]:
        answers = []
        for sealed in (False, True):
            with GenomicsClient(target, sealed=sealed) as client:
                answers.append((client.assess(vcf, "GRCh37", patients), client.list_scores(), client.model_info()))
        return answers

    plain, sealed = await asyncio.to_thread(both)
    assert sealed == plain
    assert plain[0].samples[0].risks[0].score_sum != 0  # type: ignore[attr-defined]


async def test_sealed_violations_equal_the_plain_ones(target: str) -> None:
    def both() -> list[object]:
        errors = []
        for sealed in (False, True):
            with GenomicsClient(target, sealed=sealed) as client:
                errors.append(raised(lambda: client.assess(b"not a vcf", "GRCh37", [patient(52, "female")])))
        return errors

    plain, sealed = await asyncio.to_thread(both)
    assert sealed == plain
    assert plain.code == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


async def test_uploads_and_encrypted_scoring_are_refused_sealed(target: str, pgs37: ScoringFile) -> None:
    def refused() -> object:
        sender = RawSealed(grpc.insecure_channel(target), genomics_pb2_grpc.GenomicRiskServiceStub, genomics_pb2)
        return sender.status(*sender.seal(SERVICE + "AssessVcfUpload", b""))

    status = await asyncio.to_thread(refused)
    assert status.code == code_pb2.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "seal AssessVcf instead" in str(status)
    with GenomicsClient(target, sealed=True) as client, pytest.raises(SealedStreamError):
        client.upload(vcf_text(pgs37, 1, seed=3), genomics_pb2.Assessment())
