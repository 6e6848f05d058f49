"""What an operator relies on, on the in-process server: a watcher that hangs up is counted as
CANCELLED (not UNKNOWN), and a mistyped CLINPRED_ variable is named at start, its value never."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import REGISTRY

from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as pb_grpc
from clinpred.services.common.model_store import register_package
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.deterioration.service import deterioration_mount
from clinpred.services.deterioration.settings import DeteriorationSettings
from clinpred.services.tumor.service import tumor_mount
from clinpred.services.tumor.settings import TumorSettings
from tests.conftest import served_package


def watch_calls(code: str) -> float:
    labels = {"service": "deterioration", "method": "WatchRisk", "code": code}
    return REGISTRY.get_sample_value("clinpred_grpc_requests_total", labels) or 0.0


@pytest.fixture
async def deterioration_target(tmp_path: Path) -> AsyncIterator[str]:
    settings = DeteriorationSettings(database_url=f"sqlite:///{tmp_path / 'risk.db'}", watch_poll_seconds=0.05)
    register_package(served_package("deterioration", settings.model_name, settings.model_version))
    server, port = await start_inprocess_server(deterioration_mount(settings))
    yield f"127.0.0.1:{port}"
    await server.stop(grace=None)


async def test_a_watch_the_client_cancels_is_counted_as_cancelled(deterioration_target: str) -> None:
    before = {code: watch_calls(code) for code in ("CANCELLED", "UNKNOWN", "OK")}
    async with grpc.aio.insecure_channel(deterioration_target) as channel:
        call = pb_grpc.DeteriorationServiceStub(channel).WatchRisk(pb.WatchRiskRequest(ward="a-ward-with-no-patients"))
        # The server polls the store every 0.05 s for new scores; let it poll a few times.
        await asyncio.sleep(0.5)
        assert not call.done()
        call.cancel()
    for _ in range(50):
        if watch_calls("CANCELLED") == before["CANCELLED"] + 1:
            break
        await asyncio.sleep(0.02)
    assert watch_calls("CANCELLED") == before["CANCELLED"] + 1
    assert (watch_calls("UNKNOWN"), watch_calls("OK")) == (before["UNKNOWN"], before["OK"])


async def test_a_mistyped_variable_is_named_at_start_with_the_closest_name_and_never_its_value(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CLINPRED_TUMOR_MAX_BATCH_SIZ", "s3cr3t-value")
    monkeypatch.setenv("CLINPRED_TEST_ANYTHING", "tests may set their own")
    register_package(served_package("tumor", TumorSettings().model_name, TumorSettings().model_version))
    with caplog.at_level(logging.WARNING, logger="clinpred.settings"):
        server, _ = await start_inprocess_server(tumor_mount(TumorSettings()))
    await server.stop(grace=None)
    # Only the names set here: the environment of whoever runs the tests may hold others.
    ours = [r for r in caplog.records if r.name == "clinpred.settings" and "CLINPRED_T" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in ours] == [
        (
            logging.WARNING,
            "CLINPRED_TUMOR_MAX_BATCH_SIZ is not a clinpred setting and is ignored (did you mean CLINPRED_TUMOR_MAX_BATCH_SIZE?)",
        )
    ]
    assert "s3cr3t" not in caplog.text
