"""Real databases for the deterioration store: an SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.deterioration.store import DeteriorationRiskStore, open_store
from clinpred.services.common.model_store import register_package
from clinpred.services.deterioration.settings import DeteriorationSettings
from tests.conftest import served_package

# .ci/run points this at the machine's PostgreSQL; tests create and drop their own database in it.
ADMIN_URL = os.environ.get("CLINPRED_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"clinpred_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is required at {ADMIN_URL} (set CLINPRED_TEST_POSTGRES_URL): {error}")
    admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


def _drop_tables(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        tables = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        for (table,) in tables:
            connection.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'risk.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    _drop_tables(url)


@pytest.fixture
def store(store_url: str) -> Iterator[DeteriorationRiskStore]:
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def deterioration_package() -> ModelPackage:
    package = served_package("deterioration", DeteriorationSettings().model_name, DeteriorationSettings().model_version)
    register_package(package)
    return package


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A service's database, per test module: an SQLite file or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'risk.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    _drop_tables(url)
