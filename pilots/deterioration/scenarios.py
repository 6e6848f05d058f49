"""How much of the model's gain over the best baseline is built into the simulator's assumptions.

Each scenario changes one assumption that favours the model (ASSUMPTIONS.md,
"Scenarios"), simulates a fresh cohort, trains the booster and the transparent
logistic baseline on the training children and compares them with Bedside
PEWS and the febrile-neutropenia pathway on the test children, exactly as the
package's own evaluation does (same split, features and bootstrap over
children). Calibration is left out: AUROC depends on ranks only.

    scenario_study(n_patients=1200, seed=0)  # about 3 minutes per scenario on 2 cores
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

import numpy as np

from clinpred.pilots.deterioration.evaluation import (
    PathwayLogistic,
    bootstrap_auc,
    bootstrap_counts,
    pathway_alert,
    percentile_interval,
    point_auc,
)
from clinpred.pilots.deterioration.simulator import SimulationConfig, simulate_cohort

SCENARIOS: Final[dict[str, dict[str, Any]]] = {
    "reference": {},
    "pews_items_drift_early": {"pews_items_drift_early": True},
    "measurement_does_not_rise_with_illness": {"measurement_rises_with_illness": False},
    "antipyretics_blunt_fever": {"antipyretic_fraction": 0.5},
}
SCENARIO_WORDS: Final = {
    "reference": "the simulator's defaults",
    "pews_items_drift_early": "PEWS items (blood pressure, capillary refill, consciousness) drift as early as temperature",
    "measurement_does_not_rise_with_illness": "families measure no more often when the child is unwell",
    "antipyretics_blunt_fever": "half of febrile readings taken after an antipyretic (fever lowered by 1.0 C)",
}


def evaluate_scenario(
    config: SimulationConfig, *, n_patients: int, seed: int, num_boost_round: int, replicates: int
) -> dict[str, Any]:
    from clinpred.pilots.deterioration.training import build_scoring_set, fit_booster, split_patients

    cohort = simulate_cohort(n_patients, seed=seed, config=config, progress=False)
    data = build_scoring_set(cohort.observations, cohort.patients, cohort.events, cohort.chemotherapy)
    split = split_patients(data.patient_ids, seed)
    train, test = split["train"], split["test"]
    booster = fit_booster(data.x[train], data.y[train], seed=seed, num_boost_round=num_boost_round, progress=False)
    logistic = PathwayLogistic.fit(data.x[train], data.y[train])
    y = data.y[test]
    scores = {
        "model": np.asarray(booster.predict(data.x[test]), dtype=np.float64),
        "pews": data.pews[test],
        "pathway": pathway_alert(data.x[test]).astype(np.float64),
        "logistic": logistic.probability(data.x[test]),
    }
    unique, patient = np.unique(data.patient_ids[test], return_inverse=True)
    boot = bootstrap_auc(y, scores, patient.astype(np.int64), bootstrap_counts(unique.size, replicates, seed))
    auroc = {name: point_auc(y, score)[0] for name, score in scores.items()}
    best = max(("pews", "pathway", "logistic"), key=lambda n: auroc[n])
    return {
        "auroc": auroc,
        "best_baseline": best,
        "gain": auroc["model"] - auroc[best],
        "gain_ci95": percentile_interval(boot["model"]["auroc"] - boot[best]["auroc"]),
        "test_children": int(unique.size),
        "test_positives": int(y.sum()),
    }


def scenario_study(
    *,
    n_patients: int = 1200,
    seed: int = 0,
    num_boost_round: int = 300,
    replicates: int = 1000,
    progress: bool = False,
) -> dict[str, Any]:
    """Every scenario's AUROCs and gain over its best baseline, and the share of the reference gain that survives."""
    from tqdm.auto import tqdm

    results: dict[str, Any] = {}
    for name, options in tqdm(SCENARIOS.items(), desc="simulator scenarios", unit="scenario", disable=not progress):
        config = replace(SimulationConfig(), **options)
        results[name] = evaluate_scenario(
            config, n_patients=n_patients, seed=seed, num_boost_round=num_boost_round, replicates=replicates
        )
        results[name]["description"] = SCENARIO_WORDS[name]
    reference_gain = results["reference"]["gain"]
    for result in results.values():
        result["gain_retained"] = result["gain"] / reference_gain if reference_gain > 0 else float("nan")
    return {
        "settings": {"patients": n_patients, "seed": seed, "num_boost_round": num_boost_round, "replicates": replicates},
        "results": results,
    }
