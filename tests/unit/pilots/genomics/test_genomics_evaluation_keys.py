"""Registered evaluation keys with real TenSEAL contexts: content-addressed per tenant, expiring, bounded;
and private scores, whose answer holds the encrypted total and nothing else."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest
import tenseal as ts

from clinpred.pilots.common.errors import InvalidInput, ResourceExhausted
from clinpred.pilots.genomics.encrypted import (
    EncryptedScoreLayout,
    create_client_context,
    decrypt_score,
    encrypt_dosages,
    public_context_bytes,
    score_encrypted,
)
from clinpred.pilots.genomics.evaluation_keys import NOT_REGISTERED_REASON, EvaluationKeys, EvaluationKeysNotRegistered
from tests.ckks_crafting import every_slot

VARIANTS = 313
RNG = np.random.default_rng(4)
LAYOUT = EncryptedScoreLayout(
    "PGS000004",
    tuple(f"1:{1000 + i}:A:G" for i in range(VARIANTS)),
    ("G",) * VARIANTS,
    tuple(float(w) for w in RNG.normal(0, 0.1, VARIANTS)),
)
PRIVATE = replace(LAYOUT, private=True)
DOSAGES = RNG.integers(0, 3, VARIANTS).astype(float)
PLAIN = float(DOSAGES @ np.asarray(LAYOUT.weights))
# CKKS at 2^40: each slot carries about 1e-7 of noise; 313 of them summed stay far below 1e-3.
TOLERANCE = 1e-3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clients() -> list[ts.Context]:
    return [create_client_context() for _ in range(3)]


@pytest.fixture(scope="module")
def publics(clients: list[ts.Context]) -> list[bytes]:
    return [public_context_bytes(c) for c in clients]


def test_a_registered_context_is_named_by_its_sha256_and_scores_like_one_sent_inline(
    clients: list[ts.Context], publics: list[bytes]
) -> None:
    keys = EvaluationKeys(3600, 1 << 30, 1 << 30)
    registration = keys.register("hospital-a", publics[0])
    assert registration.sha256 == hashlib.sha256(publics[0]).hexdigest()
    assert registration.size == len(publics[0]) and registration.expires_in_seconds == 3600
    assert keys.held_bytes("hospital-a") == len(publics[0])
    again = keys.register("hospital-a", publics[0])
    assert again == registration and keys.held_bytes() == len(publics[0])  # no second copy
    request = encrypt_dosages(clients[0], DOSAGES, LAYOUT)
    registered = score_encrypted(keys.context("hospital-a", registration.sha256), request.ciphertexts, LAYOUT)
    inline = score_encrypted(publics[0], request.ciphertexts, LAYOUT)
    for result in (registered, inline):
        decrypted = decrypt_score(clients[0], result, LAYOUT)
        assert abs(decrypted.score_sum - PLAIN) <= TOLERANCE
        assert np.abs(decrypted.contributions - DOSAGES * np.asarray(LAYOUT.weights)).max() <= TOLERANCE


def test_another_tenants_digest_is_answered_like_an_unknown_one(publics: list[bytes]) -> None:
    keys = EvaluationKeys(3600, 1 << 30, 1 << 30)
    digest = keys.register("hospital-a", publics[0]).sha256
    with pytest.raises(EvaluationKeysNotRegistered) as foreign:
        keys.context("hospital-b", digest)
    with pytest.raises(EvaluationKeysNotRegistered) as unknown:
        keys.context("hospital-a", "0" * 64)
    assert foreign.value.message == unknown.value.message
    assert foreign.value.status == "FAILED_PRECONDITION" and foreign.value.reason == NOT_REGISTERED_REASON
    assert keys.context("hospital-a", digest).has_galois_keys()


def test_a_context_expires_once_unused_for_the_ttl_and_each_use_renews_it(publics: list[bytes]) -> None:
    clock = Clock()
    keys = EvaluationKeys(60, 1 << 30, 1 << 30, clock=clock)
    digest = keys.register("hospital-a", publics[0]).sha256
    clock.now += 50
    keys.context("hospital-a", digest)
    clock.now += 50  # 100 s after registering, 50 s after its last use
    keys.context("hospital-a", digest)
    clock.now += 61
    with pytest.raises(EvaluationKeysNotRegistered):
        keys.context("hospital-a", digest)
    assert keys.held_bytes() == 0


def test_the_tenant_and_replica_bounds_refuse_rather_than_evict(publics: list[bytes]) -> None:
    size = len(publics[0])
    clock = Clock()
    keys = EvaluationKeys(60, max_bytes=int(2.5 * size), max_bytes_per_tenant=int(1.5 * size), clock=clock)
    keys.register("hospital-a", publics[0])
    with pytest.raises(ResourceExhausted, match="your tenant's registered public contexts hold"):
        keys.register("hospital-a", publics[1])
    keys.register("hospital-b", publics[1])  # another tenant still has room
    with pytest.raises(ResourceExhausted, match="this replica's registered public contexts are full"):
        keys.register("hospital-c", publics[2])
    assert keys.held_bytes() == len(publics[0]) + len(publics[1])
    clock.now += 61  # expired entries make room
    keys.register("hospital-c", publics[2])
    assert keys.held_bytes() == len(publics[2])


def test_a_context_larger_than_a_tenant_may_hold_and_an_unusable_one_are_invalid(
    clients: list[ts.Context], publics: list[bytes]
) -> None:
    keys = EvaluationKeys(60, 1 << 30, len(publics[0]) - 1)
    with pytest.raises(InvalidInput) as large:
        keys.register("hospital-a", publics[0], "stream[*].public_context_chunk")
    assert large.value.violations[0].field == "stream[*].public_context_chunk"
    assert "exceed" in large.value.violations[0].description
    roomy = EvaluationKeys(60, 1 << 30, 1 << 30)
    secret = bytes(clients[0].serialize(save_secret_key=True))
    with pytest.raises(InvalidInput, match="carries a secret key"):
        roomy.register("hospital-a", secret, "stream[*].public_context_chunk")
    keyless = bytes(clients[0].serialize(save_secret_key=False, save_galois_keys=False))
    with pytest.raises(InvalidInput, match="no Galois keys"):
        roomy.register("hospital-a", keyless)
    assert roomy.held_bytes() == 0


def test_a_private_layout_publishes_no_weights() -> None:
    published = PRIVATE.published()
    assert published.weights == () and published.private
    assert published.variant_ids == LAYOUT.variant_ids and published.effect_alleles == LAYOUT.effect_alleles
    assert LAYOUT.published() is LAYOUT


def test_a_private_score_answers_the_total_and_no_slot_carries_a_product(
    clients: list[ts.Context], publics: list[bytes]
) -> None:
    request = encrypt_dosages(clients[0], DOSAGES, LAYOUT)
    private = score_encrypted(publics[0], request.ciphertexts, PRIVATE)
    assert private.contributions == ()
    decrypted = decrypt_score(clients[0], private, PRIVATE.published())
    assert abs(decrypted.score_sum - PLAIN) <= TOLERANCE and decrypted.contributions.size == 0
    slots = every_slot(clients[0], private.score)
    assert abs(slots[0] - PLAIN) <= TOLERANCE
    # The other slots: zero up to CKKS noise, against products of up to |0.3 x 2| each.
    assert np.abs(slots[1:]).max() <= 1e-4
    # Without the mask the rotations leave partial sums whose differences are the products (the weights).
    public = score_encrypted(publics[0], request.ciphertexts, LAYOUT)
    partial = every_slot(clients[0], public.score)
    products = DOSAGES * np.asarray(LAYOUT.weights)
    assert np.abs((partial[:-1] - partial[1:])[: VARIANTS - 1] - products[: VARIANTS - 1]).max() <= TOLERANCE


def test_a_private_score_needs_two_levels_left() -> None:
    shallow = create_client_context(coeff_mod_bit_sizes=(60, 40, 60))
    request = encrypt_dosages(shallow, DOSAGES, LAYOUT)
    with pytest.raises(InvalidInput, match="needs two coefficient modulus levels"):
        score_encrypted(public_context_bytes(shallow), request.ciphertexts, PRIVATE)
    assert abs(decrypt_score(shallow, score_encrypted(public_context_bytes(shallow), request.ciphertexts, LAYOUT),
                             LAYOUT).score_sum - PLAIN) <= TOLERANCE


def test_concurrent_calls_share_one_registered_context(clients: list[ts.Context], publics: list[bytes]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    keys = EvaluationKeys(3600, 1 << 30, 1 << 30)
    digest = keys.register("hospital-a", publics[0]).sha256
    vectors = [RNG.integers(0, 3, VARIANTS).astype(float) for _ in range(8)]
    requests = [encrypt_dosages(clients[0], v, LAYOUT).ciphertexts for v in vectors]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: score_encrypted(keys.context("hospital-a", digest), c, LAYOUT), requests))
    for vector, result in zip(vectors, results, strict=True):
        assert abs(decrypt_score(clients[0], result, LAYOUT).score_sum - float(vector @ np.asarray(LAYOUT.weights))) <= TOLERANCE
