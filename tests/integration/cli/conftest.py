"""`clinpred` as a process against real in-process servers on real sockets.

The servers run on this session's event loop, so tests await the CLI process in a thread
(`run_cli`) and the loop keeps answering the calls the process makes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clinpred.services.common.model_store import register_package
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.deterioration.service import deterioration_mount
from clinpred.services.deterioration.settings import DeteriorationSettings
from tests.conftest import REPO, served_package

# The tumour server, exactly as its own integration tests start it (genomics: in test_genomics_cli.py).
from tests.integration.tumor.conftest import tumor_package, tumor_target, wdbc_cases  # noqa: F401


def cli_process(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clinpred.cli.main", *args], input=stdin, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=timeout, cwd=REPO, check=False,
    )


async def run_cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
                  timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m clinpred.cli.main ARGS` as a person runs it; the event loop serves meanwhile."""
    return await asyncio.to_thread(cli_process, *args, stdin=stdin, env=env, timeout=timeout)


@pytest.fixture(scope="session")
async def deterioration_target(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    settings = DeteriorationSettings(database_url=f"sqlite:///{Path(tmp_path_factory.mktemp('cli-risk')) / 'risk.db'}")
    register_package(served_package("deterioration", settings.model_name, settings.model_version))
    server, port = await start_inprocess_server(deterioration_mount(settings))
    yield f"127.0.0.1:{port}"
    await server.stop(grace=None)
