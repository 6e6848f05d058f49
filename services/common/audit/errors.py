"""Errors of the audit trail; each carries the gRPC status a call ends with when it is raised."""

from __future__ import annotations

from clinpred.pilots.common.errors import ClinpredError


class AuditUnavailable(ClinpredError):
    """The audit record could not be stored (disk full, database down, no permission).

    The call fails UNAVAILABLE rather than answering without a durable record of it.
    """

    status = "UNAVAILABLE"


class AuditKeyError(ClinpredError):
    """The audit key file is missing, too short, readable by everyone or otherwise unusable."""

    status = "FAILED_PRECONDITION"


class AuditRecordError(ClinpredError):
    """A stored audit record cannot be read: malformed, or in a schema version this code does not know."""

    status = "FAILED_PRECONDITION"
