"""gRPC servicer of clinpred.tumor.v1: each method is one call of the shared RPC path (decode, handle, encode)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from clinpred.pilots.common.call import Call
from clinpred.pilots.common.errors import ModelUnavailable
from clinpred.pilots.tumor.classifier import ClassifiedCase, TumorCases
from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.batching import CallBatcher
from clinpred.services.common.rpc import Rpc
from clinpred.services.common.sealed_rpc import SealedCalls, SealedMethods
from clinpred.services.tumor.codec import TumorCodec
from clinpred.services.tumor.handlers import SERVICE, TumorHandler

# A batch this large is classified off the event loop so that other calls keep flowing;
# below it, and for a single case, the hop to a worker thread costs more than the prediction.
OFF_LOOP_CASES = 16


class TumorServicer(SealedMethods, tumor_pb2_grpc.TumorClassificationServiceServicer):
    def __init__(
        self,
        handler: TumorHandler,
        max_batch_size: int,
        max_encrypted_ciphertexts: int,
        *,
        sealed_calls: SealedCalls,
        batch_window_ms: float = 0.0,
        batch_max_cases: int = 64,
    ) -> None:
        self.sealed_calls = sealed_calls
        self.handler = handler
        self.max_batch_size = max_batch_size
        self.max_encrypted_ciphertexts = max_encrypted_ciphertexts
        self.rpc = Rpc(SERVICE)
        self._codec: TumorCodec | None = None
        # Classify and stream messages (one case each) of concurrent calls are classified together.
        self.batcher: CallBatcher[tuple[TumorCases, Call], list[ClassifiedCase]] | None = (
            CallBatcher(SERVICE, handler.classify_together, window_seconds=batch_window_ms / 1000, max_items=batch_max_cases)
            if batch_window_ms > 0
            else None
        )

    def load(self) -> None:
        """Loads the model, then the codec for its schema (once per load, not per request)."""
        classifier = self.handler.load()
        self._codec = TumorCodec.for_model(classifier.info, self.max_batch_size, self.max_encrypted_ciphertexts)

    @property
    def codec(self) -> TumorCodec:
        if self._codec is None:
            raise ModelUnavailable(f"the {SERVICE} model is not loaded yet")
        return self._codec

    async def Classify(self, request: tumor_pb2.ClassifyRequest, context: grpc.aio.ServicerContext) -> tumor_pb2.ClassifyResponse:
        codec = self.codec
        if self.batcher is not None:
            return await self.rpc.unary_batched(request, codec.decode_classify, self.batcher, codec.encode_classify)
        return await self.rpc.unary(request, codec.decode_classify, self.handler.classify, codec.encode_classify, blocking=False)

    async def ClassifyBatch(
        self, request: tumor_pb2.ClassifyBatchRequest, context: grpc.aio.ServicerContext
    ) -> tumor_pb2.ClassifyBatchResponse:
        codec = self.codec
        return await self.rpc.unary(
            request,
            codec.decode_batch,
            self.handler.classify,
            codec.encode_batch,
            blocking=lambda cases: len(cases) >= OFF_LOOP_CASES,
        )

    async def ClassifyStream(
        self, request_iterator: AsyncIterator[tumor_pb2.ClassifyStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tumor_pb2.ClassifyStreamResponse]:
        codec = self.codec
        async for response in self.rpc.each(
            request_iterator, codec.decode_stream_item, self.handler.classify, codec.encode_stream_item, blocking=False
        ):
            yield response

    async def GetModelInfo(
        self, request: tumor_pb2.GetModelInfoRequest, context: grpc.aio.ServicerContext
    ) -> tumor_pb2.GetModelInfoResponse:
        codec = self.codec
        return await self.rpc.unary(
            request, codec.decode_model_info, self.handler.model_info, codec.encode_model_info, blocking=False
        )

    async def GetEncryptionLayout(
        self, request: tumor_pb2.GetEncryptionLayoutRequest, context: grpc.aio.ServicerContext
    ) -> tumor_pb2.GetEncryptionLayoutResponse:
        codec = self.codec
        return await self.rpc.unary(
            request,
            codec.decode_encryption_layout,
            self.handler.encryption_layout,
            codec.encode_encryption_layout,
            blocking=False,
        )

    async def ClassifyEncrypted(
        self, request: tumor_pb2.ClassifyEncryptedRequest, context: grpc.aio.ServicerContext
    ) -> tumor_pb2.ClassifyEncryptedResponse:
        codec = self.codec
        # Homomorphic arithmetic (and a first context's NTT tables) runs off the event loop.
        return await self.rpc.unary(
            request,
            codec.decode_classify_encrypted,
            self.handler.classify_encrypted,
            codec.encode_classify_encrypted,
            blocking=True,
        )
