"""Registered evaluation keys: a client's public CKKS context, sent once, named by its SHA-256 afterwards.

A public context with the Galois keys that summing a score needs is about 35 MB at
poly_modulus_degree 8192, and loading it costs the server about 0.2 s: far more than the
computation. So a client registers it once (`EvaluationKeys.register`) and each encrypted
score then names it by digest; the loaded context stays in memory until it expires.

What is held is bounded: each entry expires `ttl_seconds` after it was last registered or
used, and the serialised sizes held add up to at most `max_bytes` per replica and
`max_bytes_per_tenant` per tenant; past a bound a registration is refused
(ResourceExhausted) rather than evicting another client's keys. Entries are per tenant:
another tenant's digest is answered exactly like an unknown one, so a tenant cannot even
learn that another registered a context. A replica that does not hold a digest (restarted,
expired, another replica behind the load balancer) answers `EvaluationKeysNotRegistered`,
whose ErrorInfo reason tells the client library to register again and retry.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import tenseal as ts

from clinpred.pilots.common.errors import FailedPrecondition, FieldViolation, InvalidInput, ResourceExhausted
from clinpred.pilots.genomics.encrypted import check_rotations, load_public_context

# The reason in google.rpc.ErrorInfo (clinpred.common.v1.ErrorReason) that the client library acts on.
NOT_REGISTERED_REASON = "ERROR_REASON_EVALUATION_KEYS_NOT_REGISTERED"


class EvaluationKeysNotRegistered(FailedPrecondition):
    """This replica holds no context of that digest for the caller's tenant: register it (again)."""

    reason = NOT_REGISTERED_REASON


@dataclass(frozen=True)
class EvaluationKeysRequest:
    """A complete public context to register; `field` is the request field its bytes came in."""

    public_context: bytes
    field: str


@dataclass(frozen=True)
class Registration:
    sha256: str  # hex, of the serialised public context
    size: int  # bytes of the serialised public context
    expires_in_seconds: float


@dataclass
class _Entry:
    context: ts.Context
    size: int
    expires_at: float


def context_sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


class EvaluationKeys:
    """The public contexts registered on this replica, per tenant, loaded and checked once."""

    def __init__(
        self,
        ttl_seconds: float,
        max_bytes: int,
        max_bytes_per_tenant: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_bytes = max_bytes
        self.max_bytes_per_tenant = max_bytes_per_tenant
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}

    def held_bytes(self, tenant: str | None = None) -> int:
        with self._lock:
            self._drop_expired(self._clock())
            return sum(e.size for (t, _), e in self._entries.items() if tenant is None or t == tenant)

    def register(self, tenant: str, blob: bytes, field: str | None = None) -> Registration:
        """Loads and checks `blob` (a public context, InvalidInput naming `field` if unusable) and holds it.

        Registering a context already held renews its expiry and costs no memory.
        """
        digest = context_sha256(blob)
        key = (tenant, digest)
        with self._lock:
            now = self._clock()
            self._drop_expired(now)
            held = self._entries.get(key)
            if held is not None:
                held.expires_at = now + self.ttl_seconds
                return Registration(digest, held.size, self.ttl_seconds)
            self._check_room(tenant, len(blob), field)
        # Loading takes a fraction of a second: outside the lock, so scoring with other contexts goes on.
        context = load_public_context(blob, field)
        check_rotations(context, field)
        with self._lock:
            now = self._clock()
            self._drop_expired(now)
            if key not in self._entries:
                self._check_room(tenant, len(blob), field)
                self._entries[key] = _Entry(context, len(blob), now + self.ttl_seconds)
            else:
                self._entries[key].expires_at = now + self.ttl_seconds
        return Registration(digest, len(blob), self.ttl_seconds)

    def context(self, tenant: str, digest: str) -> ts.Context:
        """The loaded context `tenant` registered under `digest`; using it renews its expiry."""
        with self._lock:
            now = self._clock()
            self._drop_expired(now)
            entry = self._entries.get((tenant, digest))
            if entry is None:
                raise EvaluationKeysNotRegistered(
                    "this replica holds no public context of that SHA-256 for your tenant (never registered here,"
                    " expired or evicted by a restart); register it with RegisterEvaluationKeys and retry"
                )
            entry.expires_at = now + self.ttl_seconds
            return entry.context

    def _check_room(self, tenant: str, size: int, field: str | None) -> None:
        limit = min(self.max_bytes, self.max_bytes_per_tenant)
        if size > limit:
            # Could never be held, however empty the replica: the request itself is wrong.
            description = f"{size} bytes exceed the {limit} bytes a replica holds for one tenant"
            raise InvalidInput.of([FieldViolation(field or "public context", description)])
        tenant_bytes = sum(e.size for (t, _), e in self._entries.items() if t == tenant)
        if tenant_bytes + size > self.max_bytes_per_tenant:
            raise ResourceExhausted(
                f"your tenant's registered public contexts hold {tenant_bytes} of {self.max_bytes_per_tenant} bytes;"
                f" one of {size} bytes does not fit until others expire (reuse one context rather than making new ones)"
            )
        total = sum(e.size for e in self._entries.values())
        if total + size > self.max_bytes:
            raise ResourceExhausted(
                f"this replica's registered public contexts are full ({total} of {self.max_bytes} bytes); retry later"
            )

    def _drop_expired(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[key]
