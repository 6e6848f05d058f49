"""gRPC servicer of clinpred.genomics.v1: decode, assess or score, encode; nothing else.

Parsing, scoring and homomorphic arithmetic run off the event loop, so that
other calls keep flowing during a large upload or an encrypted score.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from clinpred.services.api.genomics.v1 import genomics_pb2, genomics_pb2_grpc
from clinpred.services.common.metrics import stage
from clinpred.services.genomics.codec import receive_encrypted, receive_upload
from clinpred.services.genomics.inference import SERVICE, SINGLE_MESSAGE, UPLOAD, GenomicsInference


class GenomicsServicer(genomics_pb2_grpc.GenomicRiskServiceServicer):
    def __init__(self, inference: GenomicsInference) -> None:
        self.inference = inference

    async def ListScores(
        self, request: genomics_pb2.ListScoresRequest, context: grpc.aio.ServicerContext
    ) -> genomics_pb2.ListScoresResponse:
        statuses = await asyncio.to_thread(self.inference.list_scores)
        return self.inference.codec.encode_scores(statuses)

    async def AssessVcf(
        self, request: genomics_pb2.AssessVcfRequest, context: grpc.aio.ServicerContext
    ) -> genomics_pb2.AssessVcfResponse:
        codec = self.inference.codec
        with stage(SERVICE, "decode"):
            spec, vcf = codec.decode_assess(request)
        result = await asyncio.to_thread(self.inference.assess, spec, vcf, SINGLE_MESSAGE)
        with stage(SERVICE, "encode"):
            return genomics_pb2.AssessVcfResponse(assessment=codec.encode_assessment(result, self.inference.predictors))

    async def AssessVcfUpload(
        self, request_iterator: AsyncIterator[genomics_pb2.AssessVcfUploadRequest], context: grpc.aio.ServicerContext
    ) -> genomics_pb2.AssessVcfUploadResponse:
        codec = self.inference.codec
        spec, chunks = await receive_upload(codec, request_iterator)
        result = await asyncio.to_thread(self.inference.assess, spec, chunks, UPLOAD)
        with stage(SERVICE, "encode"):
            return genomics_pb2.AssessVcfUploadResponse(assessment=codec.encode_assessment(result, self.inference.predictors))

    async def GetScoreLayout(
        self, request: genomics_pb2.GetScoreLayoutRequest, context: grpc.aio.ServicerContext
    ) -> genomics_pb2.GetScoreLayoutResponse:
        codec = self.inference.codec
        predictor, layout = self.inference.layout(codec.decode_layout_request(request))
        return codec.encode_layout(predictor, layout, self.inference.layout_build(predictor))

    async def ScoreEncrypted(
        self, request_iterator: AsyncIterator[genomics_pb2.ScoreEncryptedRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[genomics_pb2.ScoreEncryptedResponse]:
        codec = self.inference.codec
        request = await receive_encrypted(codec, request_iterator)
        predictor, result = await asyncio.to_thread(self.inference.score_encrypted, request)
        _, layout = self.inference.layout(request.score)
        for answer in codec.encode_encrypted(result, layout, predictor, self.inference.settings.response_chunk_bytes):
            yield answer

    async def GetModelInfo(
        self, request: genomics_pb2.GetModelInfoRequest, context: grpc.aio.ServicerContext
    ) -> genomics_pb2.GetModelInfoResponse:
        return self.inference.codec.encode_model_info(self.inference.predictors)
