"""The genomic risk service, for `bentoml serve-grpc clinpred.services.genomics.service:svc`."""

from __future__ import annotations

from clinpred.services.api.genomics.v1 import genomics_pb2, genomics_pb2_grpc
from clinpred.services.common.sealed import InMemoryReplayGuard
from clinpred.services.common.sealed_rpc import SealedCalls
from clinpred.services.common.serving import ServiceMount, bento_service
from clinpred.services.genomics.handlers import SERVICE, GenomicsHandler
from clinpred.services.genomics.servicer import GenomicsServicer
from clinpred.services.genomics.settings import GenomicsSettings

SERVICE_NAME = genomics_pb2.DESCRIPTOR.services_by_name["GenomicRiskService"].full_name


def genomics_mount(settings: GenomicsSettings) -> ServiceMount:
    handler = GenomicsHandler(settings)
    # Replica-local replay guard: a replay to another replica within the window is not caught (README).
    # ScoreEncrypted streams, and its dosages and score are already encrypted end to end.
    sealed_calls = SealedCalls(
        SERVICE,
        genomics_pb2.DESCRIPTOR.services_by_name["GenomicRiskService"],
        settings,
        InMemoryReplayGuard(),
        stream_alternatives={"AssessVcfUpload": "AssessVcf"},
    )
    return ServiceMount(
        name=SERVICE,
        service_names=(SERVICE_NAME,),
        servicer_factory=lambda: GenomicsServicer(handler, settings, sealed_calls=sealed_calls),
        add_to_server=genomics_pb2_grpc.add_GenomicRiskServiceServicer_to_server,
        load=handler.load,
        settings=settings,
    )


svc = bento_service(genomics_mount(GenomicsSettings()))
