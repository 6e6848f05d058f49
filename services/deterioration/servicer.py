"""gRPC servicer of clinpred.deterioration.v1: decode, call inference, encode.

Store and model calls block, so they run in worker threads and the event loop
keeps serving other calls.
"""

from __future__ import annotations

import json
from asyncio import to_thread
from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc

from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as pb_grpc
from clinpred.services.common import codec as common
from clinpred.services.deterioration import codec, fhir
from clinpred.services.deterioration.inference import DeteriorationInference

Context: TypeAlias = grpc.aio.ServicerContext


class DeteriorationServicer(pb_grpc.DeteriorationServiceServicer):
    def __init__(self, inference: DeteriorationInference) -> None:
        self.inference = inference
        settings = inference.settings
        self.codec = codec.DeteriorationCodec(settings.max_batch_size, settings.max_page_size)

    async def RegisterPatient(self, request: pb.RegisterPatientRequest, context: Context) -> pb.RegisterPatientResponse:
        patient = self.codec.decode_register(request)
        record = await to_thread(self.inference.register, patient)
        return pb.RegisterPatientResponse(patient=codec.patient_message(record))

    async def RecordObservations(
        self, request: pb.RecordObservationsRequest, context: Context
    ) -> pb.RecordObservationsResponse:
        patient = await to_thread(self.inference.patient, self.codec.decode_patient_id(request))
        observations = self.codec.decode_record(request, patient)
        outcome = await to_thread(self.inference.record, patient.patient_id, observations)
        assert outcome.score is not None
        return pb.RecordObservationsResponse(
            stored=outcome.stored, duplicates=outcome.duplicates, score=codec.encode_score(outcome.score)
        )

    async def GetLatestRisk(self, request: pb.GetLatestRiskRequest, context: Context) -> pb.GetLatestRiskResponse:
        latest = await to_thread(self.inference.latest, self.codec.decode_patient_id(request))
        if latest.version == request.known_version:
            return pb.GetLatestRiskResponse(unchanged=pb.Unchanged(version=latest.version))
        return pb.GetLatestRiskResponse(score=codec.encode_score(latest))

    async def ListRiskHistory(self, request: pb.ListRiskHistoryRequest, context: Context) -> pb.ListRiskHistoryResponse:
        patient_id, page_size, before = self.codec.decode_history(request)
        page, next_before = await to_thread(self.inference.history, patient_id, page_size, before)
        return pb.ListRiskHistoryResponse(
            scores=[codec.encode_score(s) for s in page],
            next_page_token=str(next_before) if next_before is not None else "",
        )

    async def WatchRisk(self, request: pb.WatchRiskRequest, context: Context) -> AsyncIterator[pb.WatchRiskResponse]:
        query = self.codec.decode_watch(request)
        async for record in self.inference.watch(query):
            yield codec.watch_response(record, query)

    async def ScoreObservations(
        self, request: pb.ScoreObservationsRequest, context: Context
    ) -> pb.ScoreObservationsResponse:
        scoring = self.codec.decode_score(request)
        payload = await to_thread(self.inference.score_stateless, scoring)
        return pb.ScoreObservationsResponse(score=codec.encode_payload(scoring.patient.record.patient_id, 0, payload))

    async def ExportFhir(self, request: pb.ExportFhirRequest, context: Context) -> pb.ExportFhirResponse:
        latest = await to_thread(self.inference.latest, self.codec.decode_patient_id(request))
        return pb.ExportFhirResponse(
            risk_assessment_json=json.dumps(fhir.risk_assessment(latest)),
            pews_observation_json=json.dumps(fhir.pews_observation(latest)),
        )

    async def GetModelInfo(self, request: pb.GetModelInfoRequest, context: Context) -> pb.GetModelInfoResponse:
        predictor = self.inference.runtime.predictor
        return pb.GetModelInfoResponse(
            model=common.encode_identity(predictor.identity),
            horizon_hours=int(predictor.horizon_hours),
            features=[common.encode_feature_spec(spec) for spec in predictor.schema.features],
            metrics=common.encode_metrics(self.inference.metrics),
            signals=codec.signal_specs(),
            max_batch_size=self.inference.settings.max_batch_size,
        )
