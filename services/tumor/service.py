"""The tumour classification service, for `bentoml serve-grpc clinpred.services.tumor.service:svc`."""

from __future__ import annotations

from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.sealed import InMemoryReplayGuard
from clinpred.services.common.sealed_rpc import SealedCalls
from clinpred.services.common.serving import ServiceMount, bento_service
from clinpred.services.tumor.handlers import SERVICE, TumorHandler
from clinpred.services.tumor.servicer import TumorServicer
from clinpred.services.tumor.settings import TumorSettings

SERVICE_NAME = tumor_pb2.DESCRIPTOR.services_by_name["TumorClassificationService"].full_name


def tumor_mount(settings: TumorSettings) -> ServiceMount:
    # One servicer per process: loading fills its model and codec, whichever server calls the factory.
    # Replica-local replay guard: a replay to another replica within the window is not caught (README).
    sealed_calls = SealedCalls(
        SERVICE,
        tumor_pb2.DESCRIPTOR.services_by_name["TumorClassificationService"],
        settings,
        InMemoryReplayGuard(),
        stream_alternatives={"ClassifyStream": "ClassifyBatch"},
    )
    servicer = TumorServicer(
        TumorHandler(settings),
        settings.max_batch_size,
        settings.max_encrypted_ciphertexts,
        sealed_calls=sealed_calls,
        batch_window_ms=settings.batch_window_ms,
        batch_max_cases=settings.batch_max_cases,
    )
    return ServiceMount(
        name=SERVICE,
        service_names=(SERVICE_NAME,),
        servicer_factory=lambda: servicer,
        add_to_server=tumor_pb2_grpc.add_TumorClassificationServiceServicer_to_server,
        load=servicer.load,
        settings=settings,
    )


svc = bento_service(tumor_mount(TumorSettings()))
