"""The shipped breast model: calibrated to the registry, smooth and monotone, valid only where its figures hold."""

from __future__ import annotations

import numpy as np
import pytest

from clinpred.pilots.common.errors import FailedPrecondition, ModelPackageError
from clinpred.pilots.common.model_package import latest_package
from clinpred.pilots.genomics.absolute_risk import (
    RiskParameters,
    absolute_risk,
    assess_score,
    check_valid,
    cumulative_baseline_hazard,
    gompertz_mortality,
    population_average_risk,
    risk_interval,
)
from clinpred.pilots.genomics.assessment import PatientFactors
from clinpred.pilots.genomics.registry import BREAST, family_history_mix
from clinpred.pilots.genomics.risk import GenomicRiskPredictor
from tests.conftest import MODELS

AGES = np.arange(40.0, 71.0)


@pytest.fixture(scope="module")
def predictor() -> GenomicRiskPredictor:
    return GenomicRiskPredictor.load(latest_package(MODELS, "genomics", "breast-pgs000004"))


@pytest.fixture(scope="module")
def parameters(predictor: GenomicRiskPredictor) -> RiskParameters:
    assert predictor.parameters is not None, "the newest breast package is the multiplicative model"
    return predictor.parameters


def test_population_average_equals_the_registry_at_every_age_40_to_70(parameters: RiskParameters) -> None:
    for age in AGES:
        registry = float(np.interp(age, BREAST.registry_ages, BREAST.registry_risks))
        fitted = population_average_risk(parameters, float(age))
        assert fitted == pytest.approx(registry, rel=0.05), age
    # the registry's own ages, as published (range midpoints): 1.50%, 2.39%, 3.495%, 3.915%
    assert [round(population_average_risk(parameters, a), 3) for a in (40.0, 50.0, 60.0, 70.0)] == pytest.approx(
        [0.015, 0.024, 0.035, 0.039], abs=0.0015)


def test_competing_mortality_reproduces_the_death_table(parameters: RiskParameters) -> None:
    # 10-year death probability from the yearly hazards, against NCI PDQ Table 4 (the bands the horizon reaches)
    knots = np.asarray(parameters.ages)
    for band_age, per_1000 in zip(BREAST.mortality_band_ages[:-1], BREAST.mortality_per_1000[:-1], strict=True):
        hazards = np.exp(np.interp(band_age + np.arange(10) + 0.5, knots, np.log(parameters.competing_mortality)))
        assert 1000 * -np.expm1(-hazards.sum()) == pytest.approx(per_1000, rel=0.05), band_age
    fitted = gompertz_mortality(np.array([42.0, 52.0]), np.array([0.021, 0.051]), np.array([42.0, 52.0]))
    assert fitted[1] > fitted[0] > 0


def test_risk_is_smooth_in_the_score_at_every_age_and_family_history(parameters: RiskParameters) -> None:
    # Between neighbouring 0.05-SD cells the risk rises by 0.5-1.5x what the model's own OR per SD implies.
    z = np.round(np.arange(-3.0, 3.0001, 0.05), 2)
    implied = parameters.effective_log_hr_per_sd * 0.05
    for relatives in range(4):
        for age in AGES:
            risk = absolute_risk(parameters, z, float(age), relatives)
            steps = np.log(risk[1:] / risk[:-1]) / implied
            assert steps.min() >= 0.5 and steps.max() <= 1.5, (relatives, age)


def test_risk_rises_year_by_year_no_faster_than_the_registry_curve(parameters: RiskParameters) -> None:
    registry = np.log(np.interp(AGES[1:], BREAST.registry_ages, BREAST.registry_risks)
                      / np.interp(AGES[:-1], BREAST.registry_ages, BREAST.registry_risks))
    for z in np.arange(-2.0, 2.0001, 0.5):
        for relatives in range(4):
            risk = np.array([float(absolute_risk(parameters, z, float(a), relatives)) for a in AGES])
            yearly = np.log(risk[1:] / risk[:-1])
            assert yearly.min() >= 0.0, (z, relatives)  # monotone non-decreasing within 40-70
            assert yearly.max() <= 1.5 * registry.max(), (z, relatives)


def test_affected_relatives_raise_risk_in_the_published_order(parameters: RiskParameters) -> None:
    risks = [float(absolute_risk(parameters, 0.5, 50.0, r)) for r in range(5)]
    assert risks[0] < risks[1] < risks[2] < risks[3] == risks[4]  # "three or more" is one class
    # risk ratios follow the relative risks, a little less than proportionally (competing risks, saturation)
    for r, rr in enumerate(BREAST.family_relative_risks, start=1):
        assert 0.9 * rr < risks[r] / risks[0] <= rr
    # the old yes/no is one relative
    assert PatientFactors("", 50, "female", {"breast": True}).relatives("breast") == 1
    assert PatientFactors("", 50, "female", {"breast": True}, {"breast": 2}).relatives("breast") == 2
    assert PatientFactors("", 50, "female", {"breast": False}).relatives("breast") == 0


def test_interval_holds_the_point_and_widens_with_unmeasured_variance(parameters: RiskParameters) -> None:
    for z, age, relatives in ((-2.0, 42.0, 0), (0.0, 55.0, 1), (2.5, 68.0, 3)):
        point = float(absolute_risk(parameters, z, age, relatives))
        narrow = risk_interval(parameters, z, age, relatives, 1 - parameters.matched_variance_fraction)
        wide = risk_interval(parameters, z, age, relatives, 0.5)
        assert narrow[0] < point < narrow[1]
        assert wide[0] < narrow[0] and wide[1] > narrow[1]
        # fixed seed: the server and a client draw the same interval
        assert risk_interval(parameters, z, age, relatives, 0.5) == wide
    # the published CIs alone give a real spread at a high score with three relatives (RR 3.90, 99% CI 2.03-7.49)
    low, high = risk_interval(parameters, 2.5, 68.0, 3, 0.0)
    assert high / low > 2


def test_the_score_effect_shrinks_with_the_matched_variance(parameters: RiskParameters) -> None:
    # 282 of 313 PGS000004 variants match (strand-ambiguous excluded): 91% of the score's variance
    assert parameters.matched_variance_fraction == pytest.approx(0.914, abs=0.01)
    assert np.exp(parameters.log_or_per_sd) == pytest.approx(1.61)
    assert parameters.effective_log_hr_per_sd == pytest.approx(np.log(1.61) * np.sqrt(parameters.matched_variance_fraction))
    answer = assess_score(parameters, parameters.reference.mean, 50.0, "female", 0)
    assert answer.odds_ratio_per_sd == pytest.approx(1.61 ** np.sqrt(parameters.matched_variance_fraction))
    assert "shrunk" in answer.score_effect_note and "not measured" in answer.score_effect_note


def test_explanation_terms_are_exact_on_the_log_cumulative_hazard(predictor: GenomicRiskPredictor,
                                                                   parameters: RiskParameters) -> None:
    score_sum = parameters.reference.mean + 1.3 * parameters.reference.sd
    risk = predictor.explain(predictor.predict_score_sum(score_sum, 61.0, "female", 2))
    terms = {c.feature: c for c in risk.explanation.contributions}
    assert list(terms) == ["polygenic_score_z", "age", "affected_first_degree_relatives"]
    assert terms["affected_first_degree_relatives"].shap_value == pytest.approx(np.log(2.93))
    assert terms["polygenic_score_z"].shap_value == pytest.approx(parameters.effective_log_hr_per_sd * 1.3)
    hazard = np.exp(parameters.effective_log_hr_per_sd * 1.3) * 2.93 * cumulative_baseline_hazard(parameters, 61.0)
    assert risk.explanation.margin == pytest.approx(np.log(hazard))
    texts = [r.text for r in risk.explanation.top_reasons]
    assert "2 affected first-degree relatives raises the likelihood of breast cancer within 10 years" in texts


@pytest.mark.parametrize(("age", "sex", "said"), [
    (39.0, "female", "ages 40 to 70"), (70.5, "female", "ages 40 to 70"), (18.0, "female", "ages 40 to 70"),
    (50.0, "male", "sex female only"),
])
def test_outside_the_valid_ages_and_sexes_no_answer_is_borrowed(
    predictor: GenomicRiskPredictor, parameters: RiskParameters, age: float, sex: str, said: str
) -> None:
    with pytest.raises(FailedPrecondition, match=said):
        check_valid(parameters, age, sex)
    with pytest.raises(FailedPrecondition, match=said):
        predictor.predict_score_sum(parameters.reference.mean, age, sex, 0)


def test_family_history_mix_is_the_published_prevalence() -> None:
    mix = family_history_mix()
    assert sum(mix) == pytest.approx(1.0) and 1 - mix[0] == pytest.approx(0.073)
    assert mix[1] > mix[2] > mix[3] > 0


def test_parameters_round_trip_and_refuse_another_format(parameters: RiskParameters) -> None:
    document = parameters.to_json()
    assert RiskParameters.from_json(document) == parameters
    with pytest.raises(ModelPackageError, match="risk-parameters"):
        RiskParameters.from_json({**document, "format_version": 2})
    with pytest.raises(ModelPackageError, match="malformed"):
        RiskParameters.from_json({k: v for k, v in document.items() if k != "ages"})


def test_older_xgboost_package_stays_loadable_and_selectable() -> None:
    old = GenomicRiskPredictor.load(MODELS / "genomics" / "breast-pgs000004" / "1.1.0")
    assert old.parameters is None and old.risk_parameters_json == b""
    risk = old.explain(old.predict_score_sum(old.reference.mean, 50.0, "female", 2))
    assert 0 < risk.absolute_risk < 1 and risk.explanation.output_space == "log-odds"
    # any number of relatives is its yes/no family history
    assert risk.absolute_risk == old.predict_score_sum(old.reference.mean, 50.0, "female", 1).absolute_risk
    assert risk.model_inputs == (pytest.approx(0.0, abs=1e-9), 50.0, 0.0, 1.0)
