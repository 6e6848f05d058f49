"""Who is calling, and may they: the interceptor every RPC of every service passes before its servicer.

It sits inside the error interceptor, so its refusals reach the caller as UNAUTHENTICATED,
PERMISSION_DENIED or RESOURCE_EXHAUSTED like any domain error, and starts the call's domain
`Call` with the caller's tenant. Per call, in order: identity (client certificate, bearer token,
or the development tenant), the policy's grant for the method, the tenant's rate, and its share
of calls in progress or streams open.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from grpc_interceptor import AsyncServerInterceptor

from clinpred.services.common.authorization import OPEN_METHODS, AccessPolicy, PolicyFile, authorize
from clinpred.services.common.calls import admit_methods, awaited_unless_stream, start_call
from clinpred.services.common.identity import Authenticator, BearerTokenVerifier, Caller, RevocationList
from clinpred.services.common.limits import TenantRateLimiter, TenantSlots
from clinpred.services.common.settings import ServiceSettings
from clinpred.services.common.undecodable import checked

logger = logging.getLogger("clinpred.access")


class AccessRules:
    """One service's identity, policy and limits, built once from its settings."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        revocations = None
        if settings.crl_file is not None:
            if settings.ca_file is None:
                raise ValueError("crl_file needs ca_file, the CA certificate that signs it")
            revocations = RevocationList(settings.crl_file, settings.ca_file)
        tokens = None
        if settings.jwks_file is not None:
            if not (settings.token_issuer and settings.token_audience):
                raise ValueError("jwks_file needs token_issuer and token_audience")
            tokens = BearerTokenVerifier(
                settings.jwks_file,
                settings.token_issuer,
                settings.token_audience,
                tenant_claim=settings.tenant_claim,
                client_claim=settings.client_claim,
            )
        development = settings.development_tenant if settings.development_plaintext else None
        self.authenticator = Authenticator(settings.trust_domain, revocations, tokens, development)
        self._policy_file: PolicyFile | None = None
        self._development_policy: AccessPolicy | None = None
        if settings.policy_file is not None:
            self._policy_file = PolicyFile(settings.policy_file)
        elif settings.development_plaintext:
            self._development_policy = AccessPolicy.allow_all(settings.development_tenant)
        else:
            raise ValueError("policy_file is required (deny by default); development_plaintext allows all without one")
        self.rate = TenantRateLimiter(settings.rate_per_second, settings.rate_burst)
        self.calls = TenantSlots(settings.max_calls_in_progress_per_tenant, counted="calls in progress")
        self.streams = TenantSlots(settings.max_streams_per_tenant, counted="streams open")

    @property
    def policy(self) -> AccessPolicy:
        if self._policy_file is not None:
            return self._policy_file.current()
        assert self._development_policy is not None
        return self._development_policy

    def admit(self, context: grpc.aio.ServicerContext, method_name: str) -> Caller:
        """The authenticated caller, once the policy grants it the method and its tenant is within its rate.

        The call starts as soon as the caller is known, so a refusal is recorded with who was refused."""
        metadata = tuple(context.invocation_metadata() or ())
        caller = self.authenticator.authenticate(context.auth_context(), metadata)
        start_call(context, caller.tenant, caller.client)
        authorize(self.policy, caller.tenant, caller.client, method_name, caller.token_scopes)
        self.rate.acquire(caller.tenant)
        # A sealed call's inner method passes the same rules for the same caller (and is not charged again).
        admit_methods(lambda method: authorize(self.policy, caller.tenant, caller.client, method, caller.token_scopes))
        return caller


class AccessInterceptor(AsyncServerInterceptor):
    def __init__(self, service: str, settings: ServiceSettings | None = None) -> None:
        self.service = service
        self.rules = AccessRules(settings or ServiceSettings(model_name="", model_version="", development_plaintext=True))
        if self.rules.settings.development_plaintext:
            logger.warning(
                "DEVELOPMENT MODE (%s): callers without a certificate or token are accepted as tenant %r%s;"
                " never serve patients like this",
                service,
                self.rules.settings.development_tenant,
                "" if self.rules.settings.policy_file else " with every scope",
            )

    async def intercept(
        self, method: Callable[..., Any], request_or_iterator: Any, context: grpc.aio.ServicerContext, method_name: str
    ) -> Any:
        if method_name in OPEN_METHODS:
            # Health checks and reflection: no patient data, and probes have no identity.
            return await awaited_unless_stream(method(checked(request_or_iterator), context))
        caller = self.rules.admit(context, method_name)
        response_or_iterator = method(checked(request_or_iterator), context)
        if hasattr(response_or_iterator, "__aiter__"):
            return self._stream(response_or_iterator, caller.tenant)
        with self.rules.calls.hold(caller.tenant):
            return await response_or_iterator

    async def _stream(self, responses: AsyncIterator[Any], tenant: str) -> AsyncIterator[Any]:
        with self.rules.streams.hold(tenant):
            async for response in responses:
                yield response

