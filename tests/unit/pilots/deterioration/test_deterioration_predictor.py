"""Online scoring with the reference package in the repository: SHAP additivity, calibration, PEWS, flags."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from clinpred.pilots.common.errors import InvalidInput
from clinpred.pilots.common.model_package import latest_package
from clinpred.pilots.deterioration.cohort import patient_history
from clinpred.pilots.deterioration.features import FEATURE_NAMES, arrays_from_tables, compute_features, feature_matrix, to_hours
from clinpred.pilots.deterioration.observations import Observation, PatientHistory, PatientInfo
from clinpred.pilots.deterioration.package_format import onnx_positive_probability
from clinpred.pilots.deterioration.pews import bedside_pews
from clinpred.pilots.deterioration.predictor import DeteriorationPredictor
from clinpred.pilots.deterioration.simulator import simulate_cohort
from clinpred.pilots.deterioration.stored_score import StoredScore

MODELS = Path(__file__).resolve().parents[4] / "models"


@pytest.fixture(scope="module")
def predictor() -> DeteriorationPredictor:
    return DeteriorationPredictor.load(latest_package(MODELS, "deterioration", "home-deterioration"))


@pytest.fixture(scope="module")
def cohort_rows() -> tuple[np.ndarray, list[tuple[str, datetime]]]:
    cohort = simulate_cohort(30, seed=123, progress=False)
    arrays, context, index_of = arrays_from_tables(cohort.observations, cohort.patients, cohort.chemotherapy)
    events = cohort.events[cohort.events["event_type"] == "unplanned_admission"]
    points = [
        (str(p), t.to_pydatetime() - timedelta(hours=3)) for p, t in zip(events["patient_id"], events["event_time"], strict=True)
    ]
    rows = cohort.observations.iloc[::97]
    points += [
        (str(p), t.to_pydatetime() + timedelta(hours=1)) for p, t in zip(rows["patient_id"], rows["observed_at"], strict=True)
    ]
    features = compute_features(arrays, context, np.array([index_of[p] for p, _ in points]), to_hours([t for _, t in points]))
    return feature_matrix(features), points


Rows = tuple[np.ndarray, list[tuple[str, datetime]]]


def test_shap_is_additive_and_matches_onnx(predictor: DeteriorationPredictor, cohort_rows: Rows) -> None:
    x, _ = cohort_rows
    contributions = predictor.booster.predict(x, pred_contrib=True)
    assert contributions.shape == (x.shape[0], len(FEATURE_NAMES) + 1)
    margin = predictor.booster.predict(x, raw_score=True)
    np.testing.assert_allclose(contributions.sum(axis=1), margin, atol=1e-9)
    onnx_p = onnx_positive_probability(predictor.session, x)
    np.testing.assert_allclose(1 / (1 + np.exp(-contributions.sum(axis=1))), onnx_p, atol=1e-5)


def test_score_is_consistent(predictor: DeteriorationPredictor) -> None:
    cohort = simulate_cohort(30, seed=123, progress=False)
    event = cohort.events[cohort.events["event_type"] == "unplanned_admission"].iloc[0]
    at = event["event_time"].to_pydatetime() - timedelta(hours=2)
    history = patient_history(cohort.observations, cohort.patients, str(event["patient_id"]), cohort.chemotherapy, until=at)
    score = predictor.score(history, at)
    assert score.model == predictor.package.identity
    assert score.scored_at == at and score.horizon_hours == 24
    assert 0 < score.probability < 1
    raw = 1 / (1 + np.exp(-score.explanation.margin))
    expected = predictor.calibrator.apply(np.array([[1 - raw, raw]]))[0, 1]
    assert score.probability == pytest.approx(expected, abs=1e-5)
    medium, high = score.band_thresholds
    assert score.risk_band == ("high" if score.probability >= high else "medium" if score.probability >= medium else "low")
    assert score.confidence.labels == predictor.conformal.labels(score.probability)
    assert score.confidence.coverage == 0.9
    assert abs(score.verified_coverage - 0.9) <= 0.02
    explanation = score.explanation
    assert len(explanation.contributions) == len(FEATURE_NAMES)
    total = explanation.base_value + sum(c.shap_value for c in explanation.contributions)
    assert explanation.margin == pytest.approx(total, abs=1e-9)
    assert len(score.reasons) == 3
    assert abs(score.reasons[0].shap_value) >= abs(score.reasons[1].shap_value) >= abs(score.reasons[2].shap_value)
    assert all(r.direction in r.text for r in score.reasons)
    assert score.pews.total == sum(score.pews.items().values())
    # As the store keeps it: plain JSON (a value not measured is null, never NaN), read back to the same score.
    payload = json.loads(json.dumps(StoredScore.of(score, previous_band=None).to_payload(), allow_nan=False))
    assert payload["probability"] == score.probability
    assert payload["model"]["sha256"] == predictor.package.identity.sha256
    assert payload["scored_at"].endswith("Z")
    restored = StoredScore.from_payload(payload)
    assert restored.explanation.margin == score.explanation.margin
    assert [c.feature for c in restored.explanation.contributions] == list(FEATURE_NAMES)
    assert restored.pews == score.pews and restored.confidence == score.confidence


def test_predict_then_explain_is_the_score(predictor: DeteriorationPredictor) -> None:
    at = datetime(2025, 6, 1, 12, tzinfo=UTC)
    observations = (Observation("a", at - timedelta(hours=2), heart_rate=160.0, temperature_c=39.1, spo2=93.0),)
    history = PatientHistory(PatientInfo("p", date(2020, 1, 1), "aml", "high", True), observations)
    prediction = predictor.predict(history, at)
    explained = prediction.explained(predictor.explain(prediction))
    whole = predictor.score(history, at)
    assert explained.probability == whole.probability and explained.risk_band == whole.risk_band
    assert explained.explanation.margin == pytest.approx(whole.explanation.margin, abs=1e-12)
    # Compared without `value`: a value not measured is NaN, which equals nothing.
    assert [(r.feature, r.direction, r.shap_value, r.text) for r in explained.reasons] == [
        (r.feature, r.direction, r.shap_value, r.text) for r in whole.reasons
    ]


def test_pews_uses_latest_items_and_quality_flags_name_stale_data(predictor: DeteriorationPredictor) -> None:
    at = datetime(2025, 6, 1, 12, tzinfo=UTC)
    observations = (
        Observation("a", at - timedelta(hours=30), spo2=88.0, heart_rate=100.0),
        Observation("b", at - timedelta(hours=3), heart_rate=175.0, respiratory_rate=45.0, temperature_c=38.6),
    )
    history = PatientHistory(PatientInfo("p", date(2022, 1, 1), "all", "high", True), observations)
    score = predictor.score(history, at)
    age = (at - datetime(2022, 1, 1, tzinfo=UTC)).total_seconds() / (365.25 * 86400)
    assert score.pews == bedside_pews(age, heart_rate=175.0, respiratory_rate=45.0)  # SpO2 is 30 h old: not counted
    assert score.pews.age_band == "1 to 4 years"
    assert score.pews.heart_rate == 4 and score.pews.respiratory_rate == 1 and score.pews.oxygen_saturation == 0
    messages = [flag.message for flag in score.data_quality]
    assert "last SpO2 older than 12 h" in messages
    assert "no labs in the last 72 h" in messages
    assert "chemotherapy dates unknown" in messages
    assert "last heart rate older than 12 h" not in messages
    codes = {(flag.code, flag.signal) for flag in score.data_quality}
    assert {("stale_signal", "spo2"), ("missing_labs", "neutrophils_g_l")} <= codes
    assert score.pews.value_of("heart_rate") == 175.0 and score.pews.value_of("oxygen_saturation") is None


def test_invalid_history_is_rejected_without_values(predictor: DeteriorationPredictor) -> None:
    at = datetime(2025, 6, 1, 12, tzinfo=UTC)
    history = PatientHistory(
        PatientInfo("p", date(2022, 1, 1), "all", "high", True),
        (Observation("a", at - timedelta(hours=1), temperature_c=98.6), Observation("a", at, heart_rate=0.0)),
    )
    with pytest.raises(InvalidInput) as raised:
        predictor.score(history, at)
    fields = [v.field for v in raised.value.violations]
    assert fields == ["observations[0].temperature_c", "observations[1].observation_id", "observations[1].heart_rate"]
    assert all("98.6" not in v.description for v in raised.value.violations)
