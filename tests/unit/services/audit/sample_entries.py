"""Audit entries and keys as the services will hand them in, for the audit tests."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from clinpred.services.common.audit import AuditEntry, AuditKeys

# A raw patient id that must never appear in any stored record or export.
MARKER_PATIENT_ID = "child-MARKER-4711"
SECRET = bytes(range(64))


def sample_keys(secret: bytes = SECRET) -> AuditKeys:
    return AuditKeys.from_secret(secret)


def sample_entry(keys: AuditKeys | None = None, **changes: Any) -> AuditEntry:
    keys = keys or sample_keys()
    entry = AuditEntry(
        tenant="hospital-a",
        client="telemonitoring-app",
        service="deterioration",
        method="/clinpred.deterioration.v1.DeteriorationService/GetLatestRisk",
        outcome="OK",
        model="deterioration:3",
        patient_pseudonym=keys.pseudonym("hospital-a", MARKER_PATIENT_ID),
        request_digest=hashlib.sha256(b'{"patient_id": "child-MARKER-4711"}').hexdigest(),
        request_id="req-0001",
    )
    return replace(entry, **changes)
