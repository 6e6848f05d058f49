"""The shipped deterioration packages: 1.2.0 is the one served, its recorded figures are consistent, 1.0.0 and
1.1.0 still load."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clinpred.pilots.common.model_package import ModelPackage, latest_package
from clinpred.pilots.deterioration.observations import Observation, PatientHistory, PatientInfo
from clinpred.pilots.deterioration.predictor import DeteriorationPredictor
from clinpred.pilots.deterioration.requests import ModelComparison
from clinpred.pilots.deterioration.scenarios import SCENARIOS

MODELS = Path(__file__).resolve().parents[4] / "models"
FAMILY = MODELS / "deterioration" / "home-deterioration"
SERVED = "1.2.0"
AT = datetime(2025, 6, 1, 12, tzinfo=UTC)
FEBRILE = PatientHistory(
    PatientInfo("p", date(2020, 1, 1), "aml", "high", True),
    (Observation("a", AT - timedelta(hours=2), heart_rate=170.0, temperature_c=39.4, spo2=93.0, respiratory_rate=40.0),),
)


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    return latest_package(MODELS, "deterioration", "home-deterioration")


@pytest.fixture(scope="module")
def metrics(package: ModelPackage) -> dict[str, Any]:
    return package.read_json("metrics.json")


def test_the_newest_package_is_served_and_the_old_one_stays_loadable(package: ModelPackage) -> None:
    assert package.identity.version == SERVED
    new = DeteriorationPredictor.load(package)
    old = DeteriorationPredictor.load(FAMILY / "1.0.0")
    assert old.venn_abers is None and new.venn_abers is not None
    old_score, new_score = old.predict(FEBRILE, AT), new.predict(FEBRILE, AT)
    # 1.0.0 answers as it always did: its conformal set and no interval.
    assert old_score.confidence.lower is None and "coverage the outcome is in" in old_score.confidence.statement
    confidence = new_score.confidence
    assert confidence.lower is not None and confidence.upper is not None
    assert 0.0 <= confidence.lower <= new_score.probability <= confidence.upper <= 1.0
    p0, p1 = (float(v[0]) for v in new.venn_abers.interval(new_score.probability))
    assert (confidence.lower, confidence.upper) == (min(p0, new_score.probability), max(p1, new_score.probability))
    assert "Venn-Abers interval" in confidence.statement and f"{new_score.risk_band} band" in confidence.statement
    assert confidence.labels == new.conformal.labels(new_score.probability)  # deprecated, still filled


def test_recorded_headline_is_the_best_baseline_gain_and_the_card_quotes_it(
    package: ModelPackage, metrics: dict[str, Any]
) -> None:
    overall = metrics["outcomes"]["any"]
    headline = metrics["headline"]
    best = headline["best_baseline"]
    assert best == max(("pews", "pathway", "logistic"), key=lambda n: overall[n]["auroc"]["value"])
    gain = headline["auroc_gain"]
    assert gain["value"] == pytest.approx(overall["model"]["auroc"]["value"] - overall[best]["auroc"]["value"], abs=1e-12)
    assert gain["ci95"][0] <= gain["value"] <= gain["ci95"][1]
    assert headline["bootstrap"] == {"replicates": 1000, "seed": 0, "unit": "child", "children": 240}
    card = package.file("MODEL_CARD.md").read_text()
    low, high = gain["ci95"]
    assert f"AUROC {gain['value']:.3f} ({low:.3f} to {high:.3f})" in card
    for section in ("## Intended use and users", "## Alert bands and operating points", "## Subgroups", "## Monitoring plan",
                    "## Change log", "## Decision curve", "## Simulator assumptions tested", "Owner:", "Date:"):
        assert section in card, section
    for image in ("calibration.png", "decision_curve.png", "shap_summary.png"):
        assert package.file(image).read_bytes()[:4] == b"\x89PNG"


def test_recorded_bands_keep_their_alert_budget(metrics: dict[str, Any]) -> None:
    budget = metrics["risk_bands"]["alert_budget_per_100_children_per_day"]
    points = metrics["operating_points"]
    assert points["high"]["alerts_per_100_children_per_day"] <= budget["high"]
    assert points["medium_or_higher"]["alerts_per_100_children_per_day"] <= budget["medium"]


def test_recorded_scenario_study_is_complete_and_consistent(metrics: dict[str, Any]) -> None:
    study = metrics["scenarios"]
    results = study["results"]
    assert set(results) == set(SCENARIOS)
    reference = results["reference"]["gain"]
    for name, result in results.items():
        assert result["gain"] == pytest.approx(result["auroc"]["model"] - result["auroc"][result["best_baseline"]], abs=1e-12)
        assert result["gain_retained"] == pytest.approx(result["gain"] / reference, rel=1e-9), name
        low, high = result["gain_ci95"]
        assert low <= result["gain"] <= high


def test_recorded_uncertainty_check_on_held_out_children(metrics: dict[str, Any]) -> None:
    check = metrics["venn_abers_test"]
    # See test_deterioration_training: 7 of 10 bins' 95 % Wilson CIs must meet their interval.
    assert check["coverage"] >= 0.7
    for band, rate in metrics["risk_bands"]["observed_test"].items():
        assert rate["ci95"][0] <= rate["rate"] <= rate["ci95"][1], band
    observed = metrics["risk_bands"]["observed_test"]
    assert observed["low"]["rate"] < observed["medium"]["rate"] < observed["high"]["rate"]


def test_model_info_comparison_of_each_package(package: ModelPackage, metrics: dict[str, Any]) -> None:
    new = ModelComparison.of(metrics, package.file("transparency.json").read_text())
    assert [c.name for c in new.comparators] == ["model", "pews", "pathway", "logistic"]
    assert new.best_baseline == metrics["headline"]["best_baseline"]
    assert new.auroc_gain_over_best_baseline is not None
    assert new.auroc_gain_over_best_baseline.value == metrics["headline"]["auroc_gain"]["value"]
    assert json.loads(new.transparency_json)["model"]["version"] == SERVED
    old = ModelPackage.open(FAMILY / "1.0.0")
    assert "transparency.json" not in old.manifest["files"]
    assert ModelComparison.of(old.read_json("metrics.json"), "") == ModelComparison()


def test_readme_quotes_the_served_package(metrics: dict[str, Any]) -> None:
    readme = (MODELS.parent / "README.md").read_text()
    overall = metrics["outcomes"]["any"]
    gain = metrics["headline"]["auroc_gain"]
    high = metrics["operating_points"]["high"]
    sepsis = metrics["outcomes"]["sepsis"]["calibration"]["model"]
    retained = [r["gain_retained"] for name, r in metrics["scenarios"]["results"].items() if name != "reference"]
    quoted = [
        f"{metrics['data']['patient_days']:,.0f} patient-days",
        f"AUROC {overall['model']['auroc']['value']:.3f} against {overall['logistic']['auroc']['value']:.3f} for the logistic",
        f"{overall['pews']['auroc']['value']:.3f} for PEWS and {overall['pathway']['auroc']['value']:.3f}",
        f"{gain['value']:.3f} (95% CI {gain['ci95'][0]:.3f} to {gain['ci95'][1]:.3f}",
        f"{high['alerts_per_100_children_per_day']:.1f} alerts per",
        f"PPV of {high['ppv']['value']:.1%} ({high['ppv_per_outcome']['sepsis']['value']:.1%} for sepsis)",
        f"calibration slope is {sepsis['slope']:.2f} and its intercept {sepsis['intercept']:.2f}",
        f"{min(retained) * 100:.0f}-{max(retained) * 100:.0f}% of that gain",
    ]
    flat = " ".join(readme.split())
    for text in quoted:
        assert text in flat, text
    # "... and its CI then includes 0": true of every scenario, false of the reference.
    assert "CI then includes 0" in flat
    results = metrics["scenarios"]["results"]
    assert results["reference"]["gain_ci95"][0] > 0
    assert all(r["gain_ci95"][0] <= 0 <= r["gain_ci95"][1] for name, r in results.items() if name != "reference")


def test_the_served_package_is_the_previous_model_with_per_outcome_figures(package: ModelPackage) -> None:
    previous = ModelPackage.open(FAMILY / "1.1.0")
    # Rebuilt by the same deterministic pipeline: same model, calibration and bands, so the same answers.
    for name in ("model.onnx", "calibration.json", "venn_abers.json", "risk_bands.json", "schema.json"):
        assert package.file(name).read_bytes() == previous.file(name).read_bytes(), name
    new, old = DeteriorationPredictor.load(package), DeteriorationPredictor.load(previous)
    assert new.predict(FEBRILE, AT).probability == old.predict(FEBRILE, AT).probability


def test_calibration_and_ppv_are_recorded_per_outcome(package: ModelPackage, metrics: dict[str, Any]) -> None:
    from clinpred.services.common.codec import encode_metrics

    card = package.file("MODEL_CARD.md").read_text()
    flat = encode_metrics(metrics)  # what GetModelInfo returns
    for outcome, entry in metrics["outcomes"].items():
        if not 0 < entry["positives"] < entry["rows"]:
            assert "calibration" not in entry, outcome
            continue
        for name in ("model", "logistic"):
            fit = entry["calibration"][name]
            assert flat[f"outcomes.{outcome}.calibration.{name}.slope"] == fit["slope"]
            assert flat[f"outcomes.{outcome}.calibration.{name}.intercept"] == fit["intercept"]
        if entry["positives"] >= 10:
            model = entry["calibration"]["model"]
            assert f"| {entry['positives']} | {model['slope']:.2f} | {model['intercept']:+.2f} |" in card, outcome
    # Against all outcomes together the recorded overall calibration is the per-outcome one of "any".
    assert metrics["outcomes"]["any"]["calibration"] == metrics["calibration"]
    # A probability of any deterioration overstates each single outcome that is rarer: negative intercept.
    sepsis = metrics["outcomes"]["sepsis"]
    assert sepsis["positives"] < metrics["outcomes"]["any"]["positives"]
    assert sepsis["calibration"]["model"]["intercept"] < 0
    for band in ("medium_or_higher", "high", "pathway"):
        point = metrics["operating_points"][band]
        per_outcome = point["ppv_per_outcome"]
        for outcome, ppv in per_outcome.items():
            assert ppv["n"] == point["ppv"]["n"]  # the same flagged scoring times
            assert ppv["value"] <= point["ppv"]["value"] + 1e-12, (band, outcome)  # a part of "any"
            assert flat[f"operating_points.{band}.ppv_per_outcome.{outcome}.value"] == ppv["value"]
    assert "PPV: sepsis" in card
