"""TreeSHAP contributions (XGBoost and LightGBM), the stump fast path, and reasons in plain words."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb

from clinpred.pilots.common.explanation import (
    LOG_ODDS,
    SOFTMAX_LOGIT,
    Contribution,
    StumpShap,
    TreeShapExplainer,
    raw_margin,
    top_reasons,
    treeshap_contributions,
)
from clinpred.pilots.common.schema import FeatureSpec


def _data(n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 5))
    score = x[:, 0] + 0.5 * x[:, 1] * x[:, 2]
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return x, y


def _xgb(n_classes: int, depth: int) -> xgb.XGBClassifier:
    x, y = _data(n_classes)
    return xgb.XGBClassifier(n_estimators=30, max_depth=depth, n_jobs=1, random_state=0).fit(x, y)


def _lgb(n_classes: int) -> lgb.LGBMClassifier:
    x, y = _data(n_classes)
    return lgb.LGBMClassifier(n_estimators=30, num_leaves=7, n_jobs=1, random_state=0, verbose=-1).fit(x, y)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_treeshap_is_additive_in_the_raw_margin(library: str, n_classes: int) -> None:
    model = _xgb(n_classes, depth=3) if library == "xgboost" else _lgb(n_classes)
    x, _ = _data(n_classes, seed=1)
    shap = treeshap_contributions(model, x)
    k = 1 if n_classes == 2 else n_classes
    assert shap.values.shape == (x.shape[0], k, x.shape[1])
    assert shap.base_values.shape == (x.shape[0], k)
    assert shap.output_space == (LOG_ODDS if k == 1 else SOFTMAX_LOGIT)
    assert np.abs(shap.margins - raw_margin(model, x)).max() < 1e-4
    # The margin really is the model's log-odds / logits.
    proba = model.predict_proba(x.astype(np.float32))
    if k == 1:
        assert np.allclose(1 / (1 + np.exp(-shap.margins[:, 0])), proba[:, 1], atol=1e-5)
    else:
        e = np.exp(shap.margins - shap.margins.max(axis=1, keepdims=True))
        assert np.allclose(e / e.sum(axis=1, keepdims=True), proba, atol=1e-5)


def test_treeshap_matches_shap_tree_explainer() -> None:
    import shap

    model = _xgb(2, depth=3)
    x, _ = _data(2, seed=2)
    ours = treeshap_contributions(model, x)
    theirs = shap.TreeExplainer(model.get_booster()).shap_values(x.astype(np.float32))
    assert np.abs(ours.values[:, 0, :] - theirs).max() < 1e-4


@pytest.mark.parametrize("n_classes", [2, 3])
def test_stump_fast_path_equals_the_booster(n_classes: int) -> None:
    model = _xgb(n_classes, depth=1)
    x, _ = _data(n_classes, seed=3)
    # Include exact split thresholds: ties decide which side a value goes.
    stumps = StumpShap.from_booster(model)
    assert stumps is not None
    ties = np.where(np.isfinite(stumps.thresholds[0].T), stumps.thresholds[0].T, 0.0)
    probe = np.vstack([x, ties])
    fast, reference = stumps(probe), treeshap_contributions(model, probe)
    assert np.abs(fast.values - reference.values).max() < 1e-5
    assert np.abs(fast.base_values - reference.base_values).max() < 1e-5


def test_deeper_trees_and_lightgbm_take_the_booster_path() -> None:
    assert StumpShap.from_booster(_xgb(2, depth=3)) is None
    assert StumpShap.from_booster(_lgb(2)) is None
    x, _ = _data(2)
    explainer = TreeShapExplainer(_xgb(2, depth=3), probe=x)
    assert explainer.fast is None
    assert "native booster" in explainer.method


def test_the_fast_path_is_refused_when_it_disagrees() -> None:
    x, _ = _data(2)
    model = _xgb(2, depth=1)
    assert TreeShapExplainer(model, probe=x).fast is not None
    # A negative tolerance cannot be met: the explainer must fall back, not trust it.
    refused = TreeShapExplainer(model, probe=x, tolerance=-1.0)
    assert refused.fast is None
    assert refused.fast_path_max_abs_diff is not None
    assert np.abs(refused(x).margins - raw_margin(model, x)).max() < 1e-4


def test_non_finite_inputs_go_to_the_booster() -> None:
    x, _ = _data(2)
    model = _xgb(2, depth=1)
    explainer = TreeShapExplainer(model, probe=x)
    row = x[:1].copy()
    row[0, 0] = np.nan
    assert np.abs(explainer(row).margins - raw_margin(model, row)).max() < 1e-4


SPECS = {
    "mean_concave_points": FeatureSpec("mean_concave_points", "dimensionless", "", 0.0, None, 0.0, 0.2, training_median=0.0335),
    "mean_radius": FeatureSpec("mean_radius", "pixels", "", 0.0, None, 6.98, 28.11, training_median=13.37),
    "worst_area": FeatureSpec("worst_area", "pixels^2", "", 0.0, None, 185.2, 4254.0, training_median=686.5),
    "mean_texture": FeatureSpec("mean_texture", "gray levels", "", 0.0, None, 9.71, 39.28),
}


def test_top_reasons_in_plain_words() -> None:
    contributions = [
        Contribution("mean_radius", 11.2, -0.4),
        Contribution("mean_concave_points", 0.147, 1.3),
        Contribution("worst_area", 1001.0, 0.2),
        Contribution("mean_texture", 50.0, 0.05),
    ]
    reasons = top_reasons(contributions, SPECS, "malignant")
    assert [r.feature for r in reasons] == ["mean_concave_points", "mean_radius", "worst_area"]
    assert reasons[0].text == ("mean concave points 0.147 (above the training median) raises the likelihood of malignant")
    assert reasons[1].text == "mean radius 11.2 pixels (below the training median) lowers the likelihood of malignant"
    assert reasons[2].text == ("worst area 1001.0 pixels^2 (above the training median) raises the likelihood of malignant")
    assert [r.direction for r in reasons] == ["raises", "lowers", "raises"]
    assert reasons[1].unit == "pixels" and reasons[1].shap_value == -0.4


def test_reasons_mention_values_outside_the_training_range_and_skip_zero_effects() -> None:
    contributions = [Contribution("mean_texture", 50.0, 0.3), Contribution("mean_radius", 14.0, 0.0)]
    reasons = top_reasons(contributions, SPECS, "malignant", k=3)
    assert len(reasons) == 1
    assert reasons[0].text == ("mean texture 50 gray levels [outside the training range] raises the likelihood of malignant")


def test_features_without_a_spec_still_get_a_reason() -> None:
    (reason,) = top_reasons([Contribution("petal_width", 2.3, 0.9)], {}, "virginica", k=1)
    assert reason.text == "petal width 2.3 raises the likelihood of virginica"
    assert reason.unit == ""
