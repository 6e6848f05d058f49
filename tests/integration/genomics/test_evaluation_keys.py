"""Registered evaluation keys over gRPC: register once, then ciphertexts and a SHA-256 only; a replica that
does not hold the context answers FAILED_PRECONDITION and the client registers again by itself; bounds;
another tenant cannot use a digest; a private score publishes no weights and answers the total only."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest
import tenseal as ts

from clinpred.pilots.common.call import Call
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.genomics.encrypted import (
    EncryptedScoreRequest,
    create_client_context,
    decrypt_score,
    encrypt_dosages,
    public_context_bytes,
)
from clinpred.pilots.genomics.evaluation_keys import (
    NOT_REGISTERED_REASON,
    EvaluationKeysNotRegistered,
    EvaluationKeysRequest,
)
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.services.api.genomics.v1 import genomics_pb2
from clinpred.services.common.model_store import register_package
from clinpred.services.genomics.client import EncryptedScoreResult, GenomicsClient, error_reason, layout_of, patient
from clinpred.services.genomics.handlers import GenomicsHandler
from clinpred.services.genomics.settings import GenomicsSettings
from tests.ckks_crafting import every_slot
from tests.integration.genomics.conftest import Served, Stub, _serve, vcf_text
from tests.support import field_violations

# The target for the 313-variant PGS000004 score, per call once the keys are registered.
MAX_WIRE_BYTES = 1_000_000
TOLERANCE = 1e-3  # as the inline encrypted tests: CKKS noise at scale 2^40 is far below it
SHORT_TTL = 1.0


@pytest.fixture(scope="module")
def context() -> ts.Context:
    return create_client_context()


@pytest.fixture(scope="module")
def public(context: ts.Context) -> bytes:
    return public_context_bytes(context)


async def serve(breast_package: ModelPackage, **settings: object) -> AsyncIterator[Served]:
    register_package(breast_package)
    server, served = await _serve(GenomicsSettings(**settings))  # type: ignore[arg-type]
    yield served
    await server.stop(grace=None)


@pytest.fixture(scope="module")
async def short_ttl(breast_package: ModelPackage) -> AsyncIterator[Served]:
    async for served in serve(breast_package, evaluation_keys_ttl_seconds=SHORT_TTL):
        yield served


@pytest.fixture(scope="module")
async def forgetful(breast_package: ModelPackage) -> AsyncIterator[Served]:
    """Drops every context at once: as if each call reached a replica other than the one registered with."""
    async for served in serve(breast_package, evaluation_keys_ttl_seconds=1e-6):
        yield served


@pytest.fixture(scope="module")
async def private(breast_package: ModelPackage) -> AsyncIterator[Served]:
    async for served in serve(breast_package, private_scores=["breast"]):
        yield served


@pytest.fixture(scope="module")
async def bounded(breast_package: ModelPackage, public: bytes) -> AsyncIterator[Served]:
    async for served in serve(breast_package, max_evaluation_keys_bytes_per_tenant=int(1.5 * len(public))):
        yield served


def in_thread(target: str, work: object) -> object:
    def call() -> object:
        with GenomicsClient(target) as client:
            return work(client)  # type: ignore[operator]

    return asyncio.to_thread(call)


async def plaintext_score(stub: Stub, vcf: bytes) -> float:
    request = genomics_pb2.AssessVcfRequest(
        assessment=genomics_pb2.Assessment(build=genomics_pb2.GENOME_BUILD_GRCH37, patients=[patient(52, "female")]),
        vcf=vcf,
    )
    return float((await stub.AssessVcf(request)).assessment.samples[0].risks[0].score_sum)


def scored(target: str, ciphertexts: list[bytes], digest: str) -> list[genomics_pb2.ScoreEncryptedResponse]:
    header = genomics_pb2.EncryptedScoreHeader(
        score="breast", ciphertext_lengths=[len(c) for c in ciphertexts], public_context_sha256=digest
    )
    requests = [genomics_pb2.ScoreEncryptedRequest(header=header)]
    requests += [
        genomics_pb2.ScoreEncryptedRequest(ciphertext_chunk=genomics_pb2.CiphertextChunk(index=i, data=blob))
        for i, blob in enumerate(ciphertexts)
    ]
    with grpc.insecure_channel(target) as channel:
        return list(Stub(channel).ScoreEncrypted(iter(requests), timeout=60))


def refusal(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value


async def test_register_once_then_each_call_sends_ciphertexts_and_a_digest_only(
    layout_served: Served, layout_stub: Stub, pgs37: ScoringFile, context: ts.Context, public: bytes
) -> None:
    vcf = vcf_text(pgs37, 1, seed=41)

    def work(client: GenomicsClient) -> tuple[genomics_pb2.RegisterEvaluationKeysResponse, list[EncryptedScoreResult]]:
        registration = client.register_evaluation_keys(public)
        return registration, [client.score_encrypted(vcf, "GRCh37", "breast", context=context) for _ in range(2)]

    registration, results = await in_thread(layout_served.target, work)  # type: ignore[misc]
    assert registration.public_context_sha256 == hashlib.sha256(public).hexdigest()
    assert registration.public_context_length == len(public) > 30_000_000
    assert registration.expires_after_idle_seconds == layout_served.settings.evaluation_keys_ttl_seconds
    plain = await plaintext_score(layout_stub, vcf)
    for result in results:
        assert not result.registered_keys
        assert abs(result.score_sum - plain) <= TOLERANCE
        assert result.bytes_sent + result.bytes_received <= MAX_WIRE_BYTES
        assert len(result.contributions) == 313
    # The same ciphertexts with the context inline: the compatible path, 35 MB more on the wire.
    inline = await in_thread(
        layout_served.target, lambda client: client.score_encrypted(vcf, "GRCh37", "breast", context=context, register=False)
    )
    assert abs(inline.score_sum - plain) <= TOLERANCE  # type: ignore[attr-defined]
    assert inline.bytes_sent > len(public)  # type: ignore[attr-defined]


async def test_an_unknown_digest_is_failed_precondition_and_the_client_registers_again_by_itself(
    short_ttl: Served, pgs37: ScoringFile, context: ts.Context, public: bytes
) -> None:
    layout = layout_of(await in_thread(short_ttl.target, lambda client: client.score_layout("breast")))  # type: ignore[arg-type]
    ciphertexts = list(encrypt_dosages(context, np.ones(len(layout)), layout).ciphertexts)
    digest = hashlib.sha256(public).hexdigest()
    never = await asyncio.to_thread(refusal, lambda: scored(short_ttl.target, ciphertexts, digest))
    assert never.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(never) == NOT_REGISTERED_REASON
    vcf = vcf_text(pgs37, 1, seed=43)

    def work(client: GenomicsClient) -> tuple[EncryptedScoreResult, grpc.RpcError, EncryptedScoreResult]:
        first = client.score_encrypted(vcf, "GRCh37", "breast", context=context)
        time.sleep(SHORT_TTL * 1.5)  # the replica drops the unused context
        expired = refusal(lambda: scored(short_ttl.target, ciphertexts, digest))
        return first, expired, client.score_encrypted(vcf, "GRCh37", "breast", context=context)

    first, expired, again = await in_thread(short_ttl.target, work)  # type: ignore[misc]
    assert expired.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(expired) == NOT_REGISTERED_REASON
    assert abs(again.score_sum - first.score_sum) <= TOLERANCE
    assert first.registered_keys and again.registered_keys  # both found the replica without it, and recovered
    assert abs(again.score_sum - again.plaintext.score_sum) <= TOLERANCE


async def test_when_the_retry_misses_the_context_again_the_client_sends_it_inline(
    forgetful: Served, pgs37: ScoringFile, context: ts.Context, public: bytes
) -> None:
    vcf = vcf_text(pgs37, 1, seed=45)

    def work(client: GenomicsClient) -> tuple[EncryptedScoreResult, int]:
        return client.score_encrypted(vcf, "GRCh37", "breast"), client.registrations

    result, registrations = await in_thread(forgetful.target, work)  # type: ignore[misc]
    assert registrations == 2  # once before the call, once after the first miss
    assert result.bytes_sent > len(public) and abs(result.score_sum - result.plaintext.score_sum) <= TOLERANCE


async def test_registration_limits(bounded: Served, public: bytes) -> None:
    other = public_context_bytes(create_client_context())

    def work(client: GenomicsClient) -> tuple[grpc.RpcError, grpc.RpcError]:
        client.register_evaluation_keys(public)
        full = refusal(lambda: client.register_evaluation_keys(other))
        header = genomics_pb2.EvaluationKeysHeader(public_context_length=2 * len(public))
        request = genomics_pb2.RegisterEvaluationKeysRequest(header=header)
        large = refusal(lambda: client.stub.RegisterEvaluationKeys(iter([request]), timeout=30))
        return full, large

    full, large = await in_thread(bounded.target, work)  # type: ignore[misc]
    assert full.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, full.details()
    assert large.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "exceed the limit" in field_violations(large)["stream[0].header.public_context_length"]


async def test_a_wrong_digest_or_a_truncated_registration_is_invalid(layout_served: Served, public: bytes) -> None:
    def work(client: GenomicsClient) -> tuple[grpc.RpcError, grpc.RpcError]:
        header = genomics_pb2.EvaluationKeysHeader(public_context_length=len(public), public_context_sha256="ab" * 32)
        requests = [genomics_pb2.RegisterEvaluationKeysRequest(header=header)]
        requests += [
            genomics_pb2.RegisterEvaluationKeysRequest(public_context_chunk=public[i : i + (1 << 20)])
            for i in range(0, len(public), 1 << 20)
        ]
        wrong = refusal(lambda: client.stub.RegisterEvaluationKeys(iter(requests), timeout=60))
        truncated = refusal(lambda: client.stub.RegisterEvaluationKeys(iter(requests[:-1]), timeout=60))
        return wrong, truncated

    wrong, truncated = await in_thread(layout_served.target, work)  # type: ignore[misc]
    assert field_violations(wrong) == {"stream[0].header.public_context_sha256": "does not match the bytes received"}
    assert truncated.code() == grpc.StatusCode.INVALID_ARGUMENT and "truncated" in (truncated.details() or "")


async def test_another_tenant_cannot_use_a_digest(breast_package: ModelPackage, context: ts.Context, public: bytes) -> None:
    register_package(breast_package)
    handler = GenomicsHandler(GenomicsSettings())
    handler.load()
    digest = handler.register_evaluation_keys(
        EvaluationKeysRequest(public, "stream[*].public_context_chunk"), Call("hospital-a", "genetics")
    ).sha256
    layout = handler.predictor("breast").layout
    ciphertexts = encrypt_dosages(context, np.ones(len(layout)), layout).ciphertexts
    request = EncryptedScoreRequest("breast", b"", ciphertexts, context_sha256=digest)
    answer = handler.score_encrypted(request, Call("hospital-a", "genetics"))
    assert decrypt_score(context, answer.result, layout).score_sum == pytest.approx(sum(layout.weights), abs=TOLERANCE)
    with pytest.raises(EvaluationKeysNotRegistered):
        handler.score_encrypted(request, Call("hospital-b", "genetics"))


async def test_a_private_score_publishes_no_weights_and_answers_the_total_only(
    private: Served, layout_stub: Stub, pgs37: ScoringFile, context: ts.Context, public: bytes
) -> None:
    published = await in_thread(private.target, lambda client: client.score_layout("breast"))
    assert published.private_weights and list(published.weights) == []  # type: ignore[attr-defined]
    assert len(published.variant_ids) == len(published.effect_alleles) == 313  # type: ignore[attr-defined]
    vcf = vcf_text(pgs37, 1, seed=47)
    result = await in_thread(private.target, lambda client: client.score_encrypted(vcf, "GRCh37", "breast", context=context))
    assert abs(result.score_sum - await plaintext_score(layout_stub, vcf)) <= TOLERANCE  # type: ignore[attr-defined]
    assert result.contributions.size == 0 and result.top_variants() == []  # type: ignore[attr-defined]
    layout = layout_of(published)  # type: ignore[arg-type]
    ciphertexts = list(encrypt_dosages(context, np.ones(len(layout)), layout).ciphertexts)
    answers = await asyncio.to_thread(scored, private.target, ciphertexts, hashlib.sha256(public).hexdigest())
    assert list(answers[0].summary.contribution_lengths) == []
    assert {a.WhichOneof("part") for a in answers} == {"summary", "score_chunk"}
    slots = every_slot(context, b"".join(a.score_chunk.data for a in answers[1:]))
    assert np.abs(slots[1:]).max() <= 1e-4  # no partial sums, hence no products, in the other slots
    # Plaintext assessment keeps the weights too: no per-variant contributions.
    async with grpc.aio.insecure_channel(private.target) as channel:
        request = genomics_pb2.AssessVcfRequest(
            assessment=genomics_pb2.Assessment(
                build=genomics_pb2.GENOME_BUILD_GRCH37, patients=[patient(52, "female")], top_variants=10
            ),
            vcf=vcf,
        )
        risk = (await Stub(channel).AssessVcf(request)).assessment.samples[0].risks[0]
    assert list(risk.top_variants) == [] and abs(risk.score_sum - result.score_sum) <= TOLERANCE  # type: ignore[attr-defined]
