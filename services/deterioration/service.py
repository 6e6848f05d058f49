"""The deterioration service, for `bentoml serve-grpc clinpred.services.deterioration.service:svc`."""

from __future__ import annotations

from datetime import datetime

from clinpred.services.api.deterioration.v1 import deterioration_pb2, deterioration_pb2_grpc
from clinpred.services.common.sealed_rpc import SealedCalls
from clinpred.services.common.serving import ServiceMount, bento_service
from clinpred.services.deterioration.codec import DeteriorationCodec
from clinpred.services.deterioration.handlers import SERVICE, DeteriorationHandler
from clinpred.services.deterioration.servicer import DeteriorationServicer
from clinpred.services.deterioration.settings import DeteriorationSettings

SERVICE_NAME = deterioration_pb2.DESCRIPTOR.services_by_name["DeteriorationService"].full_name


class StoreReplayGuard:
    """The replay guard of sealed calls in the service's database: an envelope opened by one replica is
    refused by every replica on the same database."""

    def __init__(self, handler: DeteriorationHandler) -> None:
        self._handler = handler

    def seen(self, digest: bytes, expires_at: datetime, now: datetime) -> bool:
        return self._handler.store.seen_before(digest, expires_at, now)


def deterioration_mount(settings: DeteriorationSettings) -> ServiceMount:
    handler = DeteriorationHandler(settings)
    codec = DeteriorationCodec(settings.max_batch_size, settings.max_page_size)
    sealed_calls = SealedCalls(
        SERVICE,
        deterioration_pb2.DESCRIPTOR.services_by_name["DeteriorationService"],
        settings,
        StoreReplayGuard(handler),
        stream_alternatives={"WatchRisk": "GetLatestRisk"},
        guard_blocks=True,
    )
    return ServiceMount(
        name=SERVICE,
        service_names=(SERVICE_NAME,),
        servicer_factory=lambda: DeteriorationServicer(handler, codec, sealed_calls=sealed_calls),
        add_to_server=deterioration_pb2_grpc.add_DeteriorationServiceServicer_to_server,
        load=handler.load,
        settings=settings,
    )


svc = bento_service(deterioration_mount(DeteriorationSettings()))
