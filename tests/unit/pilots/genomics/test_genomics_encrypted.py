"""CKKS-encrypted scoring: equal to plaintext, no secret key on the server, bad parameters refused."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import tenseal as ts

from clinpred.pilots.common.errors import InvalidInput
from clinpred.pilots.genomics.encrypted import (
    EncryptedFields,
    EncryptedScoreLayout,
    create_client_context,
    decrypt_score,
    dosages_for_layout,
    encrypt_dosages,
    layout_scoring_file,
    load_public_context,
    public_context_bytes,
    score_encrypted,
    score_layout,
)
from clinpred.pilots.genomics.matching import match_variants
from clinpred.pilots.genomics.scoring import effect_dosages, sample_scores
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.genomics.vcf import Genotypes

SimulateGenotypes = Callable[..., Genotypes]


@pytest.fixture(scope="module")
def client_context() -> ts.Context:
    return create_client_context()


@pytest.fixture(scope="module")
def public_context(client_context: ts.Context) -> bytes:
    return public_context_bytes(client_context)


def test_encrypted_score_equals_plaintext_for_pgs000004(
    pgs000004: ScoringFile, simulate_genotypes: SimulateGenotypes, client_context: ts.Context, public_context: bytes
) -> None:
    genotypes = simulate_genotypes(pgs000004, 3, seed=21, missing=0.05, flip=0.2)
    effect = effect_dosages(match_variants(pgs000004, genotypes))
    plain = sample_scores(effect)
    layout = EncryptedScoreLayout.from_json(score_layout(pgs000004).to_json())
    assert len(layout) == 313 and len(layout.chunks(8192)) == 1
    for sample in range(3):
        dosages = dosages_for_layout(effect, layout, sample)
        np.testing.assert_array_equal(dosages_for_layout(plain[sample], layout), dosages)
        request = encrypt_dosages(client_context, dosages, layout)
        result = score_encrypted(public_context, request.ciphertexts, layout)
        decrypted = decrypt_score(client_context, result, layout)
        assert abs(decrypted.score_sum - plain[sample].score_sum) <= 1e-3
        expected = dosages * np.asarray(layout.weights)
        assert np.max(np.abs(decrypted.contributions - expected)) <= 1e-3
        by_id = {c.variant_id: c.contribution for c in plain[sample].contributions}
        for variant_id, value in zip(layout.variant_ids, decrypted.contributions, strict=True):
            assert abs(value - by_id.get(variant_id, 0.0)) <= 1e-3


def test_server_context_has_no_secret_key_and_cannot_decrypt(
    client_context: ts.Context, public_context: bytes
) -> None:
    server = load_public_context(public_context)
    assert not server.is_private() and not server.has_secret_key()
    layout = EncryptedScoreLayout("PGS_T", ("1:1:A:G", "1:2:C:T"), ("G", "T"), (0.5, -0.25))
    request = encrypt_dosages(client_context, np.array([2.0, 1.0]), layout)
    result = score_encrypted(public_context, request.ciphertexts, layout)
    with pytest.raises(ValueError, match="secret"):
        ts.ckks_vector_from(server, result.score).decrypt()
    with pytest.raises(ValueError, match="secret"):
        ts.ckks_vector_from(server, request.ciphertexts[0]).decrypt()
    with pytest.raises(InvalidInput, match="private context"):
        decrypt_score(server, result, layout)
    assert decrypt_score(client_context, result, layout).score_sum == pytest.approx(0.75, abs=1e-4)


def test_scores_larger_than_one_ciphertext_are_packed_into_several(
    client_context: ts.Context, public_context: bytes
) -> None:
    rng = np.random.default_rng(4)
    count = 4096 + 904
    layout = EncryptedScoreLayout("PGS_BIG", tuple(f"1:{i}:A:G" for i in range(1, count + 1)), ("G",) * count,
                                  tuple(rng.normal(0, 0.05, count).round(4).tolist()))
    dosages = rng.binomial(2, 0.3, count).astype(float)
    request = encrypt_dosages(client_context, dosages, layout)
    assert len(request.ciphertexts) == 2 == len(layout.chunks(8192))
    result = score_encrypted(public_context, request.ciphertexts, layout)
    decrypted = decrypt_score(client_context, result, layout)
    assert decrypted.contributions.shape == (count,)
    assert abs(decrypted.score_sum - float(np.dot(dosages, layout.weights))) <= 1e-3
    assert np.max(np.abs(decrypted.contributions - dosages * np.asarray(layout.weights))) <= 1e-3
    with pytest.raises(InvalidInput, match="need 2 ciphertext"):
        score_encrypted(public_context, request.ciphertexts[:1], layout)


def test_unsupported_contexts_and_ciphertexts_are_refused(
    client_context: ts.Context, public_context: bytes
) -> None:
    layout = EncryptedScoreLayout("PGS_T", ("1:1:A:G", "1:2:C:T"), ("G", "T"), (0.5, -0.25))
    request = encrypt_dosages(client_context, np.array([1.0, 1.0]), layout)

    private = client_context.serialize(save_secret_key=True)
    with pytest.raises(InvalidInput, match="secret key"):
        score_encrypted(private, request.ciphertexts, layout)

    bfv = ts.context(ts.SCHEME_TYPE.BFV, 8192, plain_modulus=1032193)
    bfv.generate_galois_keys()
    with pytest.raises(InvalidInput, match="BFV is not supported"):
        score_encrypted(bfv.serialize(save_secret_key=False, save_galois_keys=True), request.ciphertexts, layout)

    small = ts.context(ts.SCHEME_TYPE.CKKS, 4096, coeff_mod_bit_sizes=[40, 20, 40])
    small.global_scale = 2.0**20
    small.generate_galois_keys()
    with pytest.raises(InvalidInput, match="poly_modulus_degree 4096 is not supported"):
        score_encrypted(public_context_bytes(small), request.ciphertexts, layout)

    coarse = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    coarse.global_scale = 2.0**20
    coarse.generate_galois_keys()
    with pytest.raises(InvalidInput, match="scale 2\\^20 is too small"):
        score_encrypted(public_context_bytes(coarse), request.ciphertexts, layout)

    keyless = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    keyless.global_scale = 2.0**40
    with pytest.raises(InvalidInput, match="no Galois keys"):
        score_encrypted(keyless.serialize(save_secret_key=False), request.ciphertexts, layout)

    with pytest.raises(InvalidInput, match="not a serialised TenSEAL context"):
        score_encrypted(b"\x00garbage", request.ciphertexts, layout)
    with pytest.raises(InvalidInput, match="ciphertexts\\[0\\]: not a CKKS vector"):
        score_encrypted(public_context, [b"garbage"], layout)
    bfv_vector = ts.bfv_vector(bfv, [1, 2]).serialize()
    with pytest.raises(InvalidInput, match="ciphertexts\\[0\\]"):
        score_encrypted(public_context, [bfv_vector], layout)
    longer = encrypt_dosages(client_context, np.ones(3), EncryptedScoreLayout("PGS_T", ("a", "b", "c"), ("A",) * 3,
                                                                                (1.0, 1.0, 1.0)))
    with pytest.raises(InvalidInput, match="holds 3 values, the layout needs 2"):
        score_encrypted(public_context, longer.ciphertexts, layout)
    with pytest.raises(InvalidInput, match="expected 2 dosages"):
        encrypt_dosages(client_context, np.ones(5), layout)


FIELDS = EncryptedFields(context="request.context", ciphertexts="request.ciphertexts", lengths="request.lengths")


def test_refusals_name_the_request_field_they_are_about(client_context: ts.Context, public_context: bytes) -> None:
    layout = EncryptedScoreLayout("PGS_T", ("1:1:A:G", "1:2:C:T"), ("G", "T"), (0.5, -0.25))
    request = encrypt_dosages(client_context, np.array([1.0, 1.0]), layout)
    private = client_context.serialize(save_secret_key=True)
    cases = [
        (private, request.ciphertexts, "request.context", "encrypted context: carries a secret key"),
        (b"\x00garbage", request.ciphertexts, "request.context", "not a serialised TenSEAL context"),
        (public_context, request.ciphertexts * 2, "request.lengths", "need 1 ciphertext(s)"),
        (public_context, [b"garbage"], "request.ciphertexts", "ciphertexts[0]: not a CKKS vector"),
    ]
    for context, ciphertexts, field, reason in cases:
        with pytest.raises(InvalidInput) as caught:
            score_encrypted(context, ciphertexts, layout, FIELDS)
        ((violation),) = caught.value.violations
        assert violation.field == field and reason in violation.description, (field, violation)
        with pytest.raises(InvalidInput) as offline:
            score_encrypted(context, ciphertexts, layout)
        assert offline.value.violations == () and offline.value.message == caught.value.message


def test_a_layout_read_back_as_a_scoring_file_scores_like_its_source(
    pgs000004: ScoringFile, simulate_genotypes: SimulateGenotypes
) -> None:
    layout = score_layout(pgs000004)
    from_layout = layout_scoring_file(layout, "GRCh37", "layout")
    assert from_layout.pgs_id == pgs000004.pgs_id and len(from_layout) == len(pgs000004)
    np.testing.assert_array_equal(from_layout.effect_weight, pgs000004.effect_weight)
    np.testing.assert_array_equal(from_layout.allele_frequency, pgs000004.allele_frequency)
    genotypes = simulate_genotypes(pgs000004, 4, seed=9, missing=0.05)
    direct = sample_scores(effect_dosages(match_variants(pgs000004, genotypes)))
    again = sample_scores(effect_dosages(match_variants(from_layout, genotypes)))
    assert [s.score_sum for s in again] == pytest.approx([s.score_sum for s in direct], abs=1e-12)
    assert [s.variants_imputed for s in again] == [s.variants_imputed for s in direct]
