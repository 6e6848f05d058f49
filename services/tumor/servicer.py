"""gRPC servicer of clinpred.tumor.v1: decode, classify, encode; nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.metrics import stage
from clinpred.services.tumor.inference import SERVICE, TumorInference

# A batch this large is classified off the event loop so that other calls keep flowing.
_OFFLOAD_ROWS = 16


class TumorServicer(tumor_pb2_grpc.TumorClassificationServiceServicer):
    def __init__(self, inference: TumorInference) -> None:
        self.inference = inference

    async def Classify(
        self, request: tumor_pb2.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> tumor_pb2.ClassifyResponse:
        codec = self.inference.codec
        with stage(SERVICE, "decode"):
            case_ids, rows = codec.decode_classify(request)
        (result,) = self.inference.classify(rows)
        with stage(SERVICE, "encode"):
            return tumor_pb2.ClassifyResponse(classification=codec.encode(case_ids[0], result))

    async def ClassifyBatch(
        self, request: tumor_pb2.ClassifyBatchRequest, context: grpc.aio.ServicerContext
    ) -> tumor_pb2.ClassifyBatchResponse:
        codec = self.inference.codec
        with stage(SERVICE, "decode"):
            case_ids, rows = codec.decode_batch(request)
        if len(rows) >= _OFFLOAD_ROWS:
            results = await asyncio.to_thread(self.inference.classify, rows)
        else:
            results = self.inference.classify(rows)
        with stage(SERVICE, "encode"):
            return tumor_pb2.ClassifyBatchResponse(
                classifications=[codec.encode(case_id, r) for case_id, r in zip(case_ids, results)]
            )

    async def ClassifyStream(
        self, request_iterator: AsyncIterator[tumor_pb2.ClassifyStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tumor_pb2.ClassifyStreamResponse]:
        codec = self.inference.codec
        index = 0
        async for request in request_iterator:
            with stage(SERVICE, "decode"):
                case_ids, rows = codec.decode_stream_item(request, index)
            (result,) = self.inference.classify(rows)
            with stage(SERVICE, "encode"):
                yield tumor_pb2.ClassifyStreamResponse(classification=codec.encode(case_ids[0], result))
            index += 1

    async def GetModelInfo(
        self, request: tumor_pb2.GetModelInfoRequest, context: grpc.aio.ServicerContext
    ) -> tumor_pb2.GetModelInfoResponse:
        classifier = self.inference.classifier
        coverage = classifier.conformal.coverage
        return self.inference.codec.encode_model_info(classifier.identity, classifier.metrics, coverage)
