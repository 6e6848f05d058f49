"""The deterioration service on PostgreSQL against its floor and against plain psycopg inserts.

    .venv/bin/python -m bench.deterioration [--quick] [--postgres-url URL]

Two scenarios, each with 16 concurrent clients in a closed loop (one connection each), in rounds whose
side order rotates:

- polling: `GetLatestRisk` with `known_version` set to the patient's latest version (the answer an app
  polling every few seconds gets most of the time: "unchanged"), against the floor, grpc.health.v1 Check
  on the same running deterioration server through the same client;
- recording: `RecordObservations` with 10 new observations of the client's own patient (each call stores
  them and re-scores the patient), against plain psycopg: 10 rows inserted with `executemany` and a commit,
  over one connection per client, into a table of the same database.

The database is a fresh one made for the run on the PostgreSQL server of `--postgres-url` and dropped
afterwards. Server CPU per call is our server's process tree; database CPU per call is the PostgreSQL
backends serving the run's database (found in `pg_stat_activity`), for both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/deterioration.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc
import psutil
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tqdm import tqdm

from bench import load
from bench.processes import LOOPBACK, ManagedServer, free_ports, without_tenant_limits
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".bench" / "run"
DEFAULT_POSTGRES_URL = os.environ.get("CLINPRED_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
READY_LINE = "clinpred is serving"
OURS, FLOOR, PSYCOPG = "ours", "floor", "psycopg"
OBSERVATION_STEP = dt.timedelta(seconds=5)
INSERT = (
    "INSERT INTO bench_observation (patient_id, observation_id, observed_at, heart_rate, respiratory_rate,"
    " temperature_c, spo2) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
TABLE = (
    "CREATE TABLE bench_observation (patient_id text NOT NULL, observation_id text NOT NULL,"
    " observed_at timestamptz NOT NULL, heart_rate double precision, respiratory_rate double precision,"
    " temperature_c double precision, spo2 double precision, PRIMARY KEY (patient_id, observation_id))"
)


@dataclass(frozen=True)
class Plan:
    rounds: int = 40
    clients: int = 16
    poll_calls: int = 480  # per block, all clients
    record_calls: int = 64  # per block, all clients
    observations_per_call: int = 10
    warmup_calls: int = 64
    max_seconds: float = 90.0

    def block_calls(self, scenario: str) -> int:
        return self.poll_calls if scenario == "polling" else self.record_calls


QUICK = Plan(rounds=2, poll_calls=64, record_calls=32, warmup_calls=16, max_seconds=10.0)


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    sides: tuple[str, ...]
    calls: dict[str, str]
    items_per_call: int
    unit: str


def scenarios(plan: Plan) -> list[Scenario]:
    n = plan.observations_per_call
    return [
        Scenario(
            "polling",
            f"polling the latest risk, {plan.clients} concurrent clients",
            (OURS, FLOOR),
            {OURS: "GetLatestRisk (known_version: unchanged)", FLOOR: load.FLOOR_CALL.replace("our", "the same")},
            1,
            "calls",
        ),
        Scenario(
            "recording",
            f"recording {n} observations, {plan.clients} patients at once",
            (OURS, PSYCOPG),
            {OURS: f"RecordObservations ({n} observations, re-scored)", PSYCOPG: f"psycopg: {n} INSERTs + COMMIT"},
            n,
            "observations",
        ),
    ]


@dataclass
class SideBlocks:
    blocks: list[load.Block] = field(default_factory=list)
    database_cpu: list[float] = field(default_factory=list)


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A database of its own on the server of `admin_url`, dropped afterwards."""
    name = f"clinpred_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def deterioration_server(port: int, metrics_port: int, database_url: str, log_path: Path) -> ManagedServer:
    argv = [
        str(Path(sys.executable).with_name("clinpred")),
        "serve",
        "deterioration",
        "--port",
        str(port),
        "--metrics-port",
        str(metrics_port),
        "--api-workers",
        "1",
        "--insecure-development",
    ]
    env = dict(os.environ)
    env["CLINPRED_STATE_DIR"] = str(STATE / "clinpred-deterioration")
    env["CLINPRED_DETERIORATION_DATABASE_URL"] = database_url
    return ManagedServer("clinpred deterioration", argv, log_path, env=without_tenant_limits(env, "deterioration"))


def backend_pids(connection: psycopg.Connection[Any], database: str) -> list[int]:
    rows = connection.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)).fetchall()
    return [int(r[0]) for r in rows]


def processes_cpu(pids: Sequence[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
    return out


def patient(k: int) -> pb.Patient:
    return pb.Patient(
        patient_id=f"bench-{k:03d}",
        birth_date="2016-03-01",
        sex="female" if k % 2 else "male",
        diagnosis_group="all",
        treatment_intensity="medium",
        central_line=True,
        ward="bench",
        team="bench",
    )


class Observations:
    """New observations per patient, 5 s apart, ending before now; plausible vital signs."""

    def __init__(self, patients: int, per_call: int, capacity: int) -> None:
        self.per_call = per_call
        self.start = dt.datetime.now(dt.UTC) - OBSERVATION_STEP * (capacity + 10)
        self.next = [0] * patients

    def values(self, i: int) -> dict[str, float]:
        return {
            "heart_rate": 100.0 + (i * 7) % 40,
            "respiratory_rate": 22.0 + (i * 3) % 10,
            "temperature_c": 36.8 + ((i * 5) % 15) / 10,
            "spo2": 93.0 + (i % 6),
        }

    def take(self, k: int) -> list[tuple[str, dt.datetime, dict[str, float]]]:
        first = self.next[k]
        self.next[k] += self.per_call
        return [(f"o{i}", self.start + OBSERVATION_STEP * i, self.values(i)) for i in range(first, first + self.per_call)]

    def request(self, k: int) -> pb.RecordObservationsRequest:
        out = pb.RecordObservationsRequest(patient_id=patient(k).patient_id)
        for observation_id, at, values in self.take(k):
            message = out.observations.add(observation_id=observation_id, **values)
            message.observed_at.FromDatetime(at)
        return out


class Driver:
    def __init__(self, plan: Plan, target: str, database_url: str, server_pid: int) -> None:
        self.plan = plan
        self.target = target
        self.database_url = database_url
        self.database = database_url.rsplit("/", 1)[1]
        self.server_pid = server_pid
        self.channels = [grpc.aio.insecure_channel(target, options=load.CHANNEL_OPTIONS) for _ in range(plan.clients)]
        self.stubs = [pb_grpc.DeteriorationServiceStub(c) for c in self.channels]
        self.health = [health_pb2_grpc.HealthStub(c) for c in self.channels]
        self.versions = [0] * plan.clients
        capacity = (plan.rounds + 2) * plan.record_calls * plan.observations_per_call // plan.clients + plan.warmup_calls * 10
        self.observations = Observations(plan.clients, plan.observations_per_call, capacity)
        self.sql: list[psycopg.AsyncConnection[Any]] = []
        self.monitor = psycopg.connect(database_url, autocommit=True)
        self.me = psutil.Process()
        self.unchanged = 0
        self.polls = 0

    async def open(self) -> None:
        self.sql = [await psycopg.AsyncConnection.connect(self.database_url) for _ in range(self.plan.clients)]
        async with self.sql[0].transaction():
            await self.sql[0].execute(TABLE)
        for k, stub in enumerate(self.stubs):
            await stub.RegisterPatient(pb.RegisterPatientRequest(patient=patient(k)), timeout=load.CALL_TIMEOUT)
            answer = await stub.RecordObservations(self.observations.request(k), timeout=load.CALL_TIMEOUT)
            self.versions[k] = answer.score.version

    async def close(self) -> None:
        for connection in self.sql:
            await connection.close()
        for channel in self.channels:
            await channel.close()
        self.monitor.close()

    async def poll(self, k: int) -> None:
        answer = await self.stubs[k].GetLatestRisk(
            pb.GetLatestRiskRequest(patient_id=patient(k).patient_id, known_version=self.versions[k]), timeout=load.CALL_TIMEOUT
        )
        self.polls += 1
        if answer.WhichOneof("answer") == "unchanged":
            self.unchanged += 1
        else:
            self.versions[k] = answer.score.version

    async def floor(self, k: int) -> None:
        await self.health[k].Check(health_pb2.HealthCheckRequest(), timeout=load.CALL_TIMEOUT)

    async def record(self, k: int) -> None:
        answer = await self.stubs[k].RecordObservations(self.observations.request(k), timeout=load.CALL_TIMEOUT)
        if answer.stored != self.plan.observations_per_call:
            raise RuntimeError(f"stored {answer.stored} of {self.plan.observations_per_call} observations")
        self.versions[k] = answer.score.version

    async def insert(self, k: int) -> None:
        rows = [
            (patient(k).patient_id, f"sql-{oid}", at, v["heart_rate"], v["respiratory_rate"], v["temperature_c"], v["spo2"])
            for oid, at, v in self.observations.take(k)
        ]
        connection = self.sql[k]
        async with connection.cursor() as cursor:
            await cursor.executemany(INSERT, rows)
        await connection.commit()

    def call_of(self, scenario: str, side: str) -> Callable[[int], Awaitable[None]]:
        return {OURS: self.poll if scenario == "polling" else self.record, FLOOR: self.floor, PSYCOPG: self.insert}[side]

    async def block(self, scenario: str, side: str, calls: int) -> tuple[load.Block, float]:
        call = self.call_of(scenario, side)
        per = max(1, calls // self.plan.clients)

        async def client(k: int) -> tuple[list[float], int]:
            latencies, errors = [], 0
            for _ in range(per):
                t0 = time.perf_counter()
                try:
                    await call(k)
                except (grpc.aio.AioRpcError, psycopg.Error):
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)
            return latencies, errors

        pids_before = backend_pids(self.monitor, self.database)
        db0 = processes_cpu(pids_before)
        cpu0 = load.tree_cpu_seconds(self.server_pid)
        me0 = self.me.cpu_times()
        t0 = time.perf_counter()
        results = await asyncio.gather(*(client(k) for k in range(self.plan.clients)))
        wall = time.perf_counter() - t0
        me1 = self.me.cpu_times()
        cpu = load.tree_cpu_seconds(self.server_pid) - cpu0
        db1 = processes_cpu(backend_pids(self.monitor, self.database))
        # The monitor's own backend answers pg_stat_activity: a small, equal cost on every side.
        database_cpu = sum(v - db0.get(pid, 0.0) for pid, v in db1.items())
        block = load.Block(
            latencies=[x for lat, _ in results for x in lat],
            wall=wall,
            cpu=cpu,
            client_cpu=(me1.user + me1.system) - (me0.user + me0.system),
            errors=sum(e for _, e in results),
        )
        return block, database_cpu


async def drive(plan: Plan, target: str, database_url: str, server_pid: int) -> dict[str, Any]:
    driver = Driver(plan, target, database_url, server_pid)
    await driver.open()
    planned = scenarios(plan)
    measured: dict[str, dict[str, SideBlocks]] = {s.key: {side: SideBlocks() for side in s.sides} for s in planned}
    try:
        total = plan.rounds * sum(len(s.sides) * plan.block_calls(s.key) for s in planned)
        with tqdm(total=total, unit="call", desc="deterioration: warm-up", dynamic_ncols=True) as bar:
            for s in planned:
                for side in s.sides:
                    await driver.block(s.key, side, plan.warmup_calls)
            driver.unchanged = driver.polls = 0
            began = time.monotonic()
            rounds_done = 0
            for r in range(plan.rounds):
                bar.set_description(f"deterioration: round {r + 1}/{plan.rounds}")
                for s in planned:
                    for side in load.rotated(s.sides, r):
                        block, database_cpu = await driver.block(s.key, side, plan.block_calls(s.key))
                        measured[s.key][side].blocks.append(block)
                        measured[s.key][side].database_cpu.append(database_cpu)
                        bar.update(plan.block_calls(s.key))
                rounds_done = r + 1
                if time.monotonic() - began > plan.max_seconds:
                    break
            if rounds_done < plan.rounds:
                bar.total = bar.n
                bar.set_description(f"deterioration: stopped after {rounds_done} rounds (time budget)")
                bar.refresh()
    finally:
        await driver.close()
    return {
        "plan": plan.__dict__ | {"rounds_done": rounds_done},
        "scenarios": [s.__dict__ for s in planned],
        "unchanged_share": driver.unchanged / driver.polls if driver.polls else float("nan"),
        "measurements": {
            key: {
                side: {
                    "latency_us": [[round(x * 1e6) for x in b.latencies] for b in sb.blocks],
                    "wall_seconds": [round(b.wall, 6) for b in sb.blocks],
                    "server_cpu_seconds": [round(b.cpu, 4) for b in sb.blocks],
                    "client_cpu_seconds": [round(b.client_cpu, 4) for b in sb.blocks],
                    "database_cpu_seconds": [round(x, 4) for x in sb.database_cpu],
                    "errors": sum(b.errors for b in sb.blocks),
                }
                for side, sb in sides.items()
            }
            for key, sides in measured.items()
        },
    }


def measure(plan: Plan, postgres_url: str = DEFAULT_POSTGRES_URL, startup_timeout: float = 240.0) -> dict[str, Any]:
    """Fresh database, start the server, drive both scenarios, stop; the part's results."""
    port, metrics_port = free_ports(2)
    log = STATE / "logs" / "clinpred-deterioration.log"
    with fresh_database(postgres_url) as database_url:
        server = deterioration_server(port, metrics_port, database_url, log)
        print(f"deterioration: starting the server on a fresh database (log {log}) ...", flush=True)
        with server:
            server.wait_until(lambda: READY_LINE in log.read_text(errors="replace"), startup_timeout, "'clinpred is serving'")
            with psycopg.connect(postgres_url) as c:
                version = str(c.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            outcome = asyncio.run(drive(plan, f"{LOOPBACK}:{port}", database_url, server.pid))
    outcome["postgresql"] = version
    outcome["database"] = database_url.rsplit("/", 1)[1]
    outcome["command"] = "clinpred serve deterioration --api-workers 1 --insecure-development"
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.deterioration", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run; numbers mean little")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="PostgreSQL server to make the run's database on")
    parser.add_argument("--max-seconds", type=float, default=Plan.max_seconds, help="time budget of the rounds")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan(max_seconds=args.max_seconds)
    print(json.dumps(measure(plan, args.postgres_url), indent=1)[:2000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
