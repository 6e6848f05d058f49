"""Per-tenant limits: token buckets on an injected clock, and slots for calls and streams."""

from __future__ import annotations

import asyncio
import threading

import pytest

from clinpred.pilots.common.errors import ResourceExhausted
from clinpred.services.common.limits import RateLimited, TenantRateLimiter, TenantSlots


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def refused(limiter: TenantRateLimiter, tenant: str, cost: float = 1.0) -> RateLimited:
    with pytest.raises(RateLimited) as raised:
        limiter.acquire(tenant, cost)
    return raised.value


def test_a_burst_then_refusal_with_the_time_until_the_next_token() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(rate_per_second=4.0, burst=5, clock=clock)
    for _ in range(5):
        limiter.acquire("st-olav")
    error = refused(limiter, "st-olav")
    assert isinstance(error, ResourceExhausted) and error.status == "RESOURCE_EXHAUSTED"
    assert error.retry_after_seconds == pytest.approx(0.25)
    assert "4 per second" in error.message and "st-olav" not in error.message
    clock.now += 0.1
    assert refused(limiter, "st-olav").retry_after_seconds == pytest.approx(0.15)


def test_tokens_come_back_at_the_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(rate_per_second=2.0, burst=3, clock=clock)
    for _ in range(3):
        limiter.acquire("t")
    clock.now += 0.5
    limiter.acquire("t")
    refused(limiter, "t")
    clock.now += 3600
    for _ in range(3):
        limiter.acquire("t")
    refused(limiter, "t")


def test_a_call_may_cost_more_than_one_token_and_a_refused_one_takes_none() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(rate_per_second=1.0, burst=10, clock=clock)
    limiter.acquire("t", cost=1 + 500 / 100)
    assert refused(limiter, "t", cost=1 + 800 / 100).retry_after_seconds == pytest.approx(5.0)
    limiter.acquire("t", cost=4.0)  # the refused call took nothing: 4 tokens were left
    assert refused(limiter, "t", cost=0.5).retry_after_seconds == pytest.approx(0.5)
    with pytest.raises(ValueError):
        limiter.acquire("t", cost=0)


def test_a_call_costing_more_than_the_burst_passes_on_a_full_bucket_and_is_paid_off() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(rate_per_second=2.0, burst=5, clock=clock)
    limiter.acquire("t", cost=11.0)
    # 5 - 11 = -6 tokens: 7 tokens to go before the next one-token call, at 2 per second.
    assert refused(limiter, "t").retry_after_seconds == pytest.approx(3.5)
    clock.now += 3.5
    limiter.acquire("t")


def test_two_tenants_have_their_own_buckets() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(rate_per_second=1.0, burst=2, clock=clock)
    limiter.acquire("st-olav")
    limiter.acquire("st-olav")
    refused(limiter, "st-olav")
    limiter.acquire("haukeland")
    limiter.acquire("haukeland")
    refused(limiter, "haukeland")


def test_idle_full_buckets_are_dropped_so_memory_stays_bounded() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(rate_per_second=10.0, burst=10, clock=clock)  # full again within 1 s
    most = 0
    for n in range(20_000):
        clock.now += 0.01
        limiter.acquire(f"tenant-{n}", cost=10)
        most = max(most, limiter.tracked_tenants())
    assert most <= 101  # the tenants of the last second, not 20,000
    clock.now += 1.0
    assert limiter.tracked_tenants() == 0
    # A dropped bucket was full: the tenant gets its whole burst, no more.
    limiter.acquire("tenant-0", cost=10)
    refused(limiter, "tenant-0", cost=0.1)


def test_a_bucket_in_debt_is_kept_until_paid_off() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(rate_per_second=1.0, burst=1, clock=clock)
    limiter.acquire("big", cost=5)
    clock.now += 3
    assert limiter.tracked_tenants() == 1
    refused(limiter, "big")
    clock.now += 2
    assert limiter.tracked_tenants() == 0


def test_a_clock_that_goes_back_adds_no_tokens() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(rate_per_second=1.0, burst=1, clock=clock)
    limiter.acquire("t")
    clock.now -= 100
    refused(limiter, "t")
    clock.now += 100
    refused(limiter, "t")  # time spent going back and forth is not time passed
    clock.now += 1
    limiter.acquire("t")


def test_concurrent_calls_take_exactly_the_burst() -> None:
    limiter = TenantRateLimiter(rate_per_second=0.001, burst=50, clock=FakeClock())
    passed: list[bool] = []
    start = threading.Barrier(8)

    def call() -> None:
        start.wait()
        for _ in range(100):
            try:
                limiter.acquire("t")
                passed.append(True)
            except RateLimited:
                passed.append(False)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert passed.count(True) == 50 and len(passed) == 800


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_a_limiter_that_could_never_admit_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TenantRateLimiter(rate, burst)


def test_slots_up_to_the_most_then_refused_and_released_after_the_block() -> None:
    slots = TenantSlots(max_per_tenant=2, counted="streams open")
    with slots.hold("st-olav"), slots.hold("st-olav"):
        assert slots.held("st-olav") == 2
        with pytest.raises(ResourceExhausted) as raised, slots.hold("st-olav"):
            pass
        assert raised.value.message == "tenant has 2 streams open; the most is 2"
        assert slots.held("st-olav") == 2, "a refused hold takes no slot"
    assert slots.held("st-olav") == 0
    with slots.hold("st-olav"), slots.hold("st-olav"):
        pass


def test_a_slot_is_released_when_the_block_raises() -> None:
    slots = TenantSlots(max_per_tenant=1)
    with pytest.raises(RuntimeError), slots.hold("t"):
        raise RuntimeError("handler failed")
    assert slots.held("t") == 0
    with slots.hold("t"):
        assert slots.held("t") == 1


def test_slots_of_two_tenants_are_independent() -> None:
    slots = TenantSlots(max_per_tenant=1)
    with slots.hold("st-olav"):
        with slots.hold("haukeland"):
            assert (slots.held("st-olav"), slots.held("haukeland")) == (1, 1)
        with pytest.raises(ResourceExhausted, match="tenant has 1 calls in progress; the most is 1"), slots.hold("st-olav"):
            pass


def test_threads_holding_at_once_get_exactly_the_most() -> None:
    slots = TenantSlots(max_per_tenant=3)
    everyone_tried = threading.Barrier(17)
    release = threading.Event()
    outcomes: list[str] = []

    def call() -> None:
        try:
            with slots.hold("t"):
                outcomes.append("held")
                everyone_tried.wait()
                release.wait()
        except ResourceExhausted:
            outcomes.append("refused")
            everyone_tried.wait()

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    everyone_tried.wait()
    assert sorted(outcomes).count("held") == 3 and outcomes.count("refused") == 13
    assert slots.held("t") == 3
    release.set()
    for thread in threads:
        thread.join()
    assert slots.held("t") == 0


def test_many_threads_never_exceed_the_most() -> None:
    slots = TenantSlots(max_per_tenant=4)
    lock = threading.Lock()
    inside = 0
    most = 0

    def call() -> None:
        nonlocal inside, most
        for _ in range(2000):
            try:
                with slots.hold("t"):
                    with lock:
                        inside += 1
                        most = max(most, inside)
                    with lock:
                        inside -= 1
            except ResourceExhausted:
                pass

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 <= most <= 4 and slots.held("t") == 0


async def test_streams_on_one_event_loop_never_exceed_the_most() -> None:
    slots = TenantSlots(max_per_tenant=3, counted="streams open")
    inside = 0
    most = 0
    refusals = 0

    async def stream() -> None:
        nonlocal inside, most, refusals
        try:
            with slots.hold("t"):
                inside += 1
                most = max(most, inside)
                for _ in range(3):
                    await asyncio.sleep(0)
                inside -= 1
        except ResourceExhausted:
            refusals += 1

    await asyncio.gather(*(stream() for _ in range(10)))
    assert most == 3 and refusals == 7 and slots.held("t") == 0
