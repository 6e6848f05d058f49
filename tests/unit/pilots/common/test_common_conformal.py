"""Split-conformal sets: quantile, statements, and coverage measured on data they were not fitted on."""

from __future__ import annotations

import numpy as np
import pytest

from clinpred.pilots.common.conformal import (
    SplitConformal,
    class_coverage,
    conformal_quantile,
    cross_conformal_coverage,
    empirical_coverage,
    fit_conformal,
    fit_mondrian_conformal,
    set_statement,
)

CLASSES = ("a", "b", "c")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _draw(n: int, seed: int, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Three hard-to-separate classes; the model reports softmax(logits / temperature)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.2, (n, 3))
    truth = _softmax(logits)
    y = (rng.random(n)[:, None] > np.cumsum(truth, axis=1)).sum(axis=1)
    return _softmax(logits / temperature), y


def test_quantile_uses_the_finite_sample_rank() -> None:
    scores = np.arange(1, 20) / 20  # 19 scores
    # ceil((19 + 1) * 0.9) = 18 -> the 18th smallest.
    assert conformal_quantile(scores, 0.9) == pytest.approx(18 / 20)
    # Too few scores for 99%: every class goes into every set.
    assert conformal_quantile(scores, 0.99) == 1.0


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_coverage_holds_on_held_out_data(coverage: float) -> None:
    # The guarantee is on average over calibration sets: average 20 of them, each scored on fresh cases.
    p_new, y_new = _draw(20_000, seed=11)
    achieved = []
    for seed in range(20):
        p_fit, y_fit = _draw(1_000, seed=100 + seed)
        conformal = fit_conformal(p_fit, y_fit, CLASSES, coverage)
        achieved.append(empirical_coverage(conformal.mask(p_new), y_new))
    assert coverage - 0.005 <= np.mean(achieved) <= coverage + 0.02
    sizes = conformal.mask(p_new).sum(axis=1)
    assert sizes.min() >= 1
    assert sizes.max() > 1  # hard data must yield some multi-label sets


def test_cross_conformal_check_with_recalibration_reaches_the_target() -> None:
    p, y = _draw(3_000, seed=12, temperature=0.4)  # badly overconfident
    folds = np.arange(y.size) % 10
    check = cross_conformal_coverage(p, y, folds, CLASSES, 0.9, recalibrate=True)
    assert check.n == y.size
    assert 0.88 <= check.coverage <= 0.93
    assert 1.0 < check.mean_set_size < 3.0
    assert check.to_json()["heldout_coverage"] == check.coverage


def test_sets_always_hold_the_most_probable_class() -> None:
    conformal = SplitConformal(CLASSES, 0.95, q_hat=0.01, n_calibration=100)
    sets = conformal.sets(np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]]))
    assert [s.labels for s in sets] == [("b",), ("a",)]


def test_sets_follow_the_threshold_and_class_order() -> None:
    conformal = SplitConformal(CLASSES, 0.95, q_hat=0.75, n_calibration=100)
    (s,) = conformal.sets(np.array([[0.3, 0.2, 0.5]]))
    # 1 - 0.3 = 0.7 <= 0.75 (in); 1 - 0.2 = 0.8 (out); 0.5 is the top class.
    assert s.labels == ("a", "c")
    assert s.coverage == 0.95
    assert s.statement == "with 95% coverage the true class is in {a, c}"


def test_statement_in_plain_words() -> None:
    assert set_statement(("malignant",), 0.95) == "with 95% coverage the true class is in {malignant}"
    assert set_statement(("benign", "malignant"), 0.9) == "with 90% coverage the true class is in {benign, malignant}"


def test_conformal_survives_a_json_round_trip() -> None:
    p, y = _draw(500, seed=13)
    conformal = fit_conformal(p, y, CLASSES, 0.9)
    restored = SplitConformal.from_json(conformal.to_json())
    assert restored == conformal
    assert np.array_equal(restored.mask(p), conformal.mask(p))


def test_fit_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        fit_conformal(np.full((4, 2), 0.5), np.zeros(4, dtype=int), CLASSES)


def test_mondrian_sets_bound_each_classs_miss_rate_where_the_marginal_set_does_not() -> None:
    # A rare class whose scores are worse than the common class's: the marginal quantile is set by the
    # common class and misses the rare one more often than the level allows; per-class quantiles do not.
    rng = np.random.default_rng(3)
    n_common, n_rare = 1800, 200
    p_rare = np.concatenate([rng.beta(2, 8, n_common), rng.beta(3, 3, n_rare)])
    p = np.column_stack([1 - p_rare, p_rare])
    y = np.concatenate([np.zeros(n_common, dtype=np.int64), np.ones(n_rare, dtype=np.int64)])
    half = rng.permutation(y.size) < y.size // 2
    marginal = fit_conformal(p[half], y[half], ("common", "rare"), 0.9)
    mondrian = fit_mondrian_conformal(p[half], y[half], ("common", "rare"), 0.9)
    assert mondrian.q_hat == marginal.q_hat and mondrian.class_q_hat is not None
    rare = ~half & (y == 1)
    assert empirical_coverage(marginal.mask(p[rare]), y[rare]) < 0.85
    # 0.9 minus two binomial standard errors on ~100 held-out rare cases (SE 0.03).
    assert empirical_coverage(mondrian.mask(p[rare]), y[rare]) >= 0.84
    assert class_coverage(mondrian.mask(p[~half]), y[~half], ("common", "rare"))["common"] >= 0.86
    restored = SplitConformal.from_json(mondrian.to_json())
    assert restored == mondrian and "class_q_hat" not in marginal.to_json()
    with pytest.raises(ValueError, match="one threshold per class"):
        SplitConformal(("a", "b"), 0.9, 0.5, 10, class_q_hat=(0.5,))
