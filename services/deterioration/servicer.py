"""gRPC servicer of clinpred.deterioration.v1: each method is one call of the shared RPC path (decode, handle, encode).

Store and model calls block, so their handlers run in worker threads (the
default of `Rpc.unary`) and the event loop keeps serving other calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as pb_grpc
from clinpred.services.common.rpc import Rpc
from clinpred.services.common.sealed_rpc import SealedCalls, SealedMethods
from clinpred.services.deterioration.codec import DeteriorationCodec
from clinpred.services.deterioration.handlers import SERVICE, DeteriorationHandler


class DeteriorationServicer(SealedMethods, pb_grpc.DeteriorationServiceServicer):
    def __init__(self, handler: DeteriorationHandler, codec: DeteriorationCodec, *, sealed_calls: SealedCalls) -> None:
        self.sealed_calls = sealed_calls
        self.handler = handler
        self.codec = codec
        self.rpc = Rpc(SERVICE)

    async def RegisterPatient(
        self, request: pb.RegisterPatientRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterPatientResponse:
        return await self.rpc.unary(request, self.codec.decode_register, self.handler.register, self.codec.encode_register)

    async def RecordObservations(
        self, request: pb.RecordObservationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordObservationsResponse:
        return await self.rpc.unary(request, self.codec.decode_record, self.handler.record, self.codec.encode_record)

    async def GetLatestRisk(
        self, request: pb.GetLatestRiskRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetLatestRiskResponse:
        return await self.rpc.unary(request, self.codec.decode_latest, self.handler.latest, self.codec.encode_latest)

    async def ListRiskHistory(
        self, request: pb.ListRiskHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRiskHistoryResponse:
        return await self.rpc.unary(request, self.codec.decode_history, self.handler.history, self.codec.encode_history)

    async def WatchRisk(
        self, request: pb.WatchRiskRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchRiskResponse]:
        async for response in self.rpc.server_stream(
            request, self.codec.decode_watch, self.handler.watch, self.codec.encode_watch
        ):
            yield response

    async def ScoreObservations(
        self, request: pb.ScoreObservationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ScoreObservationsResponse:
        return await self.rpc.unary(request, self.codec.decode_score, self.handler.score, self.codec.encode_stateless)

    async def ExportFhir(self, request: pb.ExportFhirRequest, context: grpc.aio.ServicerContext) -> pb.ExportFhirResponse:
        return await self.rpc.unary(request, self.codec.decode_export, self.handler.fhir_export, self.codec.encode_export)

    async def GetModelInfo(self, request: pb.GetModelInfoRequest, context: grpc.aio.ServicerContext) -> pb.GetModelInfoResponse:
        return await self.rpc.unary(
            request,
            self.codec.decode_model_info,
            self.handler.model_info,
            self.codec.encode_model_info,
            blocking=False,
        )
