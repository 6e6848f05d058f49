"""Serving pins the model version: a newer registered package of the same name changes nothing until
CLINPRED_TUMOR_MODEL_VERSION names it (promotion), and an unknown version refuses to start."""

from __future__ import annotations

import shutil

import grpc
import pytest

from clinpred.pilots.common.errors import ModelUnavailable
from clinpred.pilots.common.model_package import ModelPackage, ModelPackageWriter
from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.model_store import register_package
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.tumor.service import tumor_mount
from clinpred.services.tumor.settings import TumorSettings

NEWER = "9.0.0"


@pytest.fixture(scope="module")
def newer_registered(tumor_package: ModelPackage, tmp_path_factory: pytest.TempPathFactory) -> ModelPackage:
    """The released package and a newer version of it, both registered, as `clinpred train tumor` leaves them."""
    register_package(tumor_package)
    writer = ModelPackageWriter(tmp_path_factory.mktemp("models"), "tumor", tumor_package.identity.name, NEWER)
    for name in tumor_package.manifest["files"]:
        shutil.copy2(tumor_package.file(name), writer.path(name))
    newer = writer.finish(tumor_package.metadata)
    register_package(newer)
    return newer


async def served_model(settings: TumorSettings) -> tuple[str, str]:
    server, port = await start_inprocess_server(tumor_mount(settings))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = await tumor_pb2_grpc.TumorClassificationServiceStub(channel).GetModelInfo(tumor_pb2.GetModelInfoRequest())
        return info.model.version, info.model.sha256
    finally:
        await server.stop(grace=None)


async def test_a_newer_registered_version_is_served_only_once_the_setting_names_it(
    newer_registered: ModelPackage, tumor_package: ModelPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLINPRED_TUMOR_MODEL_VERSION", raising=False)
    assert await served_model(TumorSettings()) == (tumor_package.identity.version, tumor_package.identity.sha256)
    monkeypatch.setenv("CLINPRED_TUMOR_MODEL_VERSION", NEWER)
    assert await served_model(TumorSettings()) == (NEWER, newer_registered.identity.sha256)


async def test_an_unknown_version_refuses_to_start_naming_the_registered_ones(
    newer_registered: ModelPackage, tumor_package: ModelPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLINPRED_TUMOR_MODEL_VERSION", "7.7.7")
    with pytest.raises(ModelUnavailable) as refused:
        await start_inprocess_server(tumor_mount(TumorSettings()))
    name = tumor_package.identity.name
    assert f"model tumor-{name}:7.7.7 is not in the BentoML model store" in refused.value.message
    assert f"{tumor_package.identity.version}, {NEWER}" in refused.value.message
    assert "CLINPRED_TUMOR_MODEL_VERSION" in refused.value.message


def test_every_service_pins_a_committed_package_and_genomics_pins_each_further_model() -> None:
    from pydantic import ValidationError

    from clinpred.services.common.settings import ServiceSettings
    from clinpred.services.deterioration.settings import DeteriorationSettings
    from clinpred.services.genomics.settings import GenomicsSettings
    from tests.conftest import MODELS

    services: list[tuple[str, ServiceSettings]] = [
        ("tumor", TumorSettings()), ("deterioration", DeteriorationSettings()), ("genomics", GenomicsSettings())
    ]
    for pilot, settings in services:
        package = ModelPackage.open(MODELS / pilot / settings.model_name / settings.model_version)
        assert package.identity.version == settings.model_version
    pinned = GenomicsSettings(additional_models=["prostate-pgs000662:1.0.0"])
    assert pinned.pinned_models() == [("breast-pgs000004", GenomicsSettings().model_version), ("prostate-pgs000662", "1.0.0")]
    with pytest.raises(ValidationError, match="NAME:VERSION"):
        GenomicsSettings(additional_models=["prostate-pgs000662"])
