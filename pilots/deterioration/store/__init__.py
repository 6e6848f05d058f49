"""Durable store of patients, observations and risk scores (SQLite or PostgreSQL)."""

from clinpred.pilots.deterioration.store.records import PatientRecord, RecordOutcome, ScoreRecord
from clinpred.pilots.deterioration.store.sql_store import SqlRiskStore as DeteriorationRiskStore
from clinpred.pilots.deterioration.store.sql_store import open_store

__all__ = ["DeteriorationRiskStore", "PatientRecord", "RecordOutcome", "ScoreRecord", "open_store"]
