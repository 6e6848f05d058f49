"""Unexpected failures: INTERNAL with a log reference, no request content in the answer or the log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest

from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.interceptors import server_interceptors

SECRET = "patient-identifier-4711"


class FailingServicer(tumor_pb2_grpc.TumorClassificationServiceServicer):
    """Fails the way a bug would, with request content in the exception message."""

    async def Classify(self, request: tumor_pb2.ClassifyRequest, context: grpc.aio.ServicerContext) -> None:
        raise ValueError(f"cannot handle case {request.tumor_case.case_id}")

    async def GetModelInfo(
        self, request: tumor_pb2.GetModelInfoRequest, context: grpc.aio.ServicerContext
    ) -> tumor_pb2.GetModelInfoResponse:
        return tumor_pb2.GetModelInfoResponse(max_batch_size=7)


@pytest.fixture
async def stub() -> AsyncIterator[tumor_pb2_grpc.TumorClassificationServiceStub]:
    server = grpc.aio.server(interceptors=[c(**o) for c, o in server_interceptors("test")])
    tumor_pb2_grpc.add_TumorClassificationServiceServicer_to_server(FailingServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield tumor_pb2_grpc.TumorClassificationServiceStub(channel)
    await server.stop(grace=None)


async def test_a_bug_is_internal_without_request_content(
    stub: tumor_pb2_grpc.TumorClassificationServiceStub, caplog: pytest.LogCaptureFixture
) -> None:
    request = tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(case_id=SECRET))
    with caplog.at_level(logging.ERROR, logger="clinpred.errors"), pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Classify(request)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    details = caught.value.details() or ""
    assert SECRET not in details and "reference" in details
    reference = details.rsplit(" ", 1)[-1].rstrip(")")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert reference in logged and "ValueError" in logged  # ops can find it
    assert SECRET not in logged
    # The server keeps serving.
    assert (await stub.GetModelInfo(tumor_pb2.GetModelInfoRequest())).max_batch_size == 7
