"""What the sealed-call tests of every service share: a keyring, raw envelopes, and plain-versus-sealed errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2
from grpc_status import rpc_status

from clinpred.services.common.audit import AuditRecord
from clinpred.services.common.audit.reading import iter_records
from clinpred.services.common.sealed import ResponseOpener, open_response, seal_request
from clinpred.services.common.sealed_messages import sealing_key_of
from clinpred.services.common.sealing_keys import SealingKey, init_keyring


def new_keyring(folder: Path) -> Path:
    init_keyring(folder, datetime.now(UTC))
    return folder


@dataclass(frozen=True)
class PlainError:
    """What a caller reads of a failed call: code, details and the rich status (BadRequest, ErrorInfo)."""

    code: grpc.StatusCode
    details: str
    status: status_pb2.Status | None


def error_of(error: grpc.RpcError) -> PlainError:
    assert isinstance(error, grpc.Call)
    return PlainError(error.code(), str(error.details()), rpc_status.from_call(error))


def raised(call: Callable[[], Any]) -> PlainError:
    try:
        call()
    except grpc.RpcError as error:
        return error_of(error)
    raise AssertionError("the call succeeded")


class RawSealed:
    """Envelopes made by hand and sent to a service's `Sealed` RPC, for what the client library never sends."""

    def __init__(self, channel: grpc.Channel, stub_class: Any, module: Any) -> None:
        self.stub = stub_class(channel)
        self.module = module

    def key(self) -> SealingKey:
        answer = self.stub.GetKeyConfigurations(self.module.GetKeyConfigurationsRequest(), timeout=10)
        current = next(key for key in answer.keys if key.key_id == answer.current_key_id)
        return sealing_key_of(current)

    def seal(
        self, method: str, request: Message | bytes, *, key: SealingKey | None = None, now: datetime | None = None
    ) -> tuple[bytes, ResponseOpener]:
        data = request if isinstance(request, bytes) else request.SerializeToString()
        return seal_request(key or self.key(), method, data, now or datetime.now(UTC))

    def send(self, envelope: bytes) -> Any:
        return self.stub.Sealed(self.module.SealedRequest(envelope=envelope), timeout=30)

    def status(self, envelope: bytes, opener: ResponseOpener) -> status_pb2.Status:
        return status_pb2.Status.FromString(open_response(opener, self.send(envelope).envelope))


def audit_records(folder: Path) -> list[AuditRecord]:
    return list(iter_records(directory=folder))
