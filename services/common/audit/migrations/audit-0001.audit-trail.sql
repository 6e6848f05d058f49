-- The audit trail: append-only records, one hash chain per writer, and each writer's head.
-- Its own migration ids ("audit-..."), beside the deterioration store's ("0001...") in the
-- same database: yoyo records both in one table and applies only what is missing.
-- Portable across SQLite and PostgreSQL; times are microseconds since the Unix epoch (UTC).
-- `record` is the canonical JSON the chain hash covers; the other columns index it.

CREATE TABLE audit_records (
    writer_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    recorded_at_us BIGINT NOT NULL,
    tenant TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (writer_id, sequence)
);

CREATE INDEX audit_records_by_time ON audit_records (recorded_at_us);

-- Updated in the transaction that inserts the writer's record, so it never lags or leads.
CREATE TABLE audit_heads (
    writer_id TEXT NOT NULL PRIMARY KEY,
    sequence BIGINT NOT NULL,
    hash TEXT NOT NULL
);
