"""Per-tenant limits, so that one tenant cannot take a service from the others.

- `TenantRateLimiter`: a token bucket per tenant; a refused call learns when to retry.
- `TenantSlots`: at most N calls (or streams) of one tenant at once, so a flooding
  tenant cannot occupy every worker thread.

Both are non-blocking and hold a lock only for a few dictionary operations, so they
are safe from worker threads and from the event loop alike.

The bucket is written here: of the libraries looked at, none has a non-blocking
try-acquire that says how long until enough tokens, with fractional costs, an
injectable clock and bounded per-key memory (throttled-py counts whole seconds and
whole tokens; pyrate-limiter keeps a log of every call and integer weights; limits
has no token bucket and reads the wall clock; aiolimiter is asyncio-only, one
limiter per key; token-bucket says neither when to retry nor evicts).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from clinpred.pilots.common.errors import ResourceExhausted


class RateLimited(ResourceExhausted):
    """The tenant's calls came faster than its rate; `retry_after_seconds` is when enough tokens are back."""

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class TenantRateLimiter:
    """A token bucket per tenant: `burst` calls at once, then `rate_per_second` on average.

    A call may cost more than one token (a large batch, say 1 + cases / 100). A call
    costing more than `burst` is let through on a full bucket and leaves it in debt,
    so it is paid off before the next call and the average rate holds.

    Memory: a full bucket is the same as no bucket (a new one starts full), so full
    buckets are dropped. Every bucket untouched for `burst / rate_per_second` seconds
    (longer after a call in debt) is full, so only tenants seen in that window take memory.
    """

    def __init__(self, rate_per_second: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate_per_second > 0:
            raise ValueError("rate_per_second must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        # Least recently used first: buckets untouched longest are the first to be full.
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def acquire(self, tenant: str, cost: float = 1.0) -> None:
        """Takes `cost` tokens from the tenant's bucket, or raises `RateLimited` taking none."""
        if not cost > 0:
            raise ValueError("cost must be > 0")
        now = self._clock()
        with self._lock:
            self._evict_full(now)
            bucket = self._buckets.get(tenant)
            if bucket is None:
                bucket = self._buckets[tenant] = _Bucket(float(self.burst), now)
            else:
                self._buckets.move_to_end(tenant)
                self._refill(bucket, now)
            needed = min(cost, float(self.burst))
            if bucket.tokens < needed:
                retry_after = (needed - bucket.tokens) / self.rate_per_second
                raise RateLimited(
                    f"the tenant's calls exceed its rate of {self.rate_per_second:g} per second"
                    f" (bursts of {self.burst}); retry in {retry_after:.3g} s",
                    retry_after,
                )
            bucket.tokens -= cost

    def tracked_tenants(self) -> int:
        """How many tenants have a bucket that is not full (what takes memory)."""
        with self._lock:
            self._evict_full(self._clock())
            return len(self._buckets)

    def _refill(self, bucket: _Bucket, now: float) -> None:
        # A clock that went back adds nothing rather than taking tokens away.
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_second)
        bucket.updated = max(now, bucket.updated)

    def _evict_full(self, now: float) -> None:
        while self._buckets:
            tenant, bucket = next(iter(self._buckets.items()))
            self._refill(bucket, now)
            if bucket.tokens < self.burst:
                return
            del self._buckets[tenant]


class TenantSlots:
    """At most `max_per_tenant` things (calls in progress, open streams) per tenant at once."""

    def __init__(self, max_per_tenant: int, counted: str = "calls in progress") -> None:
        if max_per_tenant < 1:
            raise ValueError("max_per_tenant must be >= 1")
        self.max_per_tenant = max_per_tenant
        self.counted = counted
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    @contextmanager
    def hold(self, tenant: str) -> Iterator[None]:
        """Holds one of the tenant's slots for the block; raises `ResourceExhausted` when all are held."""
        with self._lock:
            held = self._held.get(tenant, 0)
            if held >= self.max_per_tenant:
                raise ResourceExhausted(f"tenant has {held} {self.counted}; the most is {self.max_per_tenant}")
            self._held[tenant] = held + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._held[tenant] - 1
                if left:
                    self._held[tenant] = left
                else:
                    # Tenants without a slot take no memory.
                    del self._held[tenant]

    def held(self, tenant: str) -> int:
        """Slots the tenant holds now."""
        with self._lock:
            return self._held.get(tenant, 0)
