"""Stored scores: typed, versioned, and every version so far still reads.

`VERSION_1_ROW` is a row's payload exactly as the first release stored it:
`DeteriorationPredictor.score(...).to_json()` of the reference package
home-deterioration 1.0.0 (a 6-year-old with fever and tachycardia), plus the
`previous_band` the service added. It has no `schema_version`: that is version 1.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest

from clinpred.pilots.common.errors import ClinpredError
from clinpred.pilots.common.model_package import ModelIdentity, latest_package
from clinpred.pilots.deterioration.observations import Observation, PatientHistory, PatientInfo
from clinpred.pilots.deterioration.predictor import DeteriorationPredictor, RiskBand
from clinpred.pilots.deterioration.stored_score import (
    SCHEMA_VERSION,
    NewerStoredScore,
    StoredScore,
    UnreadableStoredScore,
)

MODELS = Path(__file__).resolve().parents[4] / "models"

VERSION_1_ROW: Final[dict[str, Any]] = {
    "band_thresholds": [0.00403, 0.0105],
    "confidence": {
        "coverage": 0.9,
        "method": "class-conditional (Mondrian) split conformal, score 1 - p(class)",
        "prediction_set": ["deterioration"],
        "statement": "with 90% coverage the outcome is in {deterioration}",
        "verified_coverage": 0.8984528718902456,
    },
    "data_quality": [
        {
            "code": "outside_training_range",
            "message": "respiratory rate for age (z-score vs Fleming centiles) outside the range seen in training",
            "signal": "respiratory_rate_z_last",
        },
        {
            "code": "outside_training_range",
            "message": "highest respiratory rate for age in 24 h (z-score) outside the range seen in training",
            "signal": "respiratory_rate_z_max_24h",
        },
        {
            "code": "outside_training_range",
            "message": "Bedside PEWS of the latest observations outside the range seen in training",
            "signal": "pews_total",
        },
    ],
    "explanation": {
        "base_value": -6.662302351430936,
        "contributions": [
            {"feature": "heart_rate_last", "shap_value": 0.10654094714872403, "value": 168.0},
            {"feature": "heart_rate_hours_since_last", "shap_value": 0.002101096862258423, "value": 2.0},
            {"feature": "heart_rate_mean_6h", "shap_value": 0.04767775821352743, "value": 168.0},
            {"feature": "heart_rate_max_24h", "shap_value": 0.1301525515171177, "value": 168.0},
            {"feature": "heart_rate_min_24h", "shap_value": 0.009795911335746189, "value": 110.0},
            {"feature": "heart_rate_delta_24h", "shap_value": 0.4090253299001658, "value": 58.0},
            {"feature": "heart_rate_vs_7d", "shap_value": 0.15915184690510045, "value": None},
            {"feature": "heart_rate_missing_24h", "shap_value": 0.0, "value": 0.0},
            {"feature": "respiratory_rate_last", "shap_value": 0.037654484771151284, "value": 44.0},
            {"feature": "respiratory_rate_hours_since_last", "shap_value": 0.0017957825657403726, "value": 2.0},
            {"feature": "respiratory_rate_mean_6h", "shap_value": 0.009199020280046556, "value": 44.0},
            {"feature": "respiratory_rate_max_24h", "shap_value": -0.070011886874424, "value": 44.0},
            {"feature": "respiratory_rate_min_24h", "shap_value": 0.1480776861833082, "value": 24.0},
            {"feature": "respiratory_rate_delta_24h", "shap_value": 0.06213530981787887, "value": 20.0},
            {"feature": "respiratory_rate_vs_7d", "shap_value": -0.27389136600689257, "value": None},
            {"feature": "respiratory_rate_missing_24h", "shap_value": 0.0, "value": 0.0},
            {"feature": "temperature_c_last", "shap_value": -0.05707920871793864, "value": 39.400001525878906},
            {"feature": "temperature_c_hours_since_last", "shap_value": -0.011673905621365244, "value": 2.0},
            {"feature": "temperature_c_mean_6h", "shap_value": 0.11029662868807837, "value": 39.400001525878906},
            {"feature": "temperature_c_max_24h", "shap_value": 1.010959806241122, "value": 39.400001525878906},
            {"feature": "temperature_c_min_24h", "shap_value": -0.06001767511063931, "value": 37.20000076293945},
            {"feature": "temperature_c_delta_24h", "shap_value": 0.29052150574959174, "value": 2.200000047683716},
            {"feature": "temperature_c_vs_7d", "shap_value": -0.06766624410370026, "value": None},
            {"feature": "temperature_c_missing_24h", "shap_value": 0.0, "value": 0.0},
            {"feature": "spo2_last", "shap_value": -0.07756990420830166, "value": 91.0},
            {"feature": "spo2_hours_since_last", "shap_value": 0.0007977985068277694, "value": 2.0},
            {"feature": "spo2_mean_6h", "shap_value": 0.04208122988596198, "value": 91.0},
            {"feature": "spo2_max_24h", "shap_value": 0.01927668293174019, "value": 97.0},
            {"feature": "spo2_min_24h", "shap_value": 0.028496918621429015, "value": 91.0},
            {"feature": "spo2_delta_24h", "shap_value": 0.012751853060670747, "value": -6.0},
            {"feature": "spo2_vs_7d", "shap_value": -0.16867162687902293, "value": None},
            {"feature": "spo2_missing_24h", "shap_value": 0.0, "value": 0.0},
            {"feature": "systolic_bp_last", "shap_value": 0.13774136411973234, "value": 76.0},
            {"feature": "systolic_bp_hours_since_last", "shap_value": 0.026236848020178408, "value": 2.0},
            {"feature": "systolic_bp_min_24h", "shap_value": 0.11354806954046301, "value": 76.0},
            {"feature": "systolic_bp_vs_7d", "shap_value": -0.0935032019262783, "value": None},
            {"feature": "systolic_bp_missing_24h", "shap_value": 0.0, "value": 0.0},
            {"feature": "capillary_refill_s_last", "shap_value": 0.14182863039190655, "value": 3.5},
            {"feature": "capillary_refill_s_hours_since_last", "shap_value": -0.08310758212928264, "value": 2.0},
            {"feature": "capillary_refill_s_max_24h", "shap_value": 0.04707524960905499, "value": 3.5},
            {"feature": "respiratory_effort_last", "shap_value": 0.16371971892813555, "value": 2.0},
            {"feature": "respiratory_effort_hours_since_last", "shap_value": -0.0063087423006905705, "value": 2.0},
            {"feature": "respiratory_effort_max_24h", "shap_value": 0.005731411411869628, "value": 2.0},
            {"feature": "avpu_hours_since_last", "shap_value": 0.0005049671867374993, "value": None},
            {"feature": "avpu_max_24h", "shap_value": -0.0012398222797876447, "value": None},
            {"feature": "oxygen_flow_l_min_last", "shap_value": -0.040576709260383405, "value": 1.0},
            {"feature": "neutrophils_g_l_last", "shap_value": 0.680081693046039, "value": 0.20000000298023224},
            {"feature": "neutrophils_g_l_hours_since_last", "shap_value": -0.06038505323950787, "value": 2.0},
            {"feature": "crp_mg_l_last", "shap_value": 0.665664247485255, "value": 120.0},
            {"feature": "crp_mg_l_hours_since_last", "shap_value": 0.04900766677697899, "value": 2.0},
            {"feature": "haemoglobin_g_l_last", "shap_value": -0.014634182493533945, "value": None},
            {"feature": "haemoglobin_g_l_hours_since_last", "shap_value": -0.025279487739802604, "value": None},
            {"feature": "platelets_g_l_last", "shap_value": -9.211263353970305e-05, "value": None},
            {"feature": "platelets_g_l_hours_since_last", "shap_value": -0.04542606818964712, "value": None},
            {"feature": "heart_rate_z_last", "shap_value": 0.20338415034933693, "value": 4.917506694793701},
            {"feature": "heart_rate_z_max_24h", "shap_value": 0.4590386847799034, "value": 4.917506694793701},
            {"feature": "respiratory_rate_z_last", "shap_value": 0.12064802817061712, "value": 9.498553276062012},
            {"feature": "respiratory_rate_z_max_24h", "shap_value": 1.1078922122212685e-05, "value": 9.498553276062012},
            {"feature": "fever_readings_24h", "shap_value": -0.012492989245585789, "value": 1.0},
            {"feature": "observation_sets_24h", "shap_value": 0.007797633832206524, "value": 2.0},
            {"feature": "pews_total", "shap_value": 0.03239506652257418, "value": 17.0},
            {"feature": "age_years", "shap_value": -0.04916188381202022, "value": 6.837497234344482},
            {"feature": "days_since_chemo", "shap_value": 0.8599974195179895, "value": 8.0},
            {"feature": "treatment_intensity", "shap_value": 0.08079477586344044, "value": 2.0},
            {"feature": "central_line", "shap_value": -0.003398677966344305, "value": 1.0},
            {"feature": "diagnosis_all", "shap_value": 0.00041470348850600593, "value": 0.0},
            {"feature": "diagnosis_aml", "shap_value": -0.06731993178132373, "value": 1.0},
            {"feature": "diagnosis_lymphoma", "shap_value": 0.002194946053501681, "value": 0.0},
            {"feature": "diagnosis_cns_tumour", "shap_value": 0.006958062649883645, "value": 0.0},
            {"feature": "diagnosis_solid_tumour", "shap_value": 0.00025733601199339623, "value": 0.0},
        ],
        "explained_class": "deterioration",
        "margin": -1.508288712086336,
        "method": "TreeSHAP (exact, path-dependent; native booster)",
        "output_space": "log-odds",
        "top_reasons": [
            {
                "direction": "raises",
                "feature": "temperature_c_max_24h",
                "shap_value": 1.010959806241122,
                "text": "highest body temperature in 24 h: 39.4 °C raises the risk",
                "unit": "Cel",
                "value": 39.400001525878906,
            },
            {
                "direction": "raises",
                "feature": "days_since_chemo",
                "shap_value": 0.8599974195179895,
                "text": "days since the last chemotherapy: 8 days raises the risk",
                "unit": "d",
                "value": 8.0,
            },
            {
                "direction": "raises",
                "feature": "neutrophils_g_l_last",
                "shap_value": 0.680081693046039,
                "text": "latest absolute neutrophil count: 0.2 x10^9/L raises the risk",
                "unit": "10*9/L",
                "value": 0.20000000298023224,
            },
        ],
    },
    "horizon_hours": 24.0,
    "model": {
        "name": "home-deterioration",
        "sha256": "82551d2a5bc7370e095b493643fde8c791acc6a4a8caa91de32bb601763aac6f",
        "version": "1.0.0",
    },
    "pews": {
        "age_band": ">4 to 12 years",
        "capillary_refill": 4,
        "heart_rate": 4,
        "missing_items": [],
        "oxygen_saturation": 1,
        "oxygen_therapy": 2,
        "respiratory_effort": 2,
        "respiratory_rate": 2,
        "systolic_bp": 2,
        "total": 17,
        "values": [
            ["heart_rate", 168.0],
            ["systolic_bp", 76.0],
            ["respiratory_rate", 44.0],
            ["capillary_refill", 3.5],
            ["respiratory_effort", 2.0],
            ["oxygen_saturation", 91.0],
            ["oxygen_therapy", 1.0],
        ],
    },
    "previous_band": "low",
    "probability": 0.1494359808616465,
    "risk_band": "high",
    "scored_at": "2026-03-02T09:30:00Z",
}


def test_a_version_1_row_reads_into_the_typed_score() -> None:
    score = StoredScore.from_payload(VERSION_1_ROW)
    assert score.probability == VERSION_1_ROW["probability"]
    assert (score.band, score.previous_band, score.horizon_hours) == ("high", "low", 24.0)
    assert score.band_thresholds == (0.00403, 0.0105)
    assert score.scored_at == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert score.model == ModelIdentity("home-deterioration", "1.0.0", VERSION_1_ROW["model"]["sha256"])
    assert score.pews.total == 17 == sum(score.pews.items().values())
    assert score.pews.heart_rate == 4 and score.pews.age_band == ">4 to 12 years"
    assert score.pews.value_of("heart_rate") == 168.0 and score.pews.value_of("capillary_refill") == 3.5
    assert score.pews.missing_items == ()
    assert score.confidence.labels == ("deterioration",)
    assert score.confidence.coverage == 0.9 and score.confidence.statement.startswith("with 90% coverage")
    assert score.verified_coverage == VERSION_1_ROW["confidence"]["verified_coverage"]
    explanation = score.explanation
    assert len(explanation.contributions) == len(VERSION_1_ROW["explanation"]["contributions"]) == 70
    # Stored null is a value not measured: NaN again, as the model saw it.
    not_measured = [c.feature for c in explanation.contributions if math.isnan(c.value)]
    assert not_measured == [c["feature"] for c in VERSION_1_ROW["explanation"]["contributions"] if c["value"] is None]
    assert "heart_rate_vs_7d" in not_measured
    assert [r.direction for r in explanation.top_reasons] == ["raises", "raises", "raises"]
    assert explanation.top_reasons[0].text == "highest body temperature in 24 h: 39.4 °C raises the risk"
    assert [(f.code, f.signal) for f in score.data_quality][-1] == ("outside_training_range", "pews_total")


def test_the_current_version_and_version_1_load_into_the_same_object() -> None:
    from_version_1 = StoredScore.from_payload(VERSION_1_ROW)
    # Keys sorted, as the store writes them.
    current = json.loads(json.dumps(from_version_1.to_payload(), allow_nan=False, sort_keys=True))
    assert current["schema_version"] == SCHEMA_VERSION == 2
    assert "risk_band" not in current and current["band"] == "high"
    assert StoredScore.from_payload(current) == from_version_1
    # And the current version writes itself again unchanged.
    assert StoredScore.from_payload(current).to_payload() == current


def test_a_fresh_score_of_the_reference_model_round_trips() -> None:
    predictor = DeteriorationPredictor.load(latest_package(MODELS, "deterioration", "home-deterioration"))
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    history = PatientHistory(
        PatientInfo("p", date(2019, 5, 1), "aml", "high", True),
        (Observation("o1", at - timedelta(hours=2), heart_rate=168.0, temperature_c=39.4, spo2=91.0),),
    )
    stored = StoredScore.of(predictor.score(history, at), previous_band="medium")
    payload = json.loads(json.dumps(stored.to_payload(), allow_nan=False, sort_keys=True))
    restored = StoredScore.from_payload(payload)
    assert restored.to_payload() == payload
    assert restored.previous_band == "medium" and restored.band == stored.band
    assert restored.pews == stored.pews and restored.confidence == stored.confidence
    assert [r.text for r in restored.explanation.top_reasons] == [r.text for r in stored.explanation.top_reasons]
    assert [c.shap_value for c in restored.explanation.contributions] == [c.shap_value for c in stored.explanation.contributions]


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 99, "3", None, True])
def test_an_unknown_version_is_refused_clearly(version: Any) -> None:
    payload = StoredScore.from_payload(VERSION_1_ROW).to_payload() | {"schema_version": version}
    with pytest.raises(NewerStoredScore) as raised:
        StoredScore.from_payload(payload)
    assert raised.value.status == "FAILED_PRECONDITION"
    assert f"reads versions 1 to {SCHEMA_VERSION}" in raised.value.message and "upgrade" in raised.value.message


def test_a_damaged_row_is_unreadable_and_names_no_stored_value() -> None:
    without_pews = {k: v for k, v in VERSION_1_ROW.items() if k != "pews"}
    with pytest.raises(UnreadableStoredScore) as raised:
        StoredScore.from_payload(without_pews)
    assert raised.value.message == "a stored score of schema version 1 lacks 'pews'"
    with pytest.raises(UnreadableStoredScore) as raised:
        StoredScore.from_payload(VERSION_1_ROW | {"risk_band": "catastrophic"})
    assert "catastrophic" not in raised.value.message
    assert isinstance(raised.value, ClinpredError) and not isinstance(raised.value, KeyError)


def test_the_oldest_rows_without_pews_values_still_read() -> None:
    pews = {k: v for k, v in VERSION_1_ROW["pews"].items() if k not in ("values", "missing_items")}
    score = StoredScore.from_payload(VERSION_1_ROW | {"pews": pews})
    assert score.pews.values == () and score.pews.missing_items == ()
    assert score.pews.value_of("heart_rate") is None and score.pews.total == 17


@pytest.mark.parametrize(
    ("previous", "band", "alert_band", "alerts"),
    [
        (None, "high", "high", True),  # a first score rises from nothing
        ("low", "high", "high", True),
        ("medium", "high", "medium", True),  # rose, and is at least the alert band
        ("high", "high", "high", False),  # stayed high: the watcher saw it rise already
        ("low", "medium", "high", False),  # rose, but not to the alert band
        ("high", "medium", "medium", False),  # fell into the alert band
        (None, "low", "low", True),
    ],
)
def test_an_alert_is_a_rise_into_the_alert_band(
    previous: RiskBand | None, band: RiskBand, alert_band: RiskBand, alerts: bool
) -> None:
    score = replace(StoredScore.from_payload(VERSION_1_ROW), band=band, previous_band=previous)
    assert score.alerts(alert_band) is alerts
