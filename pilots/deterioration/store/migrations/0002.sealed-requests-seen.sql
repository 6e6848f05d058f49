-- The sealed requests opened within their replay window, kept in the shared database so that an
-- envelope opened by one replica is refused by every other. `digest` is the hex SHA-256 of the
-- envelope; a row counts until `expires_at_us` (microseconds since the Unix epoch, UTC).

CREATE TABLE sealed_requests_seen (
    digest TEXT NOT NULL PRIMARY KEY,
    expires_at_us BIGINT NOT NULL
);

CREATE INDEX sealed_requests_seen_by_expiry ON sealed_requests_seen (expires_at_us);
