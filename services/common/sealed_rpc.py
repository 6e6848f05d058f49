"""The `Sealed` and `GetKeyConfigurations` RPCs every service has: a whole unary call carried sealed.

`Sealed` opens the envelope (`services.common.sealed`) with the service's keyring and replay guard, then
runs the inner method through the same servicer method a plain call reaches, with the same `Call`
(tenant, deadline, what the audit trail notes). The inner method must pass the caller's access rules
exactly as a plain call would (`calls.authorize_method`); the rate limit was charged once, for `Sealed`.

What a proxy could read stays inside the envelopes: once the request is open, every answer, an error
included, is a `google.rpc.Status` sealed back to the caller (code 0 with the inner response packed in
`details[0]`, or the inner error's code, message and details exactly as a plain call gets them). Only
envelopes that cannot be opened (corrupt, replayed, outside the window, unknown or retired key) are
plain errors of `Sealed`: they say nothing about what is inside.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import any_pb2, descriptor, message_factory
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2

from clinpred.pilots.common.errors import ClinpredError, FailedPrecondition, FieldViolation, InvalidInput, ResourceExhausted
from clinpred.services.common.calls import SealedInner, authorize_method, note_sealed
from clinpred.services.common.interceptors import status_of
from clinpred.services.common.metrics import stage
from clinpred.services.common.sealed import ReplayGuard, open_request
from clinpred.services.common.sealed_messages import KEY_CONFIGURATIONS, SEALED, key_configuration
from clinpred.services.common.sealing_keys import Keyring, KeyringError
from clinpred.services.common.settings import ServiceSettings
from clinpred.services.common.undecodable import MAX_MESSAGE_BYTES
from clinpred.services.common.watched_file import Version, Watched, signature_of

logger = logging.getLogger("clinpred.sealed")

_NOT_CARRIED = frozenset({SEALED, KEY_CONFIGURATIONS})
METHOD_FIELD = "sealed.method"
REQUEST_FIELD = "sealed.request"


class KeyringFolder:
    """A keyring read from its folder, read again when the folder's key files change (`Watched`).

    A rotation (`clinpred keys rotate`) takes effect without a restart. A folder that becomes unreadable
    or holds a broken file keeps the last good keyring in force and is logged once."""

    def __init__(self, folder: Path, check_interval_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.folder = folder
        self._keyring = Watched(
            self._version,
            self._load,
            what=f"sealing keys in {folder}",
            logger=logger,
            rejects=(KeyringError,),
            summary=lambda keyring: f": {len(keyring.configurations())} keys",
            check_interval_seconds=check_interval_seconds,
            clock=clock,
        )

    def _version(self) -> Version | None:
        try:
            entries = sorted(os.scandir(self.folder), key=lambda entry: entry.name)
            return tuple((e.name, *signature_of(e.stat())) for e in entries if e.name.endswith(".json"))
        except OSError:
            return None

    def _load(self) -> tuple[Keyring, Version | None]:
        version = self._version()
        return Keyring.load(self.folder), version

    @property
    def last_error(self) -> str | None:
        return self._keyring.last_error

    def current(self) -> Keyring:
        return self._keyring.current()


def no_keys_message(service_prefix: str) -> str:
    return (
        "sealed: this service has no sealing keys; `clinpred keys init DIR` and set "
        f"{service_prefix}SEALING_KEYS_DIR"
    )


def _sealed_violation(field: str, description: str) -> InvalidInput:
    return InvalidInput.of([FieldViolation(field, description)])


def _ok_status(response: Message) -> status_pb2.Status:
    packed = any_pb2.Any()
    packed.Pack(response)
    return status_pb2.Status(code=code_pb2.OK, details=[packed])


class SealedCalls:
    """The sealed RPCs of one service: its keyring, its replay guard, and which methods may travel sealed.

    `stream_alternatives` names, for each streaming method, the unary method to seal instead: a sealed
    envelope carries one request and one answer."""

    def __init__(
        self,
        service: str,
        service_descriptor: descriptor.ServiceDescriptor,
        settings: ServiceSettings,
        guard: ReplayGuard,
        *,
        stream_alternatives: Mapping[str, str],
        guard_blocks: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.service = service
        self._descriptor = service_descriptor
        self._prefix = f"/{service_descriptor.full_name}/"
        self._guard = guard
        self._guard_blocks = guard_blocks
        self._window = timedelta(seconds=settings.sealing_window_seconds)
        self._env_prefix = str(settings.model_config.get("env_prefix", "CLINPRED_"))
        self._alternatives = dict(stream_alternatives)
        self._clock = clock
        self._folder = settings.sealing_keys_dir
        self._keys: KeyringFolder | None = None
        self._opening = threading.Lock()
        self._response_classes: dict[str, Any] = {
            name: message_factory.GetMessageClass(service_descriptor.methods_by_name[name].output_type)
            for name in (SEALED, KEY_CONFIGURATIONS)
        }

    def keyring(self) -> Keyring:
        """The service's keyring; FailedPrecondition when it has none or it cannot be read."""
        if self._folder is None:
            raise FailedPrecondition(no_keys_message(self._env_prefix))
        with self._opening:
            if self._keys is None:
                try:
                    self._keys = KeyringFolder(self._folder)
                except KeyringError as error:
                    logger.error("sealing keys cannot be read: %s", error)
                    raise FailedPrecondition("sealed: this service's sealing keys cannot be read") from None
        return self._keys.current()

    async def key_configurations(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        with stage(self.service, "keys"):
            keyring = self.keyring()
            current = keyring.current(self._clock()).key_id
            response = self._response_classes[KEY_CONFIGURATIONS]()
            response.keys.extend(key_configuration(config) for config in keyring.configurations())
            response.current_key_id = current
            return response

    async def sealed(self, servicer: Any, request: Message, context: grpc.aio.ServicerContext) -> Message:
        envelope = bytes(getattr(request, "envelope", b""))
        keyring = self.keyring()

        def opened_now() -> Any:
            with stage(self.service, "open"):
                return open_request(keyring, envelope, self._clock(), guard=self._guard, window=self._window)

        # A guard kept in a database does I/O: off the event loop, like any store access.
        opened = await asyncio.to_thread(opened_now) if self._guard_blocks else opened_now()
        digest = hashlib.sha256(opened.request).hexdigest()
        name = opened.method.rsplit("/", 1)[-1]
        shown = f"{self._prefix}{SEALED}/{name}" if self._carries(opened.method) else f"{self._prefix}{SEALED}"
        try:
            status = status_pb2.Status()
            status.CopyFrom(await self._inner(servicer, opened.method, opened.request, context))
        except ClinpredError as error:
            status = status_of(error)
        except Exception as error:
            # An inner bug answers INTERNAL, sealed, as a plain call would.
            status = self._internal(error, f"{self._prefix}{SEALED}")
        note_sealed(SealedInner(method=shown, outcome=code_pb2.Code.Name(status.code), request_digest=digest))
        with stage(self.service, "seal"):
            response = self._response_classes[SEALED](envelope=opened.response_sealer.seal(status.SerializeToString()))
        return response

    def _carries(self, method: str) -> bool:
        name = method[len(self._prefix) :] if method.startswith(self._prefix) else ""
        return name in self._descriptor.methods_by_name and name not in _NOT_CARRIED

    async def _inner(self, servicer: Any, method: str, request_bytes: bytes, context: grpc.aio.ServicerContext) -> Any:
        if not self._carries(method):
            raise _sealed_violation(METHOD_FIELD, f"is not a method this service answers sealed (a method of {self._prefix})")
        name = method[len(self._prefix) :]
        method_descriptor = self._descriptor.methods_by_name[name]
        if method_descriptor.client_streaming or method_descriptor.server_streaming:
            instead = self._alternatives.get(name)
            hint = f"; seal {instead} instead" if instead else "; call it unsealed"
            raise _sealed_violation(METHOD_FIELD, f"{name} streams, and a sealed call carries one request and one answer{hint}")
        authorize_method(method)
        limit = MAX_MESSAGE_BYTES.get(method)
        if limit is not None and len(request_bytes) > limit:
            size = len(request_bytes)
            raise ResourceExhausted(f"{REQUEST_FIELD}: {size} bytes; this method accepts messages of at most {limit}")
        request_class = message_factory.GetMessageClass(method_descriptor.input_type)
        try:
            inner_request = request_class.FromString(request_bytes)
        except DecodeError:
            raise _sealed_violation(REQUEST_FIELD, f"is not a valid protobuf message of {name}'s request type") from None
        response = await getattr(servicer, name)(inner_request, context)
        return _ok_status(response)

    @staticmethod
    def _internal(error: Exception, method: str) -> status_pb2.Status:
        reference = uuid.uuid4().hex[:12]
        # As the error interceptor does: the exception's message may quote request values, so only its type and
        # frames; and the outer method only, as the inner one is the caller's secret.
        frames = "".join(traceback.format_tb(error.__traceback__))
        logger.error("internal error %s in %s: %s\n%s", reference, method, type(error).__name__, frames)
        return status_pb2.Status(code=code_pb2.INTERNAL, message=f"internal error (reference {reference})")


class SealedMethods:
    """The two sealed RPCs, for a servicer class to inherit; the servicer sets `sealed_calls`."""

    sealed_calls: SealedCalls

    async def Sealed(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await self.sealed_calls.sealed(self, request, context)

    async def GetKeyConfigurations(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await self.sealed_calls.key_configurations(request, context)
