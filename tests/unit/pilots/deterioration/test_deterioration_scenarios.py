"""The simulator-assumption study runs end to end on a small cohort and reports each scenario's gain."""

from __future__ import annotations

import math
from typing import Any

import pytest

from clinpred.pilots.deterioration.scenarios import SCENARIO_WORDS, SCENARIOS, scenario_study

BASELINES = ("pews", "pathway", "logistic")
# Small enough to run in seconds; the package's study uses 1200 children, 300 trees, 1000 replicates.
SETTINGS = {"patients": 150, "seed": 3, "num_boost_round": 20, "replicates": 50}


@pytest.fixture(scope="module")
def study() -> dict[str, Any]:
    return scenario_study(
        n_patients=SETTINGS["patients"],
        seed=SETTINGS["seed"],
        num_boost_round=SETTINGS["num_boost_round"],
        replicates=SETTINGS["replicates"],
    )


def test_every_scenario_reports_its_gain_over_its_own_best_baseline(study: dict[str, Any]) -> None:
    assert study["settings"] == SETTINGS
    results = study["results"]
    assert list(results) == list(SCENARIOS)
    for name, result in results.items():
        assert result["description"] == SCENARIO_WORDS[name]
        auroc = result["auroc"]
        assert set(auroc) == {"model", *BASELINES}
        assert all(0.0 <= value <= 1.0 for value in auroc.values()), name
        assert result["best_baseline"] == max(BASELINES, key=lambda b: auroc[b])
        assert result["gain"] == pytest.approx(auroc["model"] - auroc[result["best_baseline"]], abs=1e-12)
        low, high = result["gain_ci95"]
        assert -1.0 <= low <= high <= 1.0, name
        assert result["test_positives"] > 0 and result["test_children"] > 0


def test_the_share_of_the_reference_gain_is_relative_to_the_reference_scenario(study: dict[str, Any]) -> None:
    results = study["results"]
    reference = results["reference"]["gain"]
    for name, result in results.items():
        if reference > 0:
            assert result["gain_retained"] == pytest.approx(result["gain"] / reference, rel=1e-9), name
        else:
            assert math.isnan(result["gain_retained"]), name
    if reference > 0:
        assert results["reference"]["gain_retained"] == pytest.approx(1.0)


def test_each_scenario_simulates_its_own_cohort(study: dict[str, Any]) -> None:
    # Same seed and size: only the scenario's assumption differs, so identical figures would mean it never
    # reached the simulator.
    results = study["results"]
    reference = results["reference"]
    for name in SCENARIOS:
        if name != "reference":
            assert (results[name]["auroc"], results[name]["test_positives"]) != (
                reference["auroc"],
                reference["test_positives"],
            ), name
