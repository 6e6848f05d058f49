"""Homomorphic scoring over gRPC: decrypted equals plaintext within 1e-3, the server cannot decrypt,
unsupported parameters are refused, large scores are packed into several ciphertexts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import numpy as np
import pytest
import tenseal as ts

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.genomics.absolute_risk import RiskParameters
from clinpred.pilots.genomics.encrypted import (
    create_client_context,
    encrypt_dosages,
    load_public_context,
    public_context_bytes,
)
from clinpred.pilots.genomics.scoring import score_vcf
from clinpred.pilots.genomics.scoring_file import ScoringFile, read_scoring_file
from clinpred.services.api.genomics.v1 import genomics_pb2
from clinpred.services.genomics.client import EncryptedScoreResult, GenomicsClient, layout_of, patient
from tests.integration.genomics.conftest import SYNTHETIC_PGS, Served, Stub, vcf_text
from tests.support import field_violations


@pytest.fixture(scope="module")
def context() -> ts.Context:
    return create_client_context()


@pytest.fixture(scope="module")
def public_context(context: ts.Context) -> bytes:
    return public_context_bytes(context)


async def encrypted(target: str, vcf: bytes, score: str, context: ts.Context) -> EncryptedScoreResult:
    def call() -> EncryptedScoreResult:
        with GenomicsClient(target) as client:
            return client.score_encrypted(vcf, "GRCh37", score, context=context)

    return await asyncio.to_thread(call)


async def test_decrypted_score_equals_plaintext_scoring(
    layout_served: Served, layout_stub: Stub, pgs37: ScoringFile, context: ts.Context, breast_package: ModelPackage
) -> None:
    vcf = vcf_text(pgs37, 1, seed=31)
    result = await encrypted(layout_served.target, vcf, "breast", context)
    request = genomics_pb2.AssessVcfRequest(
        assessment=genomics_pb2.Assessment(build=genomics_pb2.GENOME_BUILD_GRCH37, patients=[patient(52, "female")]),
        vcf=vcf,
    )
    plain = (await layout_stub.AssessVcf(request)).assessment.samples[0].risks[0]
    assert abs(result.score_sum - plain.score_sum) <= 1e-3
    assert abs(result.score_sum - score_vcf(vcf, pgs37)[0].score_sum) <= 1e-3
    assert abs(result.percentile - plain.percentile) <= 0.05
    expected = {c.variant_id: c.contribution for c in result.plaintext.contributions}
    for variant_id, value in zip(result.layout.variant_ids, result.contributions, strict=True):
        assert abs(value - expected.get(variant_id, 0.0)) <= 1e-3
    assert result.top_variants(1)[0][0] == plain.top_variants[0].variant_id
    # the client needs no model package: the published parameters give the server's answer
    def parameters() -> RiskParameters:
        with GenomicsClient(layout_served.target) as client:
            return client.risk_parameters(result.model)

    local = result.risk(await asyncio.to_thread(parameters), 52, "female", 0)
    assert local.absolute_risk == pytest.approx(plain.absolute_risk, abs=1e-4)
    assert local.population_average_risk == plain.population_average_risk
    assert local.risk_interval == pytest.approx((plain.risk_interval.lower, plain.risk_interval.upper), abs=1e-4)
    assert local.score_effect_note == plain.score_effect_note and local.odds_ratio_per_sd == plain.odds_ratio_per_sd
    assert result.model.sha256 == plain.model.sha256 == breast_package.identity.sha256


async def test_the_server_context_cannot_decrypt(layout_served: Served, layout_stub: Stub, context: ts.Context,
                                                 public_context: bytes) -> None:
    published = await layout_stub.GetScoreLayout(genomics_pb2.GetScoreLayoutRequest(score="PGS000004"))
    layout = layout_of(published)
    assert len(layout) == 313 and published.build == genomics_pb2.GENOME_BUILD_GRCH37
    assert list(published.poly_modulus_degrees) == [8192, 16384] and published.min_scale_bits == 30
    request = encrypt_dosages(context, np.ones(len(layout)), layout)

    def call() -> tuple[object, object]:
        with GenomicsClient(layout_served.target) as client:
            return client.score_ciphertexts("PGS000004", public_context, request.ciphertexts)

    answer, _ = await asyncio.to_thread(call)
    server_side = load_public_context(public_context)  # exactly what the server holds
    assert not server_side.is_private() and not server_side.has_secret_key()
    with pytest.raises(ValueError, match="secret"):
        ts.ckks_vector_from(server_side, answer.score).decrypt()  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="secret"):
        ts.ckks_vector_from(server_side, request.ciphertexts[0]).decrypt()
    assert ts.ckks_vector_from(context, answer.score).decrypt()[0] == pytest.approx(sum(layout.weights), abs=1e-3)  # type: ignore[attr-defined]


def messages(score: str, public_context: bytes, ciphertexts: list[bytes], chunk: int = 1 << 20,
             ) -> list[genomics_pb2.ScoreEncryptedRequest]:
    header = genomics_pb2.EncryptedScoreHeader(
        score=score, public_context_length=len(public_context), ciphertext_lengths=[len(c) for c in ciphertexts]
    )
    out = [genomics_pb2.ScoreEncryptedRequest(header=header)]
    out += [genomics_pb2.ScoreEncryptedRequest(public_context_chunk=public_context[i:i + chunk])
            for i in range(0, len(public_context), chunk)]
    for index, blob in enumerate(ciphertexts):
        pieces = [genomics_pb2.CiphertextChunk(index=index, data=blob[i:i + chunk]) for i in range(0, len(blob), chunk)]
        out += [genomics_pb2.ScoreEncryptedRequest(ciphertext_chunk=piece) for piece in pieces]
    return out


async def refused(target: str, requests: list[genomics_pb2.ScoreEncryptedRequest],
                  code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT) -> str:
    """Sent with the blocking client, as the client library does: when the server refuses early, grpc.aio's
    client may report its own failed write (INTERNAL) instead of the server's status."""

    def call() -> grpc.RpcError:
        with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as caught:
            for _ in Stub(channel).ScoreEncrypted(iter(requests)):
                pass
        return caught.value

    error = await asyncio.to_thread(call)
    assert error.code() == code, error.details()
    assert field_violations(error)
    return error.details() or ""


def small_context(degree: int, bits: list[int], scale_bits: int) -> ts.Context:
    context = ts.context(ts.SCHEME_TYPE.CKKS, degree, coeff_mod_bit_sizes=bits)
    context.global_scale = 2.0**scale_bits
    context.generate_galois_keys()
    return context


async def test_unsupported_parameters_are_refused(layout_stub: Stub, layout_served: Served, pgs37: ScoringFile,
                                                  context: ts.Context, public_context: bytes) -> None:
    target = layout_served.target
    published = await layout_stub.GetScoreLayout(genomics_pb2.GetScoreLayoutRequest(score="breast"))
    layout = layout_of(published)
    ciphertexts = list(encrypt_dosages(context, np.ones(len(layout)), layout).ciphertexts)

    secret = bytes(context.serialize(save_secret_key=True))
    assert "carries a secret key" in await refused(target, messages("breast", secret, ciphertexts))
    bfv = ts.context(ts.SCHEME_TYPE.BFV, 8192, plain_modulus=1032193)
    bfv.generate_galois_keys()
    bfv_bytes = bytes(bfv.serialize(save_secret_key=False, save_galois_keys=True))
    assert "scheme BFV is not supported" in await refused(target, messages("breast", bfv_bytes, ciphertexts))
    small = public_context_bytes(small_context(4096, [40, 20, 40], 20))
    assert "poly_modulus_degree 4096 is not supported" in await refused(target, messages("breast", small, ciphertexts))
    coarse = public_context_bytes(small_context(8192, [60, 40, 40, 60], 20))
    assert "scale 2^20 is too small" in await refused(target, messages("breast", coarse, ciphertexts))
    assert "not a serialised TenSEAL context" in await refused(target, messages("breast", b"\x00junk", ciphertexts))
    assert "need 1 ciphertext(s)" in await refused(target, messages("breast", public_context, ciphertexts * 2))
    assert "ciphertexts[0]: not a CKKS vector" in await refused(target, messages("breast", public_context, [b"junk"]))
    # stream shape
    full = messages("breast", public_context, ciphertexts)
    assert "ended early" in await refused(target, full[:-1])
    assert "first message must be the header" in await refused(target, full[1:])
    assert "unknown score" in await refused(target, messages("lung", public_context, ciphertexts))
    huge = genomics_pb2.EncryptedScoreHeader(score="breast", public_context_length=1 << 40, ciphertext_lengths=[10])
    await refused(target, [genomics_pb2.ScoreEncryptedRequest(header=huge)], grpc.StatusCode.RESOURCE_EXHAUSTED)
    # and it still scores
    result = await encrypted(layout_served.target, vcf_text(pgs37, 1, seed=2), "breast", context)
    assert abs(result.score_sum - result.plaintext.score_sum) <= 1e-3


async def test_a_score_larger_than_one_ciphertext_is_packed_into_several(
    two_cancers_served: Served, synthetic_scoring_file: Path, context: ts.Context, colorectal_package: ModelPackage
) -> None:
    synthetic = read_scoring_file(synthetic_scoring_file)
    vcf = vcf_text(synthetic, 1, seed=17)
    result = await encrypted(two_cancers_served.target, vcf, SYNTHETIC_PGS, context)
    assert len(result.layout) == 5000 and len(result.layout.chunks(8192)) == 2
    expected = score_vcf(vcf, synthetic)[0]
    assert abs(result.score_sum - expected.score_sum) <= 1e-3
    by_id = {c.variant_id: c.contribution for c in expected.contributions}
    assert max(abs(v - by_id[i]) for i, v in zip(result.layout.variant_ids, result.contributions, strict=True)) <= 1e-3
    def published() -> RiskParameters:
        with GenomicsClient(two_cancers_served.target) as client:
            return client.risk_parameters(result.model)

    parameters = await asyncio.to_thread(published)
    assert parameters.pgs_id == SYNTHETIC_PGS and result.model.sha256 == colorectal_package.identity.sha256
    assert result.risk(parameters, 60, "female", 1).absolute_risk > result.risk(parameters, 60, "female", 0).absolute_risk
