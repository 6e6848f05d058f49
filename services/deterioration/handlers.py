"""Deterioration requests, decoded, to the model and the risk store, and back as domain results.

Store and model calls block; the shared RPC path runs them in a worker thread
(the watch stream, asynchronous, hops to threads itself for each poll).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from typing import Any

from clinpred.pilots.common.call import Call
from clinpred.pilots.common.errors import ModelUnavailable, NotFound, ViolationCollector
from clinpred.pilots.deterioration.features import PEWS_INPUTS, PEWS_MAX_AGE_H, SIGNAL_COLUMNS, WIDEST_FEATURE_WINDOW
from clinpred.pilots.deterioration.observations import SIGNALS, Observation, PatientHistory, latest_measurements
from clinpred.pilots.deterioration.package_format import PILOT
from clinpred.pilots.deterioration.predictor import DeteriorationPredictor, RiskBand
from clinpred.pilots.deterioration.requests import (
    FhirExport,
    HistoryPage,
    HistoryQuery,
    LatestQuery,
    LatestRisk,
    ModelComparison,
    ModelInfo,
    ObservationBatch,
    StatelessScore,
    StatelessScoring,
    WatchEvent,
    WatchQuery,
)
from clinpred.pilots.deterioration.store import (
    DeteriorationRiskStore,
    PatientRecord,
    RecordOutcome,
    ScoreRecord,
    open_store,
)
from clinpred.pilots.deterioration.stored_score import StoredScore
from clinpred.pilots.deterioration.validation import collect_problems_for_patient
from clinpred.services.common.metrics import stage
from clinpred.services.common.runtime import ModelRuntime
from clinpred.services.deterioration.database import require_current_schema
from clinpred.services.deterioration.settings import DeteriorationSettings

SERVICE = PILOT
# The field path of a batch's observations, for the checks only the stored patient allows.
OBSERVATIONS_FIELD = "observations"
NO_SCORE_YET = "patient_id: no score yet; record observations first"
# How far back a Bedside PEWS item counts, and so which observations a FHIR export shows.
PEWS_WINDOW = timedelta(hours=PEWS_MAX_AGE_H)
# The Bedside PEWS inputs, and temperature, which the model reads and PEWS does not.
EXPORTED_VITAL_SIGNS = (*PEWS_INPUTS, "temperature_c")


class DeteriorationHandler:
    def __init__(self, settings: DeteriorationSettings) -> None:
        self.settings = settings
        self.lookback = timedelta(days=settings.lookback_days)
        self.runtime: ModelRuntime[DeteriorationPredictor] = ModelRuntime(SERVICE, settings, DeteriorationPredictor)
        self._store: DeteriorationRiskStore | None = None
        self._metrics: dict[str, Any] = {}
        self._comparison = ModelComparison()

    def load(self) -> None:
        predictor = self.runtime.load()
        # Fixed for the life of the loaded model, so read once rather than per GetModelInfo call.
        self._metrics = predictor.package.read_json("metrics.json")
        files = predictor.package.manifest["files"]
        transparency = predictor.package.file("transparency.json").read_text() if "transparency.json" in files else ""
        self._comparison = ModelComparison.of(self._metrics, transparency)
        if self.settings.migrate_on_start:
            # Opening migrates the schema; yoyo's lock keeps replicas starting together from racing.
            self._store = open_store(self.settings.database_url)
        else:
            require_current_schema(self.settings)
            self._store = open_store(self.settings.database_url, migrate=False)

    @property
    def store(self) -> DeteriorationRiskStore:
        if self._store is None:
            raise ModelUnavailable("the deterioration store is not open yet")
        return self._store

    def _score(self, history: PatientHistory, at: datetime, previous_band: RiskBand | None) -> StoredScore:
        predictor = self.runtime.predictor
        with stage(SERVICE, "predict"):
            prediction = predictor.predict(history, at, validate=False)
        with stage(SERVICE, "explain"):
            explanation = predictor.explain(prediction)
        return StoredScore.of(prediction.explained(explanation), previous_band)

    def register(self, patient: PatientRecord, call: Call) -> PatientRecord:
        call.concerns(patient.patient_id)
        return self.store.upsert_patient(call.tenant, patient)

    def record(self, batch: ObservationBatch, call: Call) -> RecordOutcome:
        """Stores a batch and the score it leads to, in one transaction on the locked patient.

        A batch with nothing new (a retry) adds no version: the answer is the score already stored.
        """
        call.concerns(batch.patient_id)
        call.answered_by(self.runtime.predictor.identity)
        with self.store.recording(call.tenant, batch.patient_id) as visit:
            violations = ViolationCollector()
            collect_problems_for_patient(
                batch.observations, violations, birth_date=visit.patient.birth_date, field_prefix=OBSERVATIONS_FIELD
            )
            violations.raise_if_any()
            stored = visit.add(batch.observations, field=OBSERVATIONS_FIELD)
            duplicates = len(batch.observations) - stored
            if stored == 0 and (previous := visit.previous_score) is not None:
                return RecordOutcome(0, duplicates, previous)
            # Only what the features read: the observations of their widest window, and each signal's latest.
            window = visit.scoring_window(self.lookback, WIDEST_FEATURE_WINDOW, SIGNAL_COLUMNS)
            score = self._score(visit.patient.history(window), _newest(window), visit.previous_band)
            return RecordOutcome(stored, duplicates, visit.save(score))

    def _latest_record(self, patient_id: str, call: Call) -> ScoreRecord:
        call.concerns(patient_id)
        latest = self.store.latest_score(call.tenant, patient_id)
        if latest is None:
            raise NotFound(NO_SCORE_YET)
        return latest

    def latest(self, query: LatestQuery, call: Call) -> LatestRisk:
        """A poll: when the caller has the newest version, one read of the patient's version answers it."""
        if query.known_version > 0:
            call.concerns(query.patient_id)
            version = self.store.latest_version(call.tenant, query.patient_id)
            if version == query.known_version:
                return LatestRisk(version, None)
        latest = self._latest_record(query.patient_id, call)
        return LatestRisk(latest.version, None if latest.version == query.known_version else latest)

    def history(self, query: HistoryQuery, call: Call) -> HistoryPage:
        """A page of scores, newest first, and the version to continue before (None on the last page)."""
        call.concerns(query.patient_id)
        page = self.store.score_history(call.tenant, query.patient_id, query.page_size + 1, query.before_version)
        more = len(page) > query.page_size
        page = page[: query.page_size]
        return HistoryPage(tuple(page), page[-1].version if more and page else None)

    async def watch(self, query: WatchQuery, call: Call) -> AsyncIterator[WatchEvent]:
        """Scores of the caller's tenant's ward or team as any replica commits them; polls the store."""
        cursor = query.resume_after
        if cursor is None:
            cursor = await asyncio.to_thread(self.store.last_seq, call.tenant)
        while True:
            batch = await asyncio.to_thread(self.store.scores_after, call.tenant, cursor)
            for record in batch:
                cursor = record.seq
                if query.watches(record):
                    yield WatchEvent(record, alert=record.score.alerts(query.alert_band))
            if not batch:
                await asyncio.sleep(self.settings.watch_poll_seconds)

    def score(self, scoring: StatelessScoring, call: Call) -> StatelessScore:
        call.concerns(scoring.patient.patient_id)
        call.answered_by(self.runtime.predictor.identity)
        at = scoring.at or _newest(scoring.observations)
        return StatelessScore(scoring.patient.patient_id, self._score(scoring.history(), at, previous_band=None))

    def fhir_export(self, patient_id: str, call: Call) -> FhirExport:
        """The score a FHIR export shows, the latest, with the observations its vital signs come from."""
        call.concerns(patient_id)
        found = self.store.latest_score_and_observations(call.tenant, patient_id, PEWS_WINDOW)
        if found is None:
            raise NotFound(NO_SCORE_YET)
        record, observations = found
        measurements = latest_measurements(observations, EXPORTED_VITAL_SIGNS, record.score.scored_at, PEWS_WINDOW)
        return FhirExport(call.tenant, record, measurements)

    def model_info(self, _: None, call: Call) -> ModelInfo:
        predictor = self.runtime.predictor
        return ModelInfo(
            identity=predictor.identity,
            horizon_hours=predictor.horizon_hours,
            features=predictor.schema.features,
            metrics=self._metrics,
            signals=tuple(SIGNALS.values()),
            max_batch_size=self.settings.max_batch_size,
            comparison=self._comparison,
        )


def _newest(observations: Iterable[Observation]) -> datetime:
    # Scored at the newest observation: a score describes the data it saw, and stays reproducible.
    return max(o.observed_at for o in observations)
