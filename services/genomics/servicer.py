"""gRPC servicer of clinpred.genomics.v1: each method is one call to the shared `Rpc`.

codec.decode -> handler (off the event loop when it parses, scores or computes
on ciphertexts) -> codec.encode; stage timing is `Rpc`'s and the handler's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import cached_property

import grpc

from clinpred.services.api.genomics.v1 import genomics_pb2, genomics_pb2_grpc
from clinpred.services.common.rpc import Rpc
from clinpred.services.common.sealed_rpc import SealedCalls, SealedMethods
from clinpred.services.genomics.codec import GenomicsCodec
from clinpred.services.genomics.handlers import SERVICE, GenomicsHandler
from clinpred.services.genomics.settings import GenomicsSettings


class GenomicsServicer(SealedMethods, genomics_pb2_grpc.GenomicRiskServiceServicer):
    def __init__(self, handler: GenomicsHandler, settings: GenomicsSettings, *, sealed_calls: SealedCalls) -> None:
        self.sealed_calls = sealed_calls
        self.handler = handler
        self.settings = settings
        self.rpc = Rpc(SERVICE)

    @cached_property
    def codec(self) -> GenomicsCodec:
        # Built at the first call, once the models are loaded: requests are checked against the
        # configured cancers and PGS ids. Before loading this raises UNAVAILABLE and is not cached.
        return GenomicsCodec(self.settings, self.handler.cancers, self.handler.score_keys)

    async def ListScores(
        self, request: genomics_pb2.ListScoresRequest, context: grpc.aio.ServicerContext
    ) -> genomics_pb2.ListScoresResponse:
        # Blocking: it re-reads the scoring directory when its files change.
        return await self.rpc.unary(request, self.codec.decode_empty, self.handler.list_scores, self.codec.encode_scores)

    async def GetModelInfo(
        self, request: genomics_pb2.GetModelInfoRequest, context: grpc.aio.ServicerContext
    ) -> genomics_pb2.GetModelInfoResponse:
        codec = self.codec
        return await self.rpc.unary(request, codec.decode_empty, self.handler.model_info, codec.encode_model_info, blocking=False)

    async def GetScoreLayout(
        self, request: genomics_pb2.GetScoreLayoutRequest, context: grpc.aio.ServicerContext
    ) -> genomics_pb2.GetScoreLayoutResponse:
        codec = self.codec
        return await self.rpc.unary(request, codec.decode_layout, self.handler.layout, codec.encode_layout, blocking=False)

    async def AssessVcf(
        self, request: genomics_pb2.AssessVcfRequest, context: grpc.aio.ServicerContext
    ) -> genomics_pb2.AssessVcfResponse:
        return await self.rpc.unary(request, self.codec.decode_assess, self.handler.assess, self.codec.encode_assess)

    async def AssessVcfUpload(
        self, request_iterator: AsyncIterator[genomics_pb2.AssessVcfUploadRequest], context: grpc.aio.ServicerContext
    ) -> genomics_pb2.AssessVcfUploadResponse:
        codec = self.codec
        return await self.rpc.client_stream(
            request_iterator, codec.receive_upload, codec.decode_upload, self.handler.assess, codec.encode_upload
        )

    async def ScoreEncrypted(
        self, request_iterator: AsyncIterator[genomics_pb2.ScoreEncryptedRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[genomics_pb2.ScoreEncryptedResponse]:
        codec = self.codec
        async for response in self.rpc.client_to_server_stream(
            request_iterator,
            codec.receive_encrypted,
            codec.decode_encrypted,
            self.handler.score_encrypted,
            codec.encode_encrypted,
        ):
            yield response

    async def RegisterEvaluationKeys(
        self,
        request_iterator: AsyncIterator[genomics_pb2.RegisterEvaluationKeysRequest],
        context: grpc.aio.ServicerContext,
    ) -> genomics_pb2.RegisterEvaluationKeysResponse:
        codec = self.codec
        return await self.rpc.client_stream(
            request_iterator,
            codec.receive_evaluation_keys,
            codec.decode_evaluation_keys,
            self.handler.register_evaluation_keys,
            codec.encode_evaluation_keys,
        )
