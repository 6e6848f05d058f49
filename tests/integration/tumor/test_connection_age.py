"""Connections end after max_connection_age, so clients re-resolve and reach new replicas."""

from __future__ import annotations

import asyncio

import grpc

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.model_store import register_package
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.tumor.service import tumor_mount
from clinpred.services.tumor.settings import TumorSettings


async def test_the_server_ends_old_connections_and_clients_reconnect(tumor_package: ModelPackage) -> None:
    register_package(tumor_package)
    settings = TumorSettings(max_connection_age_seconds=1.0, max_connection_age_grace_seconds=0.5)
    server, port = await start_inprocess_server(tumor_mount(settings))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = tumor_pb2_grpc.TumorClassificationServiceStub(channel)
            await stub.GetModelInfo(tumor_pb2.GetModelInfoRequest())
            assert channel.get_state() == grpc.ChannelConnectivity.READY
            states = []
            for _ in range(40):  # up to 4 s
                await asyncio.sleep(0.1)
                states.append(channel.get_state())
                if states[-1] != grpc.ChannelConnectivity.READY:
                    break
            assert grpc.ChannelConnectivity.IDLE in states, states  # the server sent GOAWAY
            info = await stub.GetModelInfo(tumor_pb2.GetModelInfoRequest())  # a new connection, transparently
            assert info.model.sha256 == tumor_package.identity.sha256
    finally:
        await server.stop(grace=None)
