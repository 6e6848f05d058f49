"""Answers for a clinic with another share of malignant tumours: the Bayes prior shift of the log-odds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clinpred.pilots.common.errors import ModelPackageError
from clinpred.pilots.tumor.classifier import TumorClassifier
from clinpred.pilots.tumor.data import TumorDataset
from clinpred.pilots.tumor.encrypted import encrypted_tumor_model
from clinpred.pilots.tumor.prevalence import PriorShift


def test_the_shift_is_bayes_rule_on_the_odds() -> None:
    shift = PriorShift(training_prevalence=0.37, clinical_prevalence=0.05)
    assert shift.log_odds == pytest.approx(math.log(0.05 / 0.95) - math.log(0.37 / 0.63), rel=1e-12)
    p = np.array([[0.5, 0.5], [0.9, 0.1], [0.01, 0.99]])
    shifted = shift.apply(p)
    # Posterior odds = likelihood ratio x prior odds: the odds ratio between clinic and training is constant.
    odds = shifted[:, 1] / shifted[:, 0]
    np.testing.assert_allclose(odds / (p[:, 1] / p[:, 0]), (0.05 / 0.95) / (0.37 / 0.63), rtol=1e-12)
    np.testing.assert_allclose(shifted.sum(axis=1), 1.0, rtol=1e-12)
    # At p = 0.5 the answer is the clinic's prevalence divided as Bayes says, 0.05*0.63 / (0.05*0.63 + 0.95*0.37).
    assert shifted[0, 1] == pytest.approx(0.05 * 0.63 / (0.05 * 0.63 + 0.95 * 0.37), rel=1e-12)
    assert np.array_equal(PriorShift(0.37, 0.37).apply(p), p)
    with pytest.raises(ValueError, match="strictly between"):
        PriorShift(0.37, 1.0)


def test_the_reference_states_its_training_prevalence(reference: TumorClassifier) -> None:
    shift = reference.info.prior_shift
    assert shift is not None and shift.training_prevalence == shift.clinical_prevalence == pytest.approx(212 / 569)


def test_a_clinic_prevalence_shifts_probabilities_but_keeps_the_sets(reference: TumorClassifier, wdbc: TumorDataset) -> None:
    clinic = reference.at_prevalence(0.05)
    assert clinic.info.prior_shift == PriorShift(212 / 569, 0.05)
    assert reference.at_prevalence(None) is reference and reference.prior_shift == PriorShift(212 / 569, 212 / 569)
    plain, shifted = reference.predict(wdbc.x), clinic.predict(wdbc.x)
    p = np.array([a.probabilities["malignant"] for a in plain])
    q = np.array([a.probabilities["malignant"] for a in shifted])
    expected = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + clinic.info.prior_shift.log_odds)))  # type: ignore[union-attr]
    np.testing.assert_allclose(q, expected, rtol=1e-9)
    assert np.all(q <= p + 1e-15)
    for before, after in zip(plain, shifted, strict=True):
        assert after.label in after.confidence.labels
        assert set(before.confidence.labels) <= set(after.confidence.labels)
    # The encrypted client finishes with the same published shift.
    assert encrypted_tumor_model(clinic).prior_shift == clinic.prior_shift


def test_a_model_without_recorded_class_counts_refuses_a_prevalence(reference: TumorClassifier) -> None:
    no_counts = TumorClassifier(
        reference.package, reference.schema, reference._session, reference._booster, reference.calibrator,
        reference.conformal, {k: v for k, v in reference.metrics.items() if k != "details"},
    )
    assert no_counts.prior_shift is None and no_counts.info.prior_shift is None
    with pytest.raises(ModelPackageError, match="clinical prevalence"):
        no_counts.at_prevalence(0.1)
