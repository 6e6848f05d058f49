"""Each call times each of its stages exactly once, over real sockets: decode, read_vcf, score, predict,
explain, encrypted_score, register_evaluation_keys, encode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import tenseal as ts
from prometheus_client import REGISTRY

from clinpred.pilots.genomics.encrypted import create_client_context, encrypt_dosages, public_context_bytes
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.services.api.genomics.v1 import genomics_pb2
from clinpred.services.genomics.client import GenomicsClient, layout_of, patient
from tests.integration.genomics.conftest import Served, Stub, vcf_text

STAGES = ("decode", "read_vcf", "score", "predict", "explain", "encrypted_score", "register_evaluation_keys", "encode")


def stage_counts() -> dict[str, float]:
    return {
        s: REGISTRY.get_sample_value("clinpred_stage_duration_seconds_count", {"service": "genomics", "stage": s}) or 0.0
        for s in STAGES
    }


def added(before: dict[str, float]) -> dict[str, float]:
    after = stage_counts()
    return {s: after[s] - before[s] for s in STAGES if after[s] != before[s]}


def assessment() -> genomics_pb2.Assessment:
    return genomics_pb2.Assessment(build=genomics_pb2.GENOME_BUILD_GRCH37, patients=[patient(52, "female")])


async def test_an_assessment_times_each_stage_once(dir_stub: Stub, pgs37: ScoringFile) -> None:
    # three samples: predicting and explaining all of them is still one stage each
    vcf = vcf_text(pgs37, 3, seed=41)
    before = stage_counts()
    await dir_stub.AssessVcf(genomics_pb2.AssessVcfRequest(assessment=assessment(), vcf=vcf))
    once = {"decode": 1, "read_vcf": 1, "score": 1, "predict": 1, "explain": 1, "encode": 1}
    assert added(before) == once

    async def upload() -> AsyncIterator[genomics_pb2.AssessVcfUploadRequest]:
        header = genomics_pb2.UploadHeader(assessment=assessment(), content_length=len(vcf))
        yield genomics_pb2.AssessVcfUploadRequest(header=header)
        for start in range(0, len(vcf), 4096):
            yield genomics_pb2.AssessVcfUploadRequest(chunk=vcf[start:start + 4096])

    before = stage_counts()
    await dir_stub.AssessVcfUpload(upload())
    assert added(before) == once


async def test_lookups_and_encrypted_scoring_time_their_stages_once(layout_served: Served, layout_stub: Stub) -> None:
    before = stage_counts()
    published = await layout_stub.GetScoreLayout(genomics_pb2.GetScoreLayoutRequest(score="breast"))
    await layout_stub.ListScores(genomics_pb2.ListScoresRequest())
    await layout_stub.GetModelInfo(genomics_pb2.GetModelInfoRequest())
    assert added(before) == {"decode": 3, "encode": 3}

    context: ts.Context = create_client_context()
    layout = layout_of(published)
    ciphertexts = encrypt_dosages(context, np.ones(len(layout)), layout).ciphertexts

    def call() -> None:
        with GenomicsClient(layout_served.target) as client:
            client.score_ciphertexts("breast", public_context_bytes(context), ciphertexts)

    before = stage_counts()
    await asyncio.to_thread(call)
    assert added(before) == {"decode": 1, "encrypted_score": 1, "encode": 1}

    def registered() -> None:
        with GenomicsClient(layout_served.target) as client:
            client.score_registered("breast", public_context_bytes(context), ciphertexts)

    before = stage_counts()
    await asyncio.to_thread(registered)
    assert added(before) == {"decode": 2, "register_evaluation_keys": 1, "encrypted_score": 1, "encode": 2}
