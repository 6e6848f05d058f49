"""`python -m tests.integration.audit.appender (--dir DIR | --database URL) --count N`: one process appending.

The audit tests start several of these at once, as several API workers or replicas would.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clinpred.services.common.audit import AuditFileLog, AuditSqlLog, AuditTrail
from tests.unit.services.audit.sample_entries import sample_entry, sample_keys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir")
    parser.add_argument("--database")
    parser.add_argument("--count", type=int, required=True)
    arguments = parser.parse_args()
    keys = sample_keys()
    log: AuditTrail = AuditFileLog(Path(arguments.dir), keys) if arguments.dir else AuditSqlLog(arguments.database, keys)
    for number in range(arguments.count):
        log.append(sample_entry(keys, request_id=f"process-{number}"))
    log.close()
    print("appended", arguments.count)


if __name__ == "__main__":
    main()
