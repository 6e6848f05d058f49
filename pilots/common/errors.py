"""Domain errors. Each class names the gRPC status it maps to by name only.

The domain never imports grpc: the transport's error interceptor turns
`status` into a `grpc.StatusCode` and `violations` into
`google.rpc.BadRequest` field violations. Messages never carry patient data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar


@dataclass(frozen=True)
class FieldViolation:
    """One rejected field: `field` is a path such as `cases[3].features.mean_radius`."""

    field: str
    description: str


class ClinpredError(Exception):
    """Base of all domain errors; `status` is a gRPC status code name."""

    status = "INTERNAL"

    def __init__(self, message: str, violations: tuple[FieldViolation, ...] | list[FieldViolation] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.violations = tuple(violations)


class InvalidInput(ClinpredError):
    """The request itself is wrong; retrying it unchanged can never succeed."""

    status = "INVALID_ARGUMENT"

    @classmethod
    def of(cls, violations: list[FieldViolation]) -> InvalidInput:
        count = len(violations)
        first = violations[0]
        more = f" (and {count - 1} more)" if count > 1 else ""
        return cls(f"{first.field}: {first.description}{more}", violations)


class NotFound(ClinpredError):
    status = "NOT_FOUND"


class FailedPrecondition(ClinpredError):
    """The request is well formed but the system is not in a state to serve it."""

    status = "FAILED_PRECONDITION"


class ModelUnavailable(ClinpredError):
    status = "UNAVAILABLE"


class ResourceExhausted(ClinpredError):
    status = "RESOURCE_EXHAUSTED"


class Unauthenticated(ClinpredError):
    """The caller has no identity the service accepts (no client certificate or token, or an invalid one)."""

    status = "UNAUTHENTICATED"


class PermissionDenied(ClinpredError):
    """The caller is known but its grant does not cover this call; the message names the missing scope."""

    status = "PERMISSION_DENIED"


class DeadlineExceeded(ClinpredError):
    """The caller's deadline passed (or it cancelled) while the work was running, so the work stopped."""

    status = "DEADLINE_EXCEEDED"


class ModelPackageError(ClinpredError):
    """A model package on disk is missing files, inconsistent or tampered with."""

    status = "FAILED_PRECONDITION"


class ViolationCollector:
    """Gathers every violation of one request so the caller sees them all at once."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field, description))

    def __bool__(self) -> bool:
        return bool(self.violations)

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidInput.of(self.violations)


Error = TypeVar("Error", bound=ClinpredError)


@dataclass(frozen=True)
class InputOrigin:
    """How errors about one input's content name it.

    `label` starts every message (an upload is "upload": file names and sample ids never reach
    messages); `field` is the request field the input came in (e.g. "vcf"), handed in by the
    caller, so that the error carries a field violation naming it. None: the input is not part of
    a request (a file on disk, the command line).
    """

    label: str
    field: str | None = None

    def error(self, kind: type[Error], message: str) -> Error:
        return kind(message, [FieldViolation(self.field, message)] if self.field else [])
