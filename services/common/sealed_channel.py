"""The client side of sealed calls: a channel on which a generated stub's unary methods travel sealed.

    stub = TumorClassificationServiceStub(SealedChannel(channel, tumor_pb2.DESCRIPTOR.services_by_name[...]))
    stub.Classify(request, timeout=10)      # sent as Sealed; answered, or raised, as a plain call is

Each unary call is serialized as usual, sealed with its full method name to the service's current key
(`GetKeyConfigurations`, fetched once; or a pinned `sealing_key`), sent as the service's `Sealed` RPC, and its
sealed answer opened here. An inner error is raised as the `grpc.RpcError` a plain call raises: same code,
details and trailing `grpc-status-details-bin` (BadRequest, ErrorInfo), so `grpc_status.rpc_status.from_call`
and the CLI read it alike. After a key rotation the service answers FAILED_PRECONDITION; unless the key is
pinned the channel fetches the configurations again and retries once, with a new envelope.

Streaming methods are refused (`SealedStreamError`) rather than sent in clear behind the caller's back: an
envelope carries one request and one answer; use the unary method the error names, or an unsealed client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import descriptor, message_factory
from google.rpc import status_pb2
from grpc_status import rpc_status

from clinpred.services.common.sealed import open_response, seal_request
from clinpred.services.common.sealed_messages import KEY_CONFIGURATIONS, SEALED, sealing_key_of
from clinpred.services.common.sealing_keys import SealingKey

Metadata = Sequence[tuple[str, str | bytes]] | None


class SealedStreamError(Exception):
    """A streaming method was called on a sealed client: sealed calls carry unary methods only."""


class SealedCallError(grpc.RpcError, grpc.Call):
    """The inner error of a sealed call, raised as a plain call's error is (code, details, trailing metadata)."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__()
        self.status = status
        self._plain = rpc_status.to_status(status)

    def code(self) -> grpc.StatusCode:
        return self._plain.code

    def details(self) -> str:
        return str(self._plain.details)

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return tuple(self._plain.trailing_metadata)

    def debug_error_string(self) -> str:
        return f"sealed call failed: {self.code().name}: {self.details()}"

    def initial_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False

    def __str__(self) -> str:
        return f"<SealedCallError of RPC that terminated with: status = {self.code()}, details = {self.details()!r}>"


class _Sealer:
    """What the channel's multicallables share: the service, its key, and the plain `Sealed` and key RPCs."""

    def __init__(
        self,
        channel: grpc.Channel,
        service: descriptor.ServiceDescriptor,
        sealing_key: SealingKey | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.service = service
        self.pinned = sealing_key is not None
        self._key = sealing_key
        self._clock = clock
        self._lock = threading.Lock()
        classes = {
            name: (
                message_factory.GetMessageClass(service.methods_by_name[name].input_type),
                message_factory.GetMessageClass(service.methods_by_name[name].output_type),
            )
            for name in (SEALED, KEY_CONFIGURATIONS)
        }
        self.sealed_request: Any = classes[SEALED][0]
        self.sealed = channel.unary_unary(
            f"/{service.full_name}/{SEALED}",
            request_serializer=classes[SEALED][0].SerializeToString,
            response_deserializer=classes[SEALED][1].FromString,
        )
        self._key_request: Any = classes[KEY_CONFIGURATIONS][0]
        self._keys = channel.unary_unary(
            f"/{service.full_name}/{KEY_CONFIGURATIONS}",
            request_serializer=classes[KEY_CONFIGURATIONS][0].SerializeToString,
            response_deserializer=classes[KEY_CONFIGURATIONS][1].FromString,
        )

    def key(self, timeout: float | None, metadata: Metadata, *, refresh: bool = False) -> SealingKey:
        with self._lock:
            if self._key is None or (refresh and not self.pinned):
                answer = self._keys(self._key_request(), timeout=timeout, metadata=metadata)
                current = [key for key in answer.keys if key.key_id == answer.current_key_id]
                if not current:
                    raise ValueError("the service named a current sealing key it did not list")
                self._key = sealing_key_of(current[0])
            return self._key

    def call(self, method: str, request: bytes, timeout: float | None, metadata: Metadata, **options: Any) -> bytes:
        """The inner response bytes of `method`; raises the inner error as a plain call would."""
        key = self.key(timeout, metadata)
        while True:
            envelope, opener = seal_request(key, method, request, self._clock())
            try:
                answer = self.sealed(self.sealed_request(envelope=envelope), timeout=timeout, metadata=metadata, **options)
            except grpc.RpcError as error:
                code = error.code() if isinstance(error, grpc.Call) else None
                if code != grpc.StatusCode.FAILED_PRECONDITION or self.pinned:
                    raise
                # Perhaps rotated: seal again to the current key, once (a second refusal is the answer).
                fresh = self.key(timeout, metadata, refresh=True)
                if fresh.key_id == key.key_id:
                    raise
                key = fresh
                continue
            status = status_pb2.Status.FromString(open_response(opener, answer.envelope))
            if status.code != 0:
                raise SealedCallError(status)
            expected = self.service.methods_by_name[method.rsplit("/", 1)[-1]].output_type.full_name
            if len(status.details) != 1 or status.details[0].TypeName() != expected:
                raise ValueError(f"the sealed answer does not hold a {expected}")
            return bytes(status.details[0].value)


class _SealedUnaryUnary(grpc.UnaryUnaryMultiCallable):
    def __init__(
        self,
        sealer: _Sealer,
        method: str,
        request_serializer: Callable[[Any], bytes] | None,
        response_deserializer: Callable[[bytes], Any] | None,
    ) -> None:
        self._sealer = sealer
        self._method = method
        self._serialize = request_serializer or (lambda message: message)
        self._deserialize = response_deserializer or (lambda data: data)

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Metadata = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        options = {"credentials": credentials, "wait_for_ready": wait_for_ready, "compression": compression}
        sent = {name: value for name, value in options.items() if value is not None}
        return self._deserialize(self._sealer.call(self._method, self._serialize(request), timeout, metadata, **sent))

    def with_call(self, request: Any, timeout: float | None = None, metadata: Metadata = None, **options: Any) -> Any:
        raise NotImplementedError("a sealed call has no plain call object to return; call the method itself")

    def future(self, request: Any, timeout: float | None = None, metadata: Metadata = None, **options: Any) -> Any:
        raise NotImplementedError("sealed calls are synchronous; call the method itself")


class _RefusedStream:
    """A streaming method of a sealed channel: raises when called, never sends anything in clear."""

    def __init__(self, method: str) -> None:
        self._method = method

    def __call__(self, *_args: Any, **_kwargs: Any) -> Any:
        name = self._method.rsplit("/", 1)[-1]
        raise SealedStreamError(
            f"{name} streams, and a sealed call carries one request and one answer: call a unary method"
            " (e.g. a batch) sealed, or this method on a client made without sealed=True"
        )


class SealedChannel(grpc.Channel):
    """Wraps a channel to one service: its unary methods are sent sealed; `Sealed` and
    `GetKeyConfigurations` themselves, and nothing else, go through as they are."""

    def __init__(
        self,
        channel: grpc.Channel,
        service: descriptor.ServiceDescriptor,
        sealing_key: SealingKey | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._channel = channel
        self._prefix = f"/{service.full_name}/"
        self._sealer = _Sealer(channel, service, sealing_key, clock)

    def sealing_key(self, timeout: float | None = None) -> SealingKey:
        """The key requests are sealed to (fetched from the service on first use unless pinned)."""
        return self._sealer.key(timeout, None)

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> Any:
        if not method.startswith(self._prefix) or method[len(self._prefix) :] in (SEALED, KEY_CONFIGURATIONS):
            return self._channel.unary_unary(method, request_serializer, response_deserializer)
        return _SealedUnaryUnary(self._sealer, method, request_serializer, response_deserializer)

    def unary_stream(self, method: str, *_args: Any, **_kwargs: Any) -> Any:
        return _RefusedStream(method)

    def stream_unary(self, method: str, *_args: Any, **_kwargs: Any) -> Any:
        return _RefusedStream(method)

    def stream_stream(self, method: str, *_args: Any, **_kwargs: Any) -> Any:
        return _RefusedStream(method)

    def subscribe(self, callback: Callable[[grpc.ChannelConnectivity], None], try_to_connect: bool = False) -> None:
        self._channel.subscribe(callback, try_to_connect)

    def unsubscribe(self, callback: Callable[[grpc.ChannelConnectivity], None]) -> None:
        self._channel.unsubscribe(callback)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> SealedChannel:
        return self

    def __exit__(self, *_: object) -> None:
        self._channel.close()
