"""The call a domain operation serves: whose it is, when its caller stops waiting, and what it touched.

The transport builds one per RPC from the authenticated caller and the gRPC deadline; handlers
pass `tenant` to the store (every read and write is the caller's tenant's) and note the patients
and models a call concerned, which the audit trail records (as pseudonyms, never the raw ids).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from clinpred.pilots.common.errors import DeadlineExceeded
from clinpred.pilots.common.model_package import ModelIdentity


@dataclass
class Call:
    tenant: str
    client: str
    # time.monotonic() after which the caller no longer waits; None: no deadline.
    deadline: float | None = None
    # Set when the caller cancels or the call otherwise ends before the work does.
    ended: threading.Event = field(default_factory=threading.Event)
    patient_ids: list[str] = field(default_factory=list)
    models: list[ModelIdentity] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic

    def concerns(self, patient_id: str) -> None:
        """Notes a patient this call reads or writes, for its audit record."""
        if patient_id and patient_id not in self.patient_ids:
            self.patient_ids.append(patient_id)

    def answered_by(self, identity: ModelIdentity) -> None:
        if identity not in self.models:
            self.models.append(identity)

    @property
    def should_stop(self) -> bool:
        return self.ended.is_set() or (self.deadline is not None and self.clock() >= self.deadline)

    def check(self) -> None:
        """Raises DeadlineExceeded once nobody waits for the answer, so CPU-bound work stops early."""
        if self.should_stop:
            raise DeadlineExceeded("the caller's deadline passed or it cancelled; the work was stopped")
