"""Training end to end on a freshly simulated cohort, read back from files as a hospital would provide them.

Checks on held-out patients: the model beats Bedside PEWS (computed from the
same observations at the same scoring times) by at least 0.05 AUROC, the
baselines are scored on the same children, the bootstrap CIs hold their point
estimates, the bands keep their alert budget, the Venn-Abers intervals agree
with held-out event rates, and the (deprecated) conformal sets reach their
nominal coverage within 2 points.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.deterioration.cohort import read_cohort, write_cohort
from clinpred.pilots.deterioration.features import ObservationArrays
from clinpred.pilots.deterioration.simulator import simulate_cohort
from clinpred.pilots.deterioration.training import (
    TrainingReport,
    scoring_points,
    split_patients,
    train_deterioration,
)

EXPECTED_FILES = {
    "model.onnx",
    "booster.txt",
    "calibration.json",
    "conformal.json",
    "risk_bands.json",
    "schema.json",
    "metrics.json",
    "MODEL_CARD.md",
    "shap_summary.png",
    "calibration.png",
    "decision_curve.png",
    "venn_abers.json",
    "transparency.json",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> TrainingReport:
    folder = tmp_path_factory.mktemp("cohort")
    write_cohort(simulate_cohort(1000, seed=11, progress=False), folder)
    cohort = read_cohort(folder)
    return train_deterioration(
        cohort.observations,
        cohort.patients,
        cohort.events,
        chemotherapy=cohort.chemotherapy,
        models_root=tmp_path_factory.mktemp("models"),
        seed=11,
        progress=False,
        num_boost_round=200,
        data_description="simulated: 1000 patients, simulator seed 11",
    )


def test_model_beats_pews_on_held_out_patients(report: TrainingReport) -> None:
    test: dict[str, Any] = report.metrics["test"]
    assert test["positives"] >= 100
    assert test["auroc"] - test["pews_auroc"] >= 0.05
    assert test["auroc_gain_ci95"][0] > 0
    assert test["auprc"] > test["pews_auprc"]
    assert test["brier"] < test["observed_rate"]  # better than always answering 0


def test_conformal_coverage_within_two_points(report: TrainingReport) -> None:
    coverage = report.metrics["conformal_test"]
    assert abs(coverage["coverage"] - coverage["target"]) <= 0.02


def test_package_is_complete_and_verified(report: TrainingReport) -> None:
    package = ModelPackage.open(report.package.path)
    assert set(package.manifest["files"]) == EXPECTED_FILES
    assert package.identity.version == "1.0.0"
    assert report.metrics["onnx_parity_max_abs_diff"] <= 1e-5
    card = package.file("MODEL_CARD.md").read_text()
    assert "Bedside PEWS" in card and "SIMULATED" in card
    assert package.file("shap_summary.png").read_bytes()[:4] == b"\x89PNG"


def test_baselines_are_scored_on_the_same_held_out_children(report: TrainingReport) -> None:
    metrics = report.metrics
    any_outcome = metrics["outcomes"]["any"]
    assert any_outcome["rows"] == metrics["test"]["rows"] and any_outcome["positives"] == metrics["test"]["positives"]
    assert metrics["headline"]["bootstrap"]["children"] == metrics["data"]["split_patients"]["test"]
    # The same rows as the original PEWS figure, computed two ways.
    assert any_outcome["pews"]["auroc"]["value"] == pytest.approx(metrics["test"]["pews_auroc"], abs=1e-12)
    assert any_outcome["model"]["auroc"]["value"] == pytest.approx(metrics["test"]["auroc"], abs=1e-12)
    for name in ("pews", "pathway", "logistic"):
        assert metrics["baselines"][name]["auroc"] == any_outcome[name]["auroc"]["value"]
    # The transparent baseline uses the pathway's signals: it beats PEWS alone.
    assert any_outcome["logistic"]["auroc"]["value"] > any_outcome["pews"]["auroc"]["value"]
    best = metrics["headline"]["best_baseline"]
    assert any_outcome[best]["auroc"]["value"] == max(any_outcome[n]["auroc"]["value"] for n in ("pews", "pathway", "logistic"))


def test_bootstrap_intervals_contain_their_point_estimates(report: TrainingReport) -> None:
    metrics = report.metrics
    estimates = [metrics["headline"]["auroc_gain"], metrics["headline"]["auprc_gain"]]
    for outcome in metrics["outcomes"].values():
        for name in ("model", "pews", "logistic"):
            estimates += [outcome[name]["auroc"], outcome[name]["auprc"]]
    for estimate in estimates:
        low, high = estimate["ci95"]
        assert low <= estimate["value"] <= high
        assert high - low > 0  # a real spread over replicates
    assert metrics["headline"]["bootstrap"]["replicates"] >= 1000


def test_bands_keep_the_alert_budget_on_held_out_children(report: TrainingReport) -> None:
    metrics = report.metrics
    budget = metrics["risk_bands"]["alert_budget_per_100_children_per_day"]
    points = metrics["operating_points"]
    assert points["high"]["alerts_per_100_children_per_day"] <= budget["high"]
    assert points["medium_or_higher"]["alerts_per_100_children_per_day"] <= budget["medium"]
    # The budget is used, not avoided by flagging nobody.
    assert points["high"]["alerts"] > 0 and points["high"]["ppv"]["value"] > metrics["test"]["observed_rate"]
    for outcome in ("sepsis", "picu_transfer", "unplanned_admission"):
        assert points["medium_or_higher"]["per_event_sensitivity"][outcome]["value"] >= (
            points["high"]["per_event_sensitivity"][outcome]["value"]
        )


def test_venn_abers_intervals_agree_with_held_out_event_rates(report: TrainingReport) -> None:
    check = report.metrics["venn_abers_test"]
    # 10 bins, each a 95 % Wilson CI against the interval: 7 of 10 allows for chance misses (about 0.5
    # expected) and for calibration children being 200 of them, not the thousands of the simulation.
    assert check["coverage"] >= 0.7
    assert check["mean_width"] < 0.05
    conformal = report.metrics["conformal_test"]
    assert conformal["both_rate"] > 0.3  # why the set was replaced: mostly both labels


def test_transparency_document_answers_every_hti1_group(report: TrainingReport) -> None:
    package = ModelPackage.open(report.package.path)
    document = package.read_json("transparency.json")
    attributes = document["attributes"]
    assert len(attributes) == 31  # REFERENCES.md: HTI-1 lists 31 source attributes
    for key in (
        "intended_use", "intended_patient_population", "cautioned_out_of_scope_uses", "demographic_input_features",
        "fairness_approach", "external_validation_process", "validity_same_source", "fairness_same_source",
        "update_and_validation_schedule",
    ):
        assert attributes[key], key
    assert attributes["validity_same_source"]["auroc"] == report.metrics["outcomes"]["any"]["model"]["auroc"]


def test_split_is_by_patient() -> None:
    ids = np.array(["a", "a", "b", "c", "c", "d", "e", "f", "g", "h"])
    split = split_patients(ids, seed=1)
    for mask in split.values():
        assert not set(ids[mask]) & set(ids[~mask])
    assert sum(int(m.sum()) for m in split.values()) == ids.size


def test_scoring_points_labels_and_exclusions() -> None:
    # One patient, observations every 6 h from hour 0 to 48, an admission at hour 50, follow-up to hour 100.
    hours = np.arange(0.0, 49.0, 6.0)
    arrays = ObservationArrays(np.zeros(hours.size, np.int64), hours, {})
    patient, times, labels = scoring_points(
        arrays, np.array([0]), np.array([50.0]), np.array([100.0]), horizon_hours=24, interval_hours=6
    )
    assert (patient == 0).all()
    # Hour 54 is after the admission with no newer home observation: in hospital, not scored.
    assert times.tolist() == [0, 6, 12, 18, 24, 30, 36, 42, 48]
    assert labels.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]  # event at 50 h is within 24 h of hours 30-48
