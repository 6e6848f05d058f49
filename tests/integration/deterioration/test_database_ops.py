"""`clinpred db` against real databases: migrating as a release step (several at once, applied once),
the status a deployment checks, a service that must not migrate refusing an old schema, and what
restore refuses. Each test has a database of its own: an SQLite file or a new PostgreSQL database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.deterioration.store.sql_store import STORE_SCHEMA
from clinpred.services.common.audit.sql_log import AUDIT_SCHEMA
from clinpred.services.deterioration.database import SchemaNotCurrent
from clinpred.services.deterioration.handlers import DeteriorationHandler
from clinpred.services.deterioration.settings import DeteriorationSettings
from tests.conftest import REPO
from tests.integration.deterioration.conftest import ADMIN_URL

CLINPRED = str(Path(sys.executable).with_name("clinpred"))
STORE_MIGRATIONS = [m.stem for m in sorted(STORE_SCHEMA.migrations.glob("*.sql")) if ".rollback" not in m.name]
AUDIT_MIGRATIONS = [m.stem for m in sorted(AUDIT_SCHEMA.migrations.glob("*.sql")) if ".rollback" not in m.name]
MIGRATIONS = STORE_MIGRATIONS + AUDIT_MIGRATIONS
MIGRATORS = 4


def new_postgres_database() -> tuple[str, str]:
    name = f"clinpred_dbops_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name, f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_postgres_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh' / 'risk.db'}"
        return
    name, url = new_postgres_database()
    yield url
    drop_postgres_database(name)


def clinpred_db(*args: str) -> subprocess.CompletedProcess[str]:
    # Nothing of the developer's environment may pick the database: --database is given every time.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINPRED_DETERIORATION_")}
    return subprocess.run([CLINPRED, "db", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


def yoyo_rows(url: str, sql: str) -> list[tuple[object, ...]]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            return list(connection.execute(sql).fetchall())
    with psycopg.connect(url) as connection:
        return list(connection.execute(sql).fetchall())


def test_several_processes_migrating_at_once_all_succeed_and_apply_each_migration_once(fresh_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINPRED_DETERIORATION_")}
    migrators = [
        subprocess.Popen(
            [CLINPRED, "db", "migrate", "--database", fresh_url, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )
        for _ in range(MIGRATORS)
    ]
    outputs = [m.communicate(timeout=300) for m in migrators]
    assert [m.returncode for m in migrators] == [0] * MIGRATORS, [err for _, err in outputs]
    reports = [json.loads(out) for out, _ in outputs]
    applied = sorted(migration for report in reports for done in report["applied"].values() for migration in done)
    assert applied == sorted(MIGRATIONS)  # each once, by whichever process held yoyo's lock
    assert all(state["up_to_date"] for report in reports for state in report["schemas"])
    rows = yoyo_rows(fresh_url, "SELECT migration_id FROM _yoyo_migration")
    assert sorted(str(r[0]) for r in rows) == sorted(MIGRATIONS)
    logged = yoyo_rows(fresh_url, "SELECT migration_id FROM _yoyo_log WHERE operation = 'apply'")
    assert sorted(str(r[0]) for r in logged) == sorted(MIGRATIONS)


def test_status_fails_until_the_database_is_migrated(fresh_url: str) -> None:
    behind = clinpred_db("status", "--database", fresh_url, "--json")
    assert behind.returncode == 7, behind.stderr
    report = json.loads(behind.stdout)
    assert report["up_to_date"] is False
    assert [(s["schema"], s["current"], s["pending"]) for s in report["schemas"]] == [
        ("risk store", None, STORE_MIGRATIONS),
        ("audit trail", None, AUDIT_MIGRATIONS),
    ]
    assert "clinpred db migrate" in behind.stderr
    assert clinpred_db("migrate", "--database", fresh_url).returncode == 0
    current = clinpred_db("status", "--database", fresh_url)
    assert current.returncode == 0, current.stderr
    assert current.stdout.splitlines() == [
        f"risk store: current {STORE_MIGRATIONS[-1]}, newest {STORE_MIGRATIONS[-1]}",
        f"audit trail: current {AUDIT_MIGRATIONS[-1]}, newest {AUDIT_MIGRATIONS[-1]}",
    ]


def test_a_service_that_must_not_migrate_refuses_an_old_schema_naming_the_command_and_changes_nothing(
    fresh_url: str, deterioration_package: ModelPackage
) -> None:
    settings = DeteriorationSettings(database_url=fresh_url, migrate_on_start=False)
    with pytest.raises(SchemaNotCurrent) as refused:
        DeteriorationHandler(settings).load()
    assert "`clinpred db migrate`" in refused.value.message
    assert "CLINPRED_DETERIORATION_MIGRATE_ON_START" in refused.value.message
    assert "@" not in refused.value.message and "sqlite:" not in refused.value.message  # no URL, no credentials
    assert clinpred_db("status", "--database", fresh_url).returncode == 7  # it did not migrate
    assert clinpred_db("migrate", "--database", fresh_url).returncode == 0
    handler = DeteriorationHandler(settings)
    handler.load()
    assert handler.store.last_seq("default") == 0
    handler.store.close()


def test_restore_refuses_a_database_with_data_and_a_backup_of_the_other_kind(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'risk.db'}"
    assert clinpred_db("migrate", "--database", source).returncode == 0
    made = clinpred_db("backup", "--database", source, "--out", str(tmp_path / "risk.backup"))
    assert made.returncode == 0, made.stderr
    again = clinpred_db("backup", "--database", source, "--out", str(tmp_path / "risk.backup"))
    assert again.returncode == 3 and "--out: already exists" in again.stderr
    over = clinpred_db("restore", str(tmp_path / "risk.backup"), "--database", source)
    assert over.returncode == 3 and "--database: already exists" in over.stderr
    name, url = new_postgres_database()
    try:
        other_kind = clinpred_db("restore", str(tmp_path / "risk.backup"), "--database", url)
        assert other_kind.returncode == 3 and "is a sqlite backup; --database names a postgresql database" in other_kind.stderr
    finally:
        drop_postgres_database(name)
    (tmp_path / "notes.txt").write_text("not a backup")
    junk = clinpred_db("restore", str(tmp_path / "notes.txt"), "--database", f"sqlite:///{tmp_path / 'new.db'}")
    assert junk.returncode == 3 and "neither an SQLite database nor a pg_dump" in junk.stderr
    assert not (tmp_path / "new.db").exists()
