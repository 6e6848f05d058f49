"""The call a domain operation serves: whose it is, when its caller stops waiting, and what it touched.

The transport builds one per RPC from the authenticated caller and the gRPC deadline; handlers
pass `tenant` to the store (every read and write is the caller's tenant's) and note the patients
and models a call concerned, which the audit trail records (as pseudonyms, never the raw ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clinpred.pilots.common.cancellation import Deadline
from clinpred.pilots.common.model_package import ModelIdentity


@dataclass
class Call:
    tenant: str
    client: str
    # When the caller stops waiting (its deadline, or it cancelled): long work checks it and stops.
    deadline: Deadline = field(default_factory=Deadline)
    patient_ids: list[str] = field(default_factory=list)
    models: list[ModelIdentity] = field(default_factory=list)

    def concerns(self, patient_id: str) -> None:
        """Notes a patient this call reads or writes, for its audit record."""
        if patient_id and patient_id not in self.patient_ids:
            self.patient_ids.append(patient_id)

    def answered_by(self, identity: ModelIdentity) -> None:
        if identity not in self.models:
            self.models.append(identity)

    def check(self) -> None:
        """Raises DeadlineExceeded once nobody waits for the answer, so CPU-bound work stops early."""
        self.deadline.check()
