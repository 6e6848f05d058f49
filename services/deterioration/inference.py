"""Deterioration inference behind the servicer: the model, the risk store, and what joins them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

from clinpred.pilots.common.errors import ModelUnavailable, NotFound
from clinpred.pilots.deterioration.predictor import DeteriorationPredictor
from clinpred.pilots.deterioration.store import (
    ComputedScore,
    DeteriorationRiskStore,
    ObservationRecord,
    PatientRecord,
    RecordOutcome,
    ScoreRecord,
    open_store,
)
from clinpred.services.common.metrics import stage
from clinpred.services.common.runtime import ModelRuntime
from clinpred.services.deterioration.codec import DecodedPatient, StatelessScoring, WatchQuery, history_of
from clinpred.services.deterioration.settings import DeteriorationSettings

SERVICE = "deterioration"


class DeteriorationInference:
    def __init__(self, settings: DeteriorationSettings) -> None:
        self.settings = settings
        self.tenant = settings.tenant
        self.lookback = timedelta(days=settings.lookback_days)
        self.runtime: ModelRuntime[DeteriorationPredictor] = ModelRuntime(SERVICE, settings, DeteriorationPredictor)
        self._store: DeteriorationRiskStore | None = None

    def load(self) -> None:
        predictor = self.runtime.load()
        # Fixed for the life of the loaded model, so read once rather than per GetModelInfo call.
        self.metrics: dict[str, Any] = predictor.package.read_json("metrics.json")
        # Opening migrates the schema; yoyo's lock keeps replicas starting together from racing.
        self._store = open_store(self.settings.database_url)

    @property
    def store(self) -> DeteriorationRiskStore:
        if self._store is None:
            raise ModelUnavailable("the deterioration store is not open yet")
        return self._store

    def _score(
        self, patient: PatientRecord, observations: Sequence[ObservationRecord], previous: ScoreRecord | None
    ) -> ComputedScore:
        history = history_of(patient, observations)
        # Scored at the newest observation: a score describes the data it saw, and stays reproducible.
        at = max(o.observed_at for o in observations)
        with stage(SERVICE, "predict"):
            result = self.runtime.predictor.score(history, at, validate=False)
        payload = result.to_json()
        payload["previous_band"] = previous.band if previous else None
        return ComputedScore(result.scored_at, result.probability, result.risk_band, payload)

    def register(self, patient: DecodedPatient) -> PatientRecord:
        self.store.upsert_patient(self.tenant, patient.record)
        return self.store.get_patient(self.tenant, patient.record.patient_id)

    def patient(self, patient_id: str) -> PatientRecord:
        return self.store.get_patient(self.tenant, patient_id)

    def record(self, patient_id: str, observations: list[ObservationRecord]) -> RecordOutcome:
        return self.store.record(self.tenant, patient_id, observations, self._score, self.lookback)

    def latest(self, patient_id: str) -> ScoreRecord:
        latest = self.store.latest_score(self.tenant, patient_id)
        if latest is None:
            raise NotFound("patient_id: no score yet; record observations first")
        return latest

    def history(self, patient_id: str, page_size: int, before: int | None) -> tuple[list[ScoreRecord], int | None]:
        """A page of scores, newest first, and the version to continue before (None on the last page)."""
        page = self.store.score_history(self.tenant, patient_id, page_size + 1, before)
        more = len(page) > page_size
        page = page[:page_size]
        return page, (page[-1].version if more and page else None)

    def score_stateless(self, request: StatelessScoring) -> dict[str, Any]:
        history = history_of(request.patient.record, request.observations)
        with stage(SERVICE, "predict"):
            return self.runtime.predictor.score(history, request.at, validate=False).to_json()

    async def watch(self, query: WatchQuery) -> AsyncIterator[ScoreRecord]:
        """Scores of the ward or team as any replica commits them; polls the store."""
        cursor = query.resume_after
        if cursor is None:
            cursor = await asyncio.to_thread(self.store.last_seq, self.tenant)
        while True:
            batch = await asyncio.to_thread(self.store.scores_after, self.tenant, cursor)
            for record in batch:
                cursor = record.seq
                if (query.ward and record.ward == query.ward) or (query.team and record.team == query.team):
                    yield record
            if not batch:
                await asyncio.sleep(self.settings.watch_poll_seconds)
