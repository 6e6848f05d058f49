"""Explanations of a whole batch in one vectorised step equal the case-by-case ones, for both tumour packages.

The case-by-case reference is computed here from each package's published form: the sum over the
booster's stumps of their leaf differences (XGBoost), and coef * (z - mean z) (logistic regression),
one case at a time, then `build_explanation` row by row. The batch path uses per-feature lookup
tables (XGBoost) and one array expression (logistic) for all 569 WDBC cases at once; the two differ
only in the order float64 sums are taken, hence 1e-9 (the values are O(1), sums of at most 119 terms).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from clinpred.pilots.common.explanation import LOG_ODDS, ExplanationDetail, TreeShap, build_explanation
from clinpred.pilots.common.model_package import latest_package
from clinpred.pilots.tumor.classifier import TumorClassifier
from tests.conftest import MODELS

TOLERANCE = 1e-9


@pytest.fixture(scope="module", params=["wdbc-xgboost", "wdbc-logistic"])
def classifier(request: pytest.FixtureRequest) -> TumorClassifier:
    return TumorClassifier.load(latest_package(MODELS, "tumor", request.param))


def one_case_shap(classifier: TumorClassifier, row: np.ndarray) -> TreeShap:
    linear, stumps = classifier.linear_model, classifier.stump_shap
    if linear is not None:
        values = linear.coef[0] * ((row - linear.mean) / linear.scale - linear.z_mean)
        base = float(linear.intercept[0] + linear.coef[0] @ linear.z_mean)
    else:
        assert stumps is not None, "the xgboost reference package is an ensemble of stumps"
        goes_left = row.astype(np.float32)[:, None] < stumps.thresholds[0]
        values = stumps.offsets[0] + (goes_left * stumps.deltas[0]).sum(axis=-1)
        base = float(stumps.base[0])
    return TreeShap(values=values[None, None, :], base_values=np.array([[base]]), output_space=LOG_ODDS)


def test_a_batch_explains_every_case_as_one_case_at_a_time(classifier: TumorClassifier) -> None:
    rows = load_breast_cancer().data
    predictions = classifier.predict(rows)
    batch = classifier.explain(rows, predictions)
    names, specs = classifier.schema.feature_names, {f.name: f for f in classifier.schema.features}
    worst = 0.0
    for i, explained in enumerate(batch):
        alone = build_explanation(one_case_shap(classifier, rows[i]), 0, 0, rows[i], names, specs, "malignant")
        assert explained is not None
        worst = max(worst, float(np.max(np.abs(np.subtract(explained.shap_values, alone.shap_values)))))
        assert explained.margin == pytest.approx(alone.margin, abs=TOLERANCE)
        assert explained.base_value == pytest.approx(alone.base_value, abs=TOLERANCE)
        assert [c.feature for c in explained.contributions] == list(names)
        assert explained.feature_values == tuple(rows[i].tolist())
        assert [(r.feature, r.direction, r.text) for r in explained.top_reasons] == [
            (r.feature, r.direction, r.text) for r in alone.top_reasons
        ]
    assert worst <= TOLERANCE


def test_the_packed_vector_is_the_contributions_in_feature_order(classifier: TumorClassifier) -> None:
    rows = load_breast_cancer().data[:20]
    for explained in classifier.explain(rows, classifier.predict(rows)):
        assert explained is not None
        assert explained.shap_values == tuple(c.shap_value for c in explained.contributions)
        assert explained.base_value + sum(explained.shap_values) == pytest.approx(explained.margin, abs=1e-12)


def test_detail_levels_leave_out_what_was_not_asked_for(classifier: TumorClassifier) -> None:
    rows = load_breast_cancer().data[:6]
    predictions = classifier.predict(rows)
    full = classifier.explain(rows, predictions)
    levels = [ExplanationDetail.FULL, ExplanationDetail.TOP_REASONS, ExplanationDetail.NONE] * 2
    mixed = classifier.explain(rows, predictions, levels)
    for whole, part, level in zip(full, mixed, levels, strict=True):
        assert whole is not None
        if level is ExplanationDetail.NONE:
            assert part is None
        elif level is ExplanationDetail.TOP_REASONS:
            assert part is not None
            assert part.contributions == part.shap_values == part.feature_values == ()
            assert part.top_reasons == whole.top_reasons
            assert part.margin == whole.margin
        else:
            assert part == whole
    assert classifier.explain(rows, predictions, [ExplanationDetail.NONE] * 6) == [None] * 6
