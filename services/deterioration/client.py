"""A small client of clinpred.deterioration.v1 for apps, scripts and `clinpred call deterioration`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from google.protobuf.json_format import ParseDict

from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as pb_grpc
from clinpred.services.common.channel import ClientTls, open_channel
from clinpred.services.common.sealed_channel import SealedChannel
from clinpred.services.common.sealing_keys import SealingKey


def observation(observation_id: str, observed_at: datetime, **values: Any) -> pb.Observation:
    message = pb.Observation(observation_id=observation_id, **values)
    message.observed_at.FromDatetime(observed_at)
    return message


class DeteriorationClient:
    """`sealed=True`: every unary call travels sealed to the service's key (or the pinned `sealing_key`);
    `watch` then raises SealedStreamError (poll `latest`)."""

    def __init__(
        self,
        target: str,
        timeout: float = 10.0,
        tls: ClientTls | None = None,
        *,
        sealed: bool = False,
        sealing_key: SealingKey | None = None,
    ) -> None:
        self.channel = open_channel(target, tls)
        service = pb.DESCRIPTOR.services_by_name["DeteriorationService"]
        calls = SealedChannel(self.channel, service, sealing_key) if sealed else self.channel
        self.stub = pb_grpc.DeteriorationServiceStub(calls)
        self.timeout = timeout

    def __enter__(self) -> DeteriorationClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.channel.close()

    def register_patient(self, patient: pb.Patient | Mapping[str, Any]) -> pb.Patient:
        message = patient if isinstance(patient, pb.Patient) else ParseDict(dict(patient), pb.Patient())
        return self.stub.RegisterPatient(pb.RegisterPatientRequest(patient=message), timeout=self.timeout).patient

    def record(
        self, patient_id: str, observations: Sequence[pb.Observation | Mapping[str, Any]]
    ) -> pb.RecordObservationsResponse:
        messages = [o if isinstance(o, pb.Observation) else ParseDict(dict(o), pb.Observation()) for o in observations]
        request = pb.RecordObservationsRequest(patient_id=patient_id, observations=messages)
        return self.stub.RecordObservations(request, timeout=self.timeout)

    def latest(self, patient_id: str, known_version: int = 0) -> pb.GetLatestRiskResponse:
        request = pb.GetLatestRiskRequest(patient_id=patient_id, known_version=known_version)
        return self.stub.GetLatestRisk(request, timeout=self.timeout)

    def history(self, patient_id: str, page_size: int = 20, page_token: str = "") -> pb.ListRiskHistoryResponse:
        request = pb.ListRiskHistoryRequest(patient_id=patient_id, page_size=page_size, page_token=page_token)
        return self.stub.ListRiskHistory(request, timeout=self.timeout)

    def watch(
        self,
        ward: str = "",
        team: str = "",
        alert_band: pb.RiskBand = pb.RISK_BAND_UNSPECIFIED,
        resume_token: str = "",
        timeout: float | None = None,
    ) -> Iterator[pb.WatchRiskResponse]:
        """New scores as they are stored. `timeout` ends the watch after that many seconds (default: never,
        as a dashboard watches for a shift; resume with the last `resume_token` after a reconnect)."""
        request = pb.WatchRiskRequest(ward=ward, team=team, alert_band=alert_band, resume_token=resume_token)
        yield from self.stub.WatchRisk(request, timeout=timeout)

    def score(self, patient: pb.Patient, observations: Sequence[pb.Observation], at: datetime | None = None) -> pb.RiskScore:
        request = pb.ScoreObservationsRequest(patient=patient, observations=observations)
        if at is not None:
            request.at.FromDatetime(at)
        return self.stub.ScoreObservations(request, timeout=self.timeout).score

    def export_fhir(self, patient_id: str) -> pb.ExportFhirResponse:
        return self.stub.ExportFhir(pb.ExportFhirRequest(patient_id=patient_id), timeout=self.timeout)

    def model_info(self) -> pb.GetModelInfoResponse:
        return self.stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=self.timeout)
