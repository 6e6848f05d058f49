"""The deterioration risk store on SQL: SQLite (embedded default) or PostgreSQL.

Recording a batch is one transaction, `with store.recording(tenant, patient_id) as
visit:`, that the caller drives: it locks the patient, refuses the whole batch on
any conflict (`visit.add`), inserts only observation ids it has not seen (so a
retried batch stores nothing twice), reads the window and the previous score
the new score is computed from, and numbers the score (`visit.save`) with the
patient's next version, gapless however many replicas write. It commits when
the block ends, before the caller answers: acknowledged means durably stored
(SQLite runs in WAL mode with synchronous=FULL; PostgreSQL commits synchronously
by default). An exception in the block rolls everything back.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, cast

from clinpred.pilots.common.errors import NotFound, ViolationCollector
from clinpred.pilots.common.sql_schema import Schema
from clinpred.pilots.common.sqlite_journal import connect_wal
from clinpred.pilots.deterioration.observations import SIGNAL_NAMES, Observation
from clinpred.pilots.deterioration.predictor import RISK_BANDS, RiskBand
from clinpred.pilots.deterioration.store.records import PatientRecord, ScoreRecord, from_micros, to_micros
from clinpred.pilots.deterioration.stored_score import StoredScore, UnreadableStoredScore

MIGRATIONS = Path(__file__).with_name("migrations")
STORE_SCHEMA = Schema("risk store", MIGRATIONS)
_SCORE_COLUMNS = "patient_id, version, seq, scored_at_us, probability, band, ward, team, payload"
_PATIENT_COLUMNS = "patient_id, birth_date, sex, ward, team, attributes"
_NO_PATIENT = "patient_id: no such patient; register the patient first"
# Expired replay-guard rows are deleted on one sealed request in this many (each costs an index range scan).
PURGE_EVERY = 256


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


def _values(observation: Observation) -> dict[str, Any]:
    """The measured signals of an observation, as its `payload` column keeps them."""
    return {name: getattr(observation, name) for name in SIGNAL_NAMES if getattr(observation, name) is not None}


def _content_hash(observation: Observation) -> str:
    canonical = json.dumps({"observed_at": to_micros(observation.observed_at), "values": _values(observation)}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _observations(rows: Sequence[Sequence[Any]]) -> list[Observation]:
    """Observations from (observation_id, observed_at_us, payload) rows, in their order."""
    # One parse of all payloads as one JSON array: a window holds hundreds.
    values = json.loads("[" + ",".join(r[2] for r in rows) + "]")
    return [Observation.stored(r[0], from_micros(int(r[1])), v) for r, v in zip(rows, values, strict=True)]


def _score(row: Sequence[Any]) -> ScoreRecord:
    # scored_at_us, probability and band (row[3:6]) repeat the payload for SQL; the payload is the score.
    return ScoreRecord(
        patient_id=row[0],
        version=int(row[1]),
        seq=int(row[2]),
        ward=row[6],
        team=row[7],
        score=StoredScore.from_payload(json.loads(row[8])),
    )


def _band(value: Any) -> RiskBand:
    if value not in RISK_BANDS:
        raise UnreadableStoredScore("a stored score's band is not a risk band")
    return cast(RiskBand, value)


def _patient(row: Sequence[Any]) -> PatientRecord:
    attributes = json.loads(row[5])
    return PatientRecord(
        patient_id=row[0],
        birth_date=date.fromisoformat(row[1]),
        sex=row[2],
        ward=row[3],
        team=row[4],
        diagnosis_group=attributes["diagnosis_group"],
        treatment_intensity=attributes["treatment_intensity"],
        central_line=bool(attributes["central_line"]),
        chemotherapy_at=tuple(datetime.fromisoformat(t) for t in attributes.get("chemotherapy_at", [])),
    )


def _attributes(patient: PatientRecord) -> str:
    """The oncology context that changes rarely, in the `attributes` column."""
    return json.dumps(
        {
            "diagnosis_group": patient.diagnosis_group,
            "treatment_intensity": patient.treatment_intensity,
            "central_line": patient.central_line,
            "chemotherapy_at": [t.isoformat() for t in patient.chemotherapy_at],
        },
        sort_keys=True,
    )


class SqlRiskStore:
    """Shared SQL of both backends; subclasses provide connections, placeholders and locking."""

    placeholder = "?"
    url: str
    _sealed_writes = 0

    def _sql(self, text: str) -> str:
        return text.replace("?", self.placeholder) if self.placeholder != "?" else text

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        raise NotImplementedError

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        raise NotImplementedError

    def _lock_patient(self, cursor: Cursor, tenant: str, patient_id: str) -> Any:
        raise NotImplementedError

    def migrate(self) -> None:
        STORE_SCHEMA.migrate(self.url)

    def close(self) -> None:
        pass

    # Sealed requests seen (the replay guard every replica shares)

    def seen_before(self, digest: bytes, expires_at: datetime, now: datetime) -> bool:
        """Records `digest` until `expires_at`; True if a replica recorded it before and it has not expired.

        One statement, so two replicas opening the same envelope at once cannot both see it as new: the
        insert wins or conflicts; on a conflict, an expired row is taken over and a live one is left alone
        (its count of changed rows is 0)."""
        now_us, expires_us = to_micros(now), to_micros(expires_at)
        with self._write() as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO sealed_requests_seen (digest, expires_at_us) VALUES (?, ?)"
                    " ON CONFLICT (digest) DO UPDATE SET expires_at_us = excluded.expires_at_us"
                    " WHERE sealed_requests_seen.expires_at_us <= ?"
                ),
                (digest.hex(), expires_us, now_us),
            )
            fresh = cursor.rowcount == 1
            self._sealed_writes += 1
            if self._sealed_writes % PURGE_EVERY == 0:
                cursor.execute(self._sql("DELETE FROM sealed_requests_seen WHERE expires_at_us <= ?"), (now_us,))
        return not fresh

    # Patients

    def upsert_patient(self, tenant: str, patient: PatientRecord) -> PatientRecord:
        """Registers or updates a patient; returns the patient as stored."""
        with self._write() as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO patients (tenant, patient_id, birth_date, sex, ward, team, attributes, created_at_us)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (tenant, patient_id) DO UPDATE SET birth_date = excluded.birth_date,"
                    " sex = excluded.sex, ward = excluded.ward, team = excluded.team, attributes = excluded.attributes"
                ),
                (
                    tenant,
                    patient.patient_id,
                    patient.birth_date.isoformat(),
                    patient.sex,
                    patient.ward,
                    patient.team,
                    _attributes(patient),
                    to_micros(datetime.now(UTC)),
                ),
            )
            return self._get_patient(cursor, tenant, patient.patient_id)

    def get_patient(self, tenant: str, patient_id: str) -> PatientRecord:
        with self._read() as cursor:
            return self._get_patient(cursor, tenant, patient_id)

    def _get_patient(self, cursor: Cursor, tenant: str, patient_id: str) -> PatientRecord:
        cursor.execute(
            self._sql(f"SELECT {_PATIENT_COLUMNS} FROM patients WHERE tenant = ? AND patient_id = ?"),
            (tenant, patient_id),
        )
        row = cursor.fetchone()
        if row is None:
            raise NotFound(_NO_PATIENT)
        return _patient(row)

    # Observations and scores

    @contextmanager
    def recording(self, tenant: str, patient_id: str) -> Iterator[Recording]:
        """One batch's transaction on a locked patient (see the module docstring); NotFound for an unknown patient."""
        with self._write() as cursor:
            row = self._lock_patient(cursor, tenant, patient_id)
            if row is None:
                raise NotFound(_NO_PATIENT)
            visit = Recording(self, cursor, tenant, _patient(row[:6]), int(row[6]))
            try:
                yield visit
            finally:
                visit.close()

    def _known_hashes(self, cursor: Cursor, tenant: str, patient_id: str, ids: Sequence[str]) -> dict[str, str]:
        known: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            cursor.execute(
                self._sql(
                    "SELECT observation_id, content_sha256 FROM observations"
                    f" WHERE tenant = ? AND patient_id = ? AND observation_id IN ({marks})"
                ),
                (tenant, patient_id, *chunk),
            )
            known.update({r[0]: r[1] for r in cursor.fetchall()})
        return known

    def _newest_observed_us(self, cursor: Cursor, tenant: str, patient_id: str) -> int | None:
        cursor.execute(
            self._sql("SELECT MAX(observed_at_us) FROM observations WHERE tenant = ? AND patient_id = ?"),
            (tenant, patient_id),
        )
        newest = cursor.fetchone()[0]
        return None if newest is None else int(newest)

    def _window(self, cursor: Cursor, tenant: str, patient_id: str, lookback: timedelta) -> list[Observation]:
        newest = self._newest_observed_us(cursor, tenant, patient_id)
        if newest is None:
            return []
        since = int(newest) - int(lookback.total_seconds() * 1_000_000)
        cursor.execute(
            self._sql(
                "SELECT observation_id, observed_at_us, payload FROM observations"
                " WHERE tenant = ? AND patient_id = ? AND observed_at_us >= ?"
                " ORDER BY observed_at_us, observation_id"
            ),
            (tenant, patient_id, since),
        )
        return _observations(cursor.fetchall())

    def _scoring_window(
        self, cursor: Cursor, tenant: str, patient_id: str, lookback: timedelta, span: timedelta, signals: Sequence[str]
    ) -> list[Observation]:
        """What a score at the newest observation reads of the `lookback` before it: every observation of the
        last `span` (the widest window a feature aggregates) and, for each of `signals` not measured in it,
        its latest observation in `lookback` (all that a latest value and its age need). Oldest first."""
        if span >= lookback:
            return self._window(cursor, tenant, patient_id, lookback)
        newest = self._newest_observed_us(cursor, tenant, patient_id)
        if newest is None:
            return []
        since = int(newest) - int(span.total_seconds() * 1_000_000)
        cursor.execute(
            self._sql(
                "SELECT observation_id, observed_at_us, payload FROM observations"
                " WHERE tenant = ? AND patient_id = ? AND observed_at_us >= ?"
            ),
            (tenant, patient_id, since),
        )
        rows = cursor.fetchall()
        recent = _observations(rows)
        unmeasured = [name for name in signals if all(getattr(o, name) is None for o in recent)]
        if unmeasured:
            # The payload is JSON with sorted keys and a measured signal's key only: `"name":` finds it.
            latest_of_signal = (
                "SELECT * FROM (SELECT observation_id, observed_at_us, payload FROM observations"
                " WHERE tenant = ? AND patient_id = ? AND observed_at_us >= ? AND observed_at_us < ?"
                " AND payload LIKE ? ORDER BY observed_at_us DESC, observation_id DESC LIMIT 1) AS latest_{}"
            )
            earliest = int(newest) - int(lookback.total_seconds() * 1_000_000)
            cursor.execute(
                self._sql(" UNION ALL ".join(latest_of_signal.format(k) for k in range(len(unmeasured)))),
                [value for name in unmeasured for value in (tenant, patient_id, earliest, since, f'%"{name}":%')],
            )
            # One observation may be the latest of several signals.
            earlier = list({r[0]: r for r in cursor.fetchall()}.values())
            rows, recent = [*earlier, *rows], [*_observations(earlier), *recent]
        order = sorted(range(len(rows)), key=lambda k: (int(rows[k][1]), rows[k][0]))
        return [recent[k] for k in order]

    def observations(self, tenant: str, patient_id: str, lookback: timedelta) -> list[Observation]:
        """A patient's observations from `lookback` before the newest one, oldest first."""
        with self._read() as cursor:
            return self._window(cursor, tenant, patient_id, lookback)

    def _latest(self, cursor: Cursor, tenant: str, patient_id: str) -> ScoreRecord | None:
        cursor.execute(
            self._sql(
                f"SELECT {_SCORE_COLUMNS} FROM risk_scores WHERE tenant = ? AND patient_id = ? ORDER BY version DESC LIMIT 1"
            ),
            (tenant, patient_id),
        )
        row = cursor.fetchone()
        return None if row is None else _score(row)

    def latest_version(self, tenant: str, patient_id: str) -> int:
        """The version of the patient's newest score (0 before the first); NotFound for an unknown patient.

        One read of the patient's row by its key: the version is numbered there in the transaction
        that stores the score, so every replica reads the same newest version as the scores table."""
        with self._read() as cursor:
            cursor.execute(
                self._sql("SELECT score_version FROM patients WHERE tenant = ? AND patient_id = ?"), (tenant, patient_id)
            )
            row = cursor.fetchone()
        if row is None:
            raise NotFound(_NO_PATIENT)
        return int(row[0])

    def latest_score(self, tenant: str, patient_id: str) -> ScoreRecord | None:
        """The patient's newest score, None before the first; NotFound for an unknown patient."""
        with self._read() as cursor:
            self._get_patient(cursor, tenant, patient_id)
            return self._latest(cursor, tenant, patient_id)

    def latest_score_and_observations(
        self, tenant: str, patient_id: str, span: timedelta
    ) -> tuple[ScoreRecord, list[Observation]] | None:
        """The patient's newest score and the observations of `span` up to its scoring time, oldest first,
        read together; None before the first score; NotFound for an unknown patient."""
        with self._read() as cursor:
            self._get_patient(cursor, tenant, patient_id)
            latest = self._latest(cursor, tenant, patient_id)
            if latest is None:
                return None
            until = to_micros(latest.score.scored_at)
            cursor.execute(
                self._sql(
                    "SELECT observation_id, observed_at_us, payload FROM observations"
                    " WHERE tenant = ? AND patient_id = ? AND observed_at_us >= ? AND observed_at_us <= ?"
                    " ORDER BY observed_at_us, observation_id"
                ),
                (tenant, patient_id, until - int(span.total_seconds() * 1_000_000), until),
            )
            rows = cursor.fetchall()
            return latest, _observations(rows)

    def score_history(self, tenant: str, patient_id: str, page_size: int, before_version: int | None = None) -> list[ScoreRecord]:
        """Scores newest first, `page_size` at most, with versions below `before_version`."""
        with self._read() as cursor:
            self._get_patient(cursor, tenant, patient_id)
            cursor.execute(
                self._sql(
                    f"SELECT {_SCORE_COLUMNS} FROM risk_scores WHERE tenant = ? AND patient_id = ? AND version < ?"
                    " ORDER BY version DESC LIMIT ?"
                ),
                (tenant, patient_id, before_version if before_version is not None else 2**62, page_size),
            )
            return [_score(r) for r in cursor.fetchall()]

    def scores_after(self, tenant: str, seq: int, limit: int = 500) -> list[ScoreRecord]:
        """Scores of all patients committed after `seq`, in commit order."""
        with self._read() as cursor:
            cursor.execute(
                self._sql(f"SELECT {_SCORE_COLUMNS} FROM risk_scores WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?"),
                (tenant, seq, limit),
            )
            return [_score(r) for r in cursor.fetchall()]

    def last_seq(self, tenant: str) -> int:
        with self._read() as cursor:
            cursor.execute(self._sql("SELECT value FROM score_sequence WHERE tenant = ?"), (tenant,))
            row = cursor.fetchone()
        return 0 if row is None else int(row[0])


class Recording:
    """One patient's batch inside its transaction, the patient locked (`SqlRiskStore.recording`).

    The caller adds the batch, reads what a score needs, and saves the score;
    nothing is visible to others before the transaction commits.
    """

    def __init__(self, store: SqlRiskStore, cursor: Cursor, tenant: str, patient: PatientRecord, version: int) -> None:
        self._store = store
        self._cursor: Cursor | None = cursor
        self._tenant = tenant
        self.patient = patient
        self._version = version
        self._previous: ScoreRecord | None = None

    def close(self) -> None:
        self._cursor = None

    @property
    def cursor(self) -> Cursor:
        if self._cursor is None:
            raise RuntimeError("the recording's transaction has ended")
        return self._cursor

    def add(self, observations: Sequence[Observation], *, field: str) -> int:
        """Stores the observations whose ids are new; returns how many.

        An id already stored with other content rejects the whole batch (InvalidInput naming
        `field[index].observation_id`); an id stored with the same content is a retry and is skipped.
        """
        store, cursor, tenant, patient_id = self._store, self.cursor, self._tenant, self.patient.patient_id
        hashes = {o.observation_id: _content_hash(o) for o in observations}
        known = store._known_hashes(cursor, tenant, patient_id, list(hashes))
        violations = ViolationCollector()
        for index, observation in enumerate(observations):
            seen = known.get(observation.observation_id)
            if seen is not None and seen != hashes[observation.observation_id]:
                violations.add(
                    f"{field}[{index}].observation_id",
                    "already stored with different content; an observation id names one observation",
                )
        violations.raise_if_any()
        new = [o for o in observations if o.observation_id not in known]
        now = to_micros(datetime.now(UTC))
        cursor.executemany(
            store._sql(
                "INSERT INTO observations (tenant, patient_id, observation_id, observed_at_us,"
                " content_sha256, payload, recorded_at_us) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            [
                (
                    tenant,
                    patient_id,
                    o.observation_id,
                    to_micros(o.observed_at),
                    hashes[o.observation_id],
                    json.dumps(_values(o), sort_keys=True),
                    now,
                )
                for o in new
            ],
        )
        return len(new)

    def window(self, lookback: timedelta) -> list[Observation]:
        """The patient's observations from `lookback` before the newest one, oldest first, this batch included."""
        return self._store._window(self.cursor, self._tenant, self.patient.patient_id, lookback)

    def scoring_window(self, lookback: timedelta, span: timedelta, signals: Sequence[str]) -> list[Observation]:
        """What a score at the newest observation needs of `window(lookback)`, this batch included: all of the
        last `span`, and before that each of `signals`' latest observation (see `SqlRiskStore._scoring_window`)."""
        return self._store._scoring_window(self.cursor, self._tenant, self.patient.patient_id, lookback, span, signals)

    @property
    def previous_band(self) -> RiskBand | None:
        """The band of the patient's newest score before this batch (None: no score yet), read under the lock."""
        if self._previous is not None:
            return self._previous.score.band
        if self._version == 0:
            return None
        cursor = self.cursor
        cursor.execute(
            self._store._sql("SELECT band FROM risk_scores WHERE tenant = ? AND patient_id = ? AND version = ?"),
            (self._tenant, self.patient.patient_id, self._version),
        )
        return _band(cursor.fetchone()[0])

    @property
    def previous_score(self) -> ScoreRecord | None:
        """The patient's newest score before this batch (None: no score yet), read under the lock."""
        if self._previous is None and self._version > 0:
            self._previous = self._store._latest(self.cursor, self._tenant, self.patient.patient_id)
        return self._previous

    def save(self, score: StoredScore) -> ScoreRecord:
        """Stores `score` as the patient's next version; returns it numbered."""
        store, cursor, tenant, patient = self._store, self.cursor, self._tenant, self.patient
        cursor.execute(
            store._sql(
                "INSERT INTO score_sequence (tenant, value) VALUES (?, 1)"
                " ON CONFLICT (tenant) DO UPDATE SET value = score_sequence.value + 1 RETURNING value"
            ),
            (tenant,),
        )
        seq = int(cursor.fetchone()[0])
        version = self._version + 1
        cursor.execute(
            store._sql("UPDATE patients SET score_version = ? WHERE tenant = ? AND patient_id = ?"),
            (version, tenant, patient.patient_id),
        )
        cursor.execute(
            store._sql(f"INSERT INTO risk_scores (tenant, {_SCORE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            (
                tenant,
                patient.patient_id,
                version,
                seq,
                to_micros(score.scored_at),
                score.probability,
                score.band,
                patient.ward,
                patient.team,
                json.dumps(score.to_payload(), sort_keys=True),
            ),
        )
        saved = ScoreRecord(patient.patient_id, version, seq, patient.ward, patient.team, score)
        self._version, self._previous = version, saved
        return saved


class SqliteRiskStore(SqlRiskStore):
    """An embedded store in one file; writers serialise on SQLite's write lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = f"sqlite:///{self.path}"
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = connect_wal(self.path, timeout=30, check_same_thread=True)
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
        return connection

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        cursor = self._connection().cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        connection = self._connection()
        cursor = connection.cursor()
        # IMMEDIATE takes the write lock now, so read-then-write cannot race another writer.
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        else:
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    def _lock_patient(self, cursor: Cursor, tenant: str, patient_id: str) -> Any:
        cursor.execute(
            f"SELECT {_PATIENT_COLUMNS}, score_version FROM patients WHERE tenant = ? AND patient_id = ?",
            (tenant, patient_id),
        )
        return cursor.fetchone()

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


class PostgresRiskStore(SqlRiskStore):
    """A shared store for several replicas; a patient's writers serialise on its row lock."""

    placeholder = "%s"

    def __init__(self, url: str, max_connections: int = 8) -> None:
        from psycopg_pool import ConnectionPool

        self.url = url
        # Autocommit: a read is its statements alone, with no BEGIN and COMMIT around them (each
        # statement of READ COMMITTED sees its own snapshot either way); writes open a transaction.
        self.pool = ConnectionPool(url, min_size=1, max_size=max_connections, open=True, kwargs={"autocommit": True})

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        with self.pool.connection() as connection, connection.cursor() as cursor:
            yield cursor

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        # transaction() commits on success and rolls back on an exception.
        with self.pool.connection() as connection, connection.transaction(), connection.cursor() as cursor:
            yield cursor

    def _lock_patient(self, cursor: Cursor, tenant: str, patient_id: str) -> Any:
        cursor.execute(
            f"SELECT {_PATIENT_COLUMNS}, score_version FROM patients WHERE tenant = %s AND patient_id = %s FOR UPDATE",
            (tenant, patient_id),
        )
        return cursor.fetchone()

    def close(self) -> None:
        self.pool.close()


def open_store(url: str, *, migrate: bool = True) -> SqlRiskStore:
    """`sqlite:///path/to/file.db` or `postgresql://user@host:port/db`; migrates to the newest schema unless
    `migrate` is false (then the caller has checked `STORE_SCHEMA.state(url)`)."""
    store: SqlRiskStore
    if url.startswith("sqlite:///"):
        store = SqliteRiskStore(Path(url.removeprefix("sqlite:///")))
    elif url.startswith(("postgresql://", "postgres://")):
        store = PostgresRiskStore(url)
    else:
        raise ValueError("database URL must start with sqlite:/// or postgresql://")
    if migrate:
        store.migrate()
    return store
