"""The deterioration service, for `bentoml serve-grpc clinpred.services.deterioration.service:svc`."""

from __future__ import annotations

from clinpred.services.api.deterioration.v1 import deterioration_pb2, deterioration_pb2_grpc
from clinpred.services.common.serving import ServiceMount, bento_service
from clinpred.services.deterioration.codec import DeteriorationCodec
from clinpred.services.deterioration.handlers import SERVICE, DeteriorationHandler
from clinpred.services.deterioration.servicer import DeteriorationServicer
from clinpred.services.deterioration.settings import DeteriorationSettings

SERVICE_NAME = deterioration_pb2.DESCRIPTOR.services_by_name["DeteriorationService"].full_name


def deterioration_mount(settings: DeteriorationSettings) -> ServiceMount:
    handler = DeteriorationHandler(settings)
    codec = DeteriorationCodec(settings.max_batch_size, settings.max_page_size)
    return ServiceMount(
        name=SERVICE,
        service_names=(SERVICE_NAME,),
        servicer_factory=lambda: DeteriorationServicer(handler, codec),
        add_to_server=deterioration_pb2_grpc.add_DeteriorationServiceServicer_to_server,
        load=handler.load,
        settings=settings,
    )


svc = bento_service(deterioration_mount(DeteriorationSettings()))
