"""The audit trail: one record per call, hash-chained per writer, patient pseudonymised.

- `records`: `AuditEntry` (what a caller hands in), `AuditRecord` (what is stored, canonical JSON);
- `keys`: `AuditKeys` from one secret file (pseudonyms, chain hashes), `write_key_file`;
- `chain`: the `AuditTrail` protocol, heads and sealing; `verification`: `verify` and its report;
- `file_log` (`AuditFileLog`, JSON Lines) and `sql_log` (`AuditSqlLog`, SQLite or PostgreSQL);
  `reading`: `read_records` / `iter_records` of either;
- `fhir`: `audit_event`, a record as a FHIR R4 AuditEvent (IHE BALP), imported on its own.

Records are never deleted by the service; retention is the operator's (see the README).
"""

from clinpred.services.common.audit.chain import AuditTrail, ChainHead
from clinpred.services.common.audit.errors import AuditKeyError, AuditRecordError, AuditUnavailable
from clinpred.services.common.audit.file_log import AuditFileLog, iter_directory, read_directory
from clinpred.services.common.audit.keys import AuditKeys, write_key_file
from clinpred.services.common.audit.reading import iter_records, read_records
from clinpred.services.common.audit.records import SCHEMA_VERSION, AuditEntry, AuditRecord
from clinpred.services.common.audit.sql_log import AuditSqlLog, iter_database, read_database
from clinpred.services.common.audit.verification import (
    Problem,
    ProblemKind,
    StoredChains,
    UnreadableRecord,
    VerificationReport,
    verify,
)

__all__ = [
    "SCHEMA_VERSION",
    "AuditEntry",
    "AuditFileLog",
    "AuditKeyError",
    "AuditKeys",
    "AuditRecord",
    "AuditRecordError",
    "AuditSqlLog",
    "AuditTrail",
    "AuditUnavailable",
    "ChainHead",
    "Problem",
    "ProblemKind",
    "StoredChains",
    "UnreadableRecord",
    "VerificationReport",
    "iter_database",
    "iter_directory",
    "iter_records",
    "read_database",
    "read_directory",
    "read_records",
    "verify",
    "write_key_file",
]
