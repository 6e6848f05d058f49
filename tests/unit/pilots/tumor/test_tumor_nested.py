"""Nested cross-validation against a logistic regression, and class-conditional (Mondrian) conformal sets."""

from __future__ import annotations

import numpy as np
import pytest

from clinpred.pilots.tumor.data import TumorDataset
from clinpred.pilots.tumor.nested_evaluation import (
    CLINICAL_PREVALENCES,
    METRICS,
    mondrian_mask,
    mondrian_quantiles,
    nested_comparison,
    net_benefit,
    operating_point,
    operating_point_at_prevalence,
)


def _scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A rare, hard positive class: probabilities from a logistic model with its true labels."""
    z = rng.normal(size=n)
    p1 = 1.0 / (1.0 + np.exp(-(2.0 * z - 2.0)))
    y = (rng.random(n) < p1).astype(np.int64)
    return np.column_stack([1.0 - p1, p1]), y


@pytest.mark.parametrize("coverage", [0.9, 0.95])
def test_mondrian_sets_bound_each_class_separately(coverage: float) -> None:
    rng = np.random.default_rng(7)
    p_cal, y_cal = _scores(rng, 4000)
    p_test, y_test = _scores(rng, 20000)
    mask = mondrian_mask(p_test, mondrian_quantiles(p_cal, y_cal, coverage))
    covered = mask[np.arange(y_test.size), y_test]
    for k in (0, 1):
        n_k = int(np.sum(y_test == k))
        # Binomial SE of a coverage near the target, 3 SE of slack; the rare class has ~3,000 cases.
        slack = 3 * np.sqrt(coverage * (1 - coverage) / n_k)
        assert covered[y_test == k].mean() >= coverage - slack
    # A single marginal quantile would let the rare class fall short: check that this data shows it,
    # so the test above is about class-conditional coverage and not a trivially easy case.
    marginal_q = np.quantile(1.0 - p_cal[np.arange(y_cal.size), y_cal], coverage)
    marginal = mondrian_mask(p_test, np.array([marginal_q, marginal_q]))[np.arange(y_test.size), y_test]
    assert marginal[y_test == 1].mean() < coverage - 0.02


def test_mondrian_sets_are_never_empty() -> None:
    p = np.array([[0.5, 0.5], [0.99, 0.01], [0.2, 0.8]])
    mask = mondrian_mask(p, np.array([0.0, 0.0]))
    assert mask.sum(axis=1).tolist() == [1, 1, 1]
    assert mondrian_mask(p, np.array([1.0, 1.0])).all()


def test_nested_comparison_on_wdbc_uses_the_same_folds_for_both_models(wdbc: TumorDataset) -> None:
    result = nested_comparison(
        wdbc.x.astype(np.float32),
        wdbc.y,
        {"n_estimators": 60, "learning_rate": 0.3, "max_depth": 1, "tree_method": "hist"},
        seeds=(0, 1),
        n_splits=3,
        inner_splits=3,
        cs=(0.1, 1.0),
    )
    assert result["tree_counts"] == [10, 20, 40, 60]
    stumps, lr = result["models"]["boosted_stumps"], result["models"]["logistic_regression"]
    for model in (stumps, lr):
        assert all(len(model["per_fold"][key]) == 6 for key in METRICS)
        assert sum(model["chosen"].values()) == 6 and 0 <= model["calibrated_folds"] <= 6
        # WDBC is nearly linearly separable: both models rank almost perfectly on held-out thirds.
        assert model["metrics"]["auroc"]["mean"] > 0.97 and model["metrics"]["accuracy"]["mean"] > 0.93
        assert model["metrics"]["auroc"]["sd"] > 0.0
    assert set(lr["chosen"]) <= {"0.1", "1"} and set(stumps["chosen"]) <= {"10", "20", "40", "60"}
    difference = np.subtract(stumps["per_fold"]["log_loss"], lr["per_fold"]["log_loss"])
    assert result["log_loss_difference_stumps_minus_lr"]["mean"] == pytest.approx(difference.mean())
    for model in (stumps, lr):
        prevalence = model["clinical_prevalence"]
        assert list(prevalence) == [f"{p:g}" for p in CLINICAL_PREVALENCES]
        for p, row in prevalence.items():
            training = float(np.mean(wdbc.y))
            assert row["log_odds_shift"] == pytest.approx(np.log(float(p) / (1 - float(p))) - np.log(training / (1 - training)))
            assert row["recalibrated"]["referred_share"]["mean"] <= row["not_recalibrated"]["referred_share"]["mean"]
        row = model["mondrian_conformal"]["0.99"]
        assert row["malignant_miss_rate"] == pytest.approx(1 - row["coverage_malignant"])
        # 2 x 212 malignant held-out cases at a 99% target: a miss rate above 3% would be far outside it.
        assert row["malignant_miss_rate"] <= 0.03
        assert row["two_label_share"] >= model["mondrian_conformal"]["0.95"]["two_label_share"]


def test_net_benefit_and_operating_point_count_referrals() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    p1 = np.array([0.9, 0.3, 0.25, 0.1, 0.05, 0.01, 0.0, 0.4, 0.02, 0.01])
    # At t = 0.2: referred 0.9, 0.3, 0.25, 0.4 -> 2 true, 2 false positives out of 10; odds 0.25.
    assert net_benefit(y, p1, 0.2) == pytest.approx(2 / 10 - 2 / 10 * 0.25)
    assert operating_point(y, p1, 0.2) == pytest.approx(
        {"sensitivity": 2 / 3, "specificity": 5 / 7, "ppv": 0.5, "referred_share": 0.4}
    )
    # Referring everyone: prevalence - (1 - prevalence) * odds.
    assert net_benefit(y, np.ones(10), 0.1) == pytest.approx(0.3 - 0.7 / 9)


def test_at_the_datas_own_prevalence_the_operating_point_is_the_empirical_one() -> None:
    rng = np.random.default_rng(3)
    p, y = _scores(rng, 2000)
    empirical = operating_point(y, p[:, 1], 0.2)
    at_own = operating_point_at_prevalence(y, p[:, 1], 0.2, float(np.mean(y)))
    for key in ("sensitivity", "specificity", "ppv", "referred_share"):
        assert at_own[key] == pytest.approx(empirical[key], abs=1e-12), key
    assert at_own["net_benefit"] == pytest.approx(net_benefit(y, p[:, 1], 0.2), abs=1e-12)
    # A rarer positive class: same sensitivity and specificity, lower PPV.
    rare = operating_point_at_prevalence(y, p[:, 1], 0.2, float(np.mean(y)) / 4)
    assert (rare["sensitivity"], rare["specificity"]) == (at_own["sensitivity"], at_own["specificity"])
    assert rare["ppv"] < at_own["ppv"]
