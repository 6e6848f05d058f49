"""The load generator: one grpc.aio client process driving every side on loopback.

Sides: ours (the tumour service), the peer (MLServer) and the floor (grpc.health.v1
Check on our own running server: a trivial handler on the same server stack, with its
interceptors, through the same client). Every scenario runs in rounds. Within a round
each side gets one block of calls, back to back, in an order that rotates from round
to round, so slow drifts of a shared machine hit every side alike. Only the call
itself is inside the timed region (request messages are built beforehand; responses
are parsed by grpc as part of the call, on every side). Loops are bounded by call counts, each call by a deadline, and the
whole run by a time budget checked after every round.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import ours
from bench.peer import V2_SERVICE, V2Messages
from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc

CALL_TIMEOUT = 30.0
# Separate connections per client: without this, channels to one target share a subchannel.
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", 64 * 1024 * 1024)]

OURS = "ours"
PEER = "peer"
FLOOR = "floor"
SIDES = (OURS, PEER, FLOOR)


@dataclass(frozen=True)
class Plan:
    """How much load each block sends (per side, per round)."""

    rounds: int = 60
    single_calls: int = 120
    concurrency: tuple[int, ...] = (4, 16, 64)
    # Calls of one concurrent block, shared out among its clients (at least 5 each).
    concurrent_calls: int = 320
    # Concurrent clients of the prediction-only reference (0: left out).
    prediction_only_clients: int = 16
    batch_size: int = 100
    batch_calls: int = 8
    stream_messages: int = 120
    warmup_calls: int = 150
    max_seconds: float = 240.0
    seed: int = 20261122

    def calls_per_client(self, clients: int) -> int:
        return max(5, self.concurrent_calls // clients)

    @property
    def max_clients(self) -> int:
        return max((1, self.prediction_only_clients, *self.concurrency))

    def calls_per_round(self, prediction_only: bool = True) -> int:
        """Calls of every side in one round of all scenarios (for the progress bar)."""
        return sum(len(s.sides) * self.block_calls(s) for s in scenarios(self, prediction_only))

    def block_calls(self, scenario: Scenario) -> int:
        """Calls of one side's block in `scenario`."""
        if scenario.key == "batch":
            return self.batch_calls
        if scenario.key == "stream":
            return self.stream_messages
        if scenario.clients == 1:
            return self.single_calls
        return scenario.clients * self.calls_per_client(scenario.clients)


FLOOR_CALL = "grpc.health.v1 Check on our server"


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    ours_call: str
    peer_call: str
    items_per_call: int
    clients: int
    sides: tuple[str, ...] = (OURS, PEER)
    # Ours asks for the answer without explanation (the request's detail level "none").
    prediction_only: bool = False


def concurrency_key(clients: int) -> str:
    return "single" if clients == 1 else f"concurrent-{clients}"


def scenarios(plan: Plan, prediction_only: bool = True) -> list[Scenario]:
    """Every scenario of a round; `prediction_only` False when our server offers no detail level."""
    out = [
        Scenario(
            concurrency_key(c),
            "one case, sequential" if c == 1 else f"one case, {c} concurrent clients",
            "Classify (1 case, full explanation)",
            "ModelInfer (1 row)",
            1,
            c,
            (OURS, PEER, FLOOR),
        )
        for c in sorted({1, *plan.concurrency})
    ]
    if prediction_only and plan.prediction_only_clients > 0:
        c = plan.prediction_only_clients
        out.append(
            Scenario(
                f"prediction-only-{c}",
                f"one case, {c} concurrent clients, prediction only",
                "Classify (1 case, detail none)",
                "ModelInfer (1 row)",
                1,
                c,
                prediction_only=True,
            )
        )
    out += [
        Scenario(
            "batch",
            f"batch of {plan.batch_size}, sequential",
            f"ClassifyBatch ({plan.batch_size} cases)",
            f"ModelInfer ({plan.batch_size} rows)",
            plan.batch_size,
            1,
        ),
        Scenario(
            "stream",
            "stream, one message in flight",
            "ClassifyStream (per message)",
            "ModelInfer (1 row), sequential unary",
            1,
            1,
        ),
    ]
    return out


@dataclass
class Block:
    """One side's calls in one round of one scenario."""

    latencies: list[float]
    wall: float
    cpu: float  # the server's process tree
    client_cpu: float  # this load-generator process
    errors: int


@dataclass
class Measurement:
    scenario: str
    side: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def rounds(self) -> list[list[float]]:
        return [b.latencies for b in self.blocks]

    @property
    def latencies(self) -> list[float]:
        return [x for b in self.blocks for x in b.latencies]

    @property
    def calls(self) -> int:
        return sum(len(b.latencies) for b in self.blocks)

    @property
    def wall(self) -> float:
        return sum(b.wall for b in self.blocks)

    @property
    def cpu(self) -> float:
        return sum(b.cpu for b in self.blocks)

    @property
    def errors(self) -> int:
        return sum(b.errors for b in self.blocks)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants, as far as they are alive."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            t = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


class Cases:
    """WDBC cases in a seeded random order, as rows in the schema's feature order."""

    def __init__(self, feature_names: Sequence[str], seed: int) -> None:
        from clinpred.pilots.tumor.data import load_wdbc

        data = load_wdbc()
        if list(data.feature_names) != list(feature_names):
            raise RuntimeError("the served schema's feature order differs from the WDBC data set's")
        rng = np.random.default_rng(seed)
        self.rows = np.asarray(data.x, dtype=np.float64)[rng.permutation(len(data.x))]
        self.feature_names = list(feature_names)

    def row(self, i: int) -> np.ndarray:
        return self.rows[i % len(self.rows)]

    def batch(self, j: int, size: int) -> np.ndarray:
        start = (j * size) % len(self.rows)
        idx = (np.arange(size) + start) % len(self.rows)
        return self.rows[idx]


class OursClient:
    def __init__(self, target: str) -> None:
        self.channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.stub = tumor_pb2_grpc.TumorClassificationServiceStub(self.channel)

    async def single(self, request: tumor_pb2.ClassifyRequest) -> tumor_pb2.ClassifyResponse:
        return await self.stub.Classify(request, timeout=CALL_TIMEOUT)

    async def batch(self, request: tumor_pb2.ClassifyBatchRequest) -> tumor_pb2.ClassifyBatchResponse:
        return await self.stub.ClassifyBatch(request, timeout=CALL_TIMEOUT)

    async def model_info(self) -> tumor_pb2.GetModelInfoResponse:
        return await self.stub.GetModelInfo(tumor_pb2.GetModelInfoRequest(), timeout=CALL_TIMEOUT)

    async def stream_pingpong(self, requests: Sequence[tumor_pb2.ClassifyStreamRequest]) -> tuple[list[float], int]:
        """One stream; each message is written only after the previous answer arrived."""
        latencies: list[float] = []
        call = self.stub.ClassifyStream(timeout=CALL_TIMEOUT + len(requests))
        try:
            for request in requests:
                t0 = time.perf_counter()
                await call.write(request)
                response = await call.read()
                t1 = time.perf_counter()
                if response is grpc.aio.EOF:
                    return latencies, len(requests) - len(latencies)
                latencies.append(t1 - t0)
            await call.done_writing()
            while await call.read() is not grpc.aio.EOF:
                pass
            if await call.code() != grpc.StatusCode.OK:
                return latencies, 1
        except grpc.aio.AioRpcError:
            return latencies, len(requests) - len(latencies)
        return latencies, 0

    async def close(self) -> None:
        await self.channel.close()


class FloorClient:
    """The floor: the cheapest call our server answers (grpc.health.v1 Check), through the same stack."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.stub = health_pb2_grpc.HealthStub(self.channel)

    async def single(self, request: health_pb2.HealthCheckRequest) -> health_pb2.HealthCheckResponse:
        return await self.stub.Check(request, timeout=CALL_TIMEOUT)

    async def close(self) -> None:
        await self.channel.close()


class PeerClient:
    def __init__(self, target: str, messages: V2Messages) -> None:
        self.channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.messages = messages
        self.infer = self.channel.unary_unary(
            f"/{V2_SERVICE}/ModelInfer",
            request_serializer=messages.ModelInferRequest.SerializeToString,
            response_deserializer=messages.ModelInferResponse.FromString,
        )

    async def single(self, request: Any) -> Any:
        return await self.infer(request, timeout=CALL_TIMEOUT)

    batch = single

    async def close(self) -> None:
        await self.channel.close()


async def timed_sequential(call: Callable[[Any], Awaitable[Any]], requests: Sequence[Any]) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    for request in requests:
        t0 = time.perf_counter()
        try:
            await call(request)
        except grpc.aio.AioRpcError:
            errors += 1
            continue
        latencies.append(time.perf_counter() - t0)
    return latencies, errors


async def timed_concurrent(
    calls: Sequence[Callable[[Any], Awaitable[Any]]], requests: Sequence[Sequence[Any]]
) -> tuple[list[float], int]:
    """Closed loop: client k sends requests[k] one after another; all clients at once."""
    results = await asyncio.gather(*(timed_sequential(c, r) for c, r in zip(calls, requests, strict=True)))
    return [x for lat, _ in results for x in lat], sum(e for _, e in results)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass
class Requests:
    """Every request message of a run, built before any timing."""

    ours_single: list[tumor_pb2.ClassifyRequest]
    peer_single: list[Any]
    ours_batch: list[tumor_pb2.ClassifyBatchRequest]
    peer_batch: list[Any]
    ours_stream: list[tumor_pb2.ClassifyStreamRequest]
    ours_prediction_only: list[tumor_pb2.ClassifyRequest]  # empty when our server has no detail level
    floor: list[health_pb2.HealthCheckRequest]


def build_requests(cases: Cases, messages: V2Messages, plan: Plan) -> Requests:
    n = len(cases.rows)
    names = cases.feature_names
    n_batches = max(1, n // plan.batch_size)
    return Requests(
        ours_single=[ours.classify_request(names, cases.row(i), f"case-{i}") for i in range(n)],
        peer_single=[messages.infer_request(cases.row(i)[None, :]) for i in range(n)],
        ours_batch=[ours.batch_request(names, cases.batch(j, plan.batch_size), f"b{j}") for j in range(n_batches)],
        peer_batch=[messages.infer_request(cases.batch(j, plan.batch_size)) for j in range(n_batches)],
        ours_stream=[ours.stream_request(names, cases.row(i), f"s-{i}") for i in range(n)],
        ours_prediction_only=[
            r for r in (ours.prediction_only(ours.classify_request(names, cases.row(i), f"p-{i}")) for i in range(n)) if r
        ],
        floor=[health_pb2.HealthCheckRequest()],
    )


def rotated(sides: Sequence[str], round_index: int) -> list[str]:
    """The order of the sides in a round: each side goes first in turn."""
    k = round_index % len(sides)
    return [*sides[k:], *sides[:k]]


def cycle(items: Sequence[Any], start: int, count: int) -> list[Any]:
    return [items[(start + k) % len(items)] for k in range(count)]


class LoadGenerator:
    def __init__(
        self,
        plan: Plan,
        ours_target: str,
        peer_target: str,
        messages: V2Messages,
        ours_pid: int,
        peer_pid: int,
        ours_metrics_port: int,
    ) -> None:
        self.plan = plan
        self.ours_target = ours_target
        self.peer_target = peer_target
        self.messages = messages
        self.pids = {OURS: ours_pid, PEER: peer_pid, FLOOR: ours_pid}
        self.ours_metrics_port = ours_metrics_port
        self.ours_clients: list[OursClient] = []
        self.peer_clients: list[PeerClient] = []
        self.floor_clients: list[FloorClient] = []
        self.cursor = 0
        self.stages: dict[str, dict[str, tuple[float, float]]] = {}
        self.load_average: list[tuple[float, float, float]] = []
        self.me = psutil.Process()

    async def open(self) -> None:
        n = self.plan.max_clients
        self.ours_clients = [OursClient(self.ours_target) for _ in range(n)]
        self.peer_clients = [PeerClient(self.peer_target, self.messages) for _ in range(n)]
        self.floor_clients = [FloorClient(self.ours_target) for _ in range(n)]

    async def close(self) -> None:
        clients: list[OursClient | PeerClient | FloorClient] = [*self.ours_clients, *self.peer_clients, *self.floor_clients]
        for client in clients:
            await client.close()

    async def feature_names(self) -> list[str]:
        info = await self.ours_clients[0].model_info()
        return [f.name for f in info.features]

    async def check_same_model(self, requests: Requests, count: int = 50) -> dict[str, float]:
        """Peer's P(malignant) vs sigmoid of our explanation's margin (the uncalibrated booster's log-odds).

        Both come from the same booster.json; agreement to float32 precision
        shows the two servers answer with the same model on the same rows.
        """
        diffs = []
        for i in range(min(count, len(requests.ours_single))):
            answer = (await self.ours_clients[0].single(requests.ours_single[i])).classification
            peer = self.messages.predictions(await self.peer_clients[0].single(requests.peer_single[i]))
            diffs.append(abs(sigmoid(answer.explanation.margin) - peer[0]))
        ours_batch = (await self.ours_clients[0].batch(requests.ours_batch[0])).classifications
        peer_batch = self.messages.predictions(await self.peer_clients[0].batch(requests.peer_batch[0]))
        batch_diffs = [abs(sigmoid(a.explanation.margin) - p) for a, p in zip(ours_batch, peer_batch, strict=True)]
        return {"cases": float(len(diffs) + len(batch_diffs)), "max_abs_diff": float(max(diffs + batch_diffs))}

    def payload_sizes(self, requests: Requests) -> dict[str, dict[str, int]]:
        """Serialized bytes of one request and its answer, per side and kind (answers fetched in `sizes`)."""
        return {
            "request_single": {
                OURS: len(requests.ours_single[0].SerializeToString()),
                PEER: len(requests.peer_single[0].SerializeToString()),
            },
            "request_batch": {
                OURS: len(requests.ours_batch[0].SerializeToString()),
                PEER: len(requests.peer_batch[0].SerializeToString()),
            },
        }

    async def response_sizes(self, requests: Requests) -> dict[str, dict[str, int]]:
        ours_single = await self.ours_clients[0].single(requests.ours_single[0])
        peer_single = await self.peer_clients[0].single(requests.peer_single[0])
        ours_batch = await self.ours_clients[0].batch(requests.ours_batch[0])
        peer_batch = await self.peer_clients[0].batch(requests.peer_batch[0])
        return {
            "response_single": {OURS: ours_single.ByteSize(), PEER: peer_single.ByteSize()},
            "response_batch": {OURS: ours_batch.ByteSize(), PEER: peer_batch.ByteSize()},
        }

    async def warm_up(self, requests: Requests, progress: Callable[[int], None]) -> None:
        """Untimed: connections, first-call paths, caches; every kind of call on every client."""
        plan = self.plan
        for side_clients, single, batch in (
            (self.ours_clients, requests.ours_single, requests.ours_batch),
            (self.peer_clients, requests.peer_single, requests.peer_batch),
        ):
            for client in side_clients:
                await timed_sequential(client.single, cycle(single, 0, max(1, plan.warmup_calls // len(side_clients))))
                await timed_sequential(client.batch, cycle(batch, 0, 2))
            progress(plan.warmup_calls)
        for floor in self.floor_clients:
            await timed_sequential(floor.single, cycle(requests.floor, 0, 5))
        answer = await self.floor_clients[0].single(requests.floor[0])
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            raise RuntimeError("our server does not report SERVING on grpc.health.v1: no floor to measure")
        if requests.ours_prediction_only:
            await timed_sequential(self.ours_clients[0].single, cycle(requests.ours_prediction_only, 0, 20))
        await self.ours_clients[0].stream_pingpong(cycle(requests.ours_stream, 0, 20))

    def _pool(self, scenario: Scenario, side: str, requests: Requests) -> tuple[Sequence[Any], Sequence[Any]]:
        """(clients, request pool) of one side in one scenario."""
        if side == FLOOR:
            return self.floor_clients, requests.floor
        if side == PEER:
            return self.peer_clients, requests.peer_batch if scenario.key == "batch" else requests.peer_single
        if scenario.key == "batch":
            return self.ours_clients, requests.ours_batch
        return self.ours_clients, requests.ours_prediction_only if scenario.prediction_only else requests.ours_single

    async def _block(self, scenario: Scenario, side: str, requests: Requests) -> Block:
        start = self.cursor
        clients, pool = self._pool(scenario, side, requests)
        count = self.plan.block_calls(scenario)
        run: Callable[[], Awaitable[tuple[list[float], int]]]
        if scenario.key == "stream" and side == OURS:
            messages = cycle(requests.ours_stream, start, count)
            run = lambda: self.ours_clients[0].stream_pingpong(messages)  # noqa: E731
        elif scenario.key == "batch":
            client = clients[0]
            batch = cycle(pool, start, count)
            run = lambda: timed_sequential(client.batch, batch)  # noqa: E731
        else:
            per = count // scenario.clients
            per_client = [cycle(pool, start + k * per, per) for k in range(scenario.clients)]
            calls = [c.single for c in clients[: scenario.clients]]
            run = lambda: timed_concurrent(calls, per_client)  # noqa: E731

        scrape = side == OURS and scenario.key in ("single", "batch")
        before = ours.stage_totals(self.ours_metrics_port) if scrape else {}
        cpu0 = tree_cpu_seconds(self.pids[side])
        client0 = self.me.cpu_times()
        t0 = time.perf_counter()
        latencies, errors = await run()
        wall = time.perf_counter() - t0
        client1 = self.me.cpu_times()
        cpu = tree_cpu_seconds(self.pids[side]) - cpu0
        client_cpu = (client1.user + client1.system) - (client0.user + client0.system)
        if scrape:
            delta = ours.stage_delta(before, ours.stage_totals(self.ours_metrics_port))
            acc = self.stages.setdefault(scenario.key, {})
            for name, (s, c) in delta.items():
                s0, c0 = acc.get(name, (0.0, 0.0))
                acc[name] = (s0 + s, c0 + c)
        return Block(latencies=latencies, wall=wall, cpu=cpu, client_cpu=client_cpu, errors=errors)

    async def run(
        self, requests: Requests, progress: Callable[[int], None], on_round: Callable[[int], None]
    ) -> dict[str, dict[str, Measurement]]:
        plan = self.plan
        planned = scenarios(plan, bool(requests.ours_prediction_only))
        results = {s.key: {side: Measurement(s.key, side) for side in s.sides} for s in planned}
        began = time.monotonic()
        for r in range(plan.rounds):
            self.load_average.append(psutil.getloadavg())
            for scenario in planned:
                for side in rotated(scenario.sides, r):
                    block = await self._block(scenario, side, requests)
                    results[scenario.key][side].blocks.append(block)
                    progress(plan.block_calls(scenario))
                self.cursor += 997  # a different slice of cases next time (prime step over 569 cases)
            on_round(r + 1)
            if time.monotonic() - began > plan.max_seconds and r + 1 < plan.rounds:
                break
        return results
