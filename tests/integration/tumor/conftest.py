from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from sklearn.datasets import load_breast_cancer

from clinpred.pilots.common.model_package import ModelPackage, latest_package
from clinpred.services.api.tumor.v1 import tumor_pb2_grpc
from clinpred.services.common.model_store import register_package
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.tumor.service import tumor_mount
from clinpred.services.tumor.settings import TumorSettings
from tests.conftest import MODELS, served_package

MAX_BATCH = 64
# The boosted-stumps package: no longer the default, still loadable and selectable by name.
BOOSTER_NAME = "wdbc-xgboost"


@pytest.fixture(scope="session")
def tumor_package() -> ModelPackage:
    return served_package("tumor", TumorSettings().model_name, TumorSettings().model_version)


@pytest.fixture(scope="session")
async def tumor_target(tumor_package: ModelPackage) -> AsyncIterator[str]:
    register_package(tumor_package)
    settings = TumorSettings(max_batch_size=MAX_BATCH)
    server, port = await start_inprocess_server(tumor_mount(settings))
    yield f"127.0.0.1:{port}"
    await server.stop(grace=None)


@pytest.fixture(scope="session")
def booster_package() -> ModelPackage:
    return latest_package(MODELS, "tumor", BOOSTER_NAME)


@pytest.fixture(scope="session")
async def booster_target(booster_package: ModelPackage) -> AsyncIterator[str]:
    """A server on the boosted stumps, chosen as a deployment chooses them: CLINPRED_TUMOR_MODEL_NAME."""
    register_package(booster_package)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CLINPRED_TUMOR_MODEL_NAME", BOOSTER_NAME)
        env.setenv("CLINPRED_TUMOR_MODEL_VERSION", booster_package.identity.version)
        settings = TumorSettings(max_batch_size=MAX_BATCH)
    server, port = await start_inprocess_server(tumor_mount(settings))
    yield f"127.0.0.1:{port}"
    await server.stop(grace=None)


@pytest.fixture
async def booster_stub(booster_target: str) -> AsyncIterator[tumor_pb2_grpc.TumorClassificationServiceStub]:
    async with grpc.aio.insecure_channel(booster_target) as channel:
        yield tumor_pb2_grpc.TumorClassificationServiceStub(channel)


@pytest.fixture
async def tumor_stub(tumor_target: str) -> AsyncIterator[tumor_pb2_grpc.TumorClassificationServiceStub]:
    async with grpc.aio.insecure_channel(tumor_target) as channel:
        yield tumor_pb2_grpc.TumorClassificationServiceStub(channel)


@pytest.fixture(scope="session")
def wdbc_cases(tumor_package: ModelPackage) -> list[tuple[dict[str, float], str]]:
    """Real WDBC cases as (features by schema name, true class)."""
    names = [f["name"] for f in tumor_package.read_json("schema.json")["features"]]
    data = load_breast_cancer()
    truth = {0: "malignant", 1: "benign"}
    return [
        ({n: float(v) for n, v in zip(names, row)}, truth[int(label)]) for row, label in zip(data.data, data.target)
    ]
