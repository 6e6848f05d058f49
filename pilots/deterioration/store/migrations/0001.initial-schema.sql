-- Portable across SQLite and PostgreSQL. Times are microseconds since the
-- Unix epoch (UTC) so that ordering and comparison behave the same on both.
-- Every row carries its tenant, so tenant isolation needs no data migration.

CREATE TABLE patients (
    tenant TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    sex TEXT NOT NULL,
    ward TEXT NOT NULL,
    team TEXT NOT NULL,
    attributes TEXT NOT NULL,
    score_version BIGINT NOT NULL DEFAULT 0,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, patient_id)
);

CREATE TABLE observations (
    tenant TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    observation_id TEXT NOT NULL,
    observed_at_us BIGINT NOT NULL,
    content_sha256 TEXT NOT NULL,
    payload TEXT NOT NULL,
    recorded_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, patient_id, observation_id),
    FOREIGN KEY (tenant, patient_id) REFERENCES patients (tenant, patient_id)
);

CREATE INDEX observations_by_time ON observations (tenant, patient_id, observed_at_us);

-- One counter per tenant. Incrementing it is the last write of a scoring
-- transaction, so its row lock orders `seq` exactly as transactions commit and
-- a watcher that has read seq N has seen every score numbered below N.
CREATE TABLE score_sequence (
    tenant TEXT NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);

CREATE TABLE risk_scores (
    tenant TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    scored_at_us BIGINT NOT NULL,
    probability DOUBLE PRECISION NOT NULL,
    band TEXT NOT NULL,
    ward TEXT NOT NULL,
    team TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (tenant, patient_id, version),
    UNIQUE (tenant, seq),
    FOREIGN KEY (tenant, patient_id) REFERENCES patients (tenant, patient_id)
);
