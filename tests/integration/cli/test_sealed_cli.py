"""`clinpred call ... --sealed`: the same answers and the same error reports as plain calls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.common.model_store import register_package
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.deterioration.service import deterioration_mount
from clinpred.services.deterioration.settings import DeteriorationSettings
from clinpred.services.tumor.service import tumor_mount
from clinpred.services.tumor.settings import TumorSettings
from tests.conftest import served_package
from tests.integration.cli.conftest import run_cli
from tests.integration.sealed_support import new_keyring


@pytest.fixture(scope="module")
async def sealed_targets(tumor_package: ModelPackage, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, str]]:
    register_package(tumor_package)
    register_package(served_package("deterioration", DeteriorationSettings().model_name, DeteriorationSettings().model_version))
    folder = tmp_path_factory.mktemp("sealed-cli")
    tumor_settings = TumorSettings(sealing_keys_dir=new_keyring(folder / "tumor-keys"))
    deterioration_settings = DeteriorationSettings(
        database_url=f"sqlite:///{folder / 'risk.db'}", sealing_keys_dir=new_keyring(folder / "deterioration-keys")
    )
    servers = [
        await start_inprocess_server(tumor_mount(tumor_settings)),
        await start_inprocess_server(deterioration_mount(deterioration_settings)),
    ]
    yield {"tumor": f"127.0.0.1:{servers[0][1]}", "deterioration": f"127.0.0.1:{servers[1][1]}"}
    for server, _ in servers:
        await server.stop(grace=None)


async def test_a_sealed_classification_prints_what_the_plain_one_prints(sealed_targets: dict[str, str]) -> None:
    common = ("call", "tumor", "classify", "--example", "--target", sealed_targets["tumor"], "--insecure-development")
    plain = await run_cli(*common, "--json")
    sealed = await run_cli(*common, "--json", "--sealed")
    assert (plain.returncode, sealed.returncode) == (0, 0), sealed.stderr
    assert json.loads(sealed.stdout) == json.loads(plain.stdout)
    readable = await run_cli(*common, "--sealed")
    assert readable.returncode == 0 and "case example-1: malignant" in readable.stdout


async def test_a_sealed_error_is_reported_as_the_plain_one(sealed_targets: dict[str, str], tmp_path: Path) -> None:
    features = tmp_path / "features.json"
    features.write_text(json.dumps({"mean_radius": -1.0}))
    common = ("call", "tumor", "classify", "--features", str(features), "--target", sealed_targets["tumor"],
              "--insecure-development")
    plain = await run_cli(*common)
    sealed = await run_cli(*common, "--sealed")
    assert plain.returncode == sealed.returncode == 3
    assert sealed.stderr == plain.stderr and "INVALID_ARGUMENT" in plain.stderr


async def test_a_sealed_stream_is_a_usage_error(sealed_targets: dict[str, str]) -> None:
    done = await run_cli("call", "deterioration", "watch", "--ward", "onc-a", "--target", sealed_targets["deterioration"],
                         "--insecure-development", "--sealed", timeout=60)
    assert done.returncode == 2, done.stderr
    assert "WatchRisk streams" in done.stderr
