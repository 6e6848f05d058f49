"""Training writes a complete model package; the predictor turns scores into registry-calibrated, explained risks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clinpred.pilots.common.errors import FailedPrecondition, InvalidInput, ModelPackageError
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.genomics.absolute_risk import assess_score, imputed_score_variance
from clinpred.pilots.genomics.cohort import simulated_genotypes
from clinpred.pilots.genomics.encrypted import (
    create_client_context,
    decrypt_score,
    dosages_for_layout,
    encrypt_dosages,
    public_context_bytes,
    score_encrypted,
)
from clinpred.pilots.genomics.matching import match_variants
from clinpred.pilots.genomics.package_format import MULTIPLICATIVE_FEATURES, RISK_PARAMETERS_FILE
from clinpred.pilots.genomics.registry import BREAST, CalibrationTargets
from clinpred.pilots.genomics.risk import GenomicRiskPredictor
from clinpred.pilots.genomics.scoring import effect_dosages, sample_scores, score_vcf
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.genomics.training import train_genomics
from tests.unit.pilots.genomics.conftest import SimulateGenotypes


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, pgs000004_path: Path) -> ModelPackage:
    root = tmp_path_factory.mktemp("models")
    return train_genomics(pgs000004_path, cancer="breast", models_root=root, cohort_size=40_000,
                          reference_size=20_000, seed=11, released="2026-12-01", progress=False)


@pytest.fixture(scope="module")
def predictor(package: ModelPackage) -> GenomicRiskPredictor:
    return GenomicRiskPredictor.load(package.path)


def test_package_contents_and_metrics(package: ModelPackage) -> None:
    assert package.path.parts[-3:] == ("genomics", "breast-pgs000004", "1.0.0")
    for name in (RISK_PARAMETERS_FILE, "schema.json", "metrics.json", "MODEL_CARD.md", "risk_by_age.png",
                 "calibration.png", "reference_distribution.json", "score_layout.json", "calibration_targets.json"):
        assert package.file(name).stat().st_size > 0
    card = package.file("MODEL_CARD.md").read_text()
    for plot in ("risk_by_age.png", "calibration.png"):
        assert package.file(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot in card
    for section in ("From publications", "From simulation", "Pipeline check", "Operating points", "By age band",
                    "Monitoring plan", "Change log", "Transparency attributes", "Released 2026-12-01"):
        assert section in card, section
    transparency = package.read_json("transparency.json")
    for attribute in ("intended_use", "intended_patient_population", "cautioned_out_of_scope_use", "input_features",
                      "training_data", "external_validation", "performance_measures", "fairness", "update_schedule",
                      "monitoring", "release_date", "developer"):
        assert transparency[attribute], attribute
    assert "aged 40-70" in transparency["intended_patient_population"]
    metrics = package.read_json("metrics.json")
    assert metrics["calibration_max_relative_error"] < 0.05
    # the pipeline check: a cohort scored through matching and scoring gives back what the model put in.
    # 40,000 women, about 1,100 events: the log OR's standard error is about 0.03, so 0.1 is over 3 SE.
    assert abs(np.log(metrics["pipeline_check_or_per_sd"] / metrics["pipeline_check_expected_or_per_sd"])) < 0.1
    assert abs(metrics["pipeline_check_observed_risk"] / metrics["pipeline_check_predicted_risk"] - 1) < 0.1
    assert abs(metrics["pipeline_check_z_mean"]) < 0.05 and abs(metrics["pipeline_check_z_sd"] - 1) < 0.05
    assert 0.60 < metrics["pipeline_check_score_auroc"] < 0.66  # published AUROC about 0.63
    # operating points: a lower threshold flags more women, finds more cancers, with a lower PPV
    assert metrics["operating_at_3pct_flagged"] > metrics["operating_at_8pct_flagged"] > 0
    assert metrics["operating_at_3pct_sensitivity"] > metrics["operating_at_8pct_sensitivity"]
    assert metrics["operating_at_8pct_ppv"] > metrics["operating_at_3pct_ppv"]
    for band in ("40_49", "50_59", "60_70"):  # each age band calibrated within 20% (about 350 events a band)
        observed, predicted = (metrics[f"subgroup_age_{band}_{k}_risk"] for k in ("observed", "predicted"))
        assert abs(observed / predicted - 1) < 0.2, band
    assert package.read_json("schema.json")["extra"]["pgs_id"] == "PGS000004"
    assert package.metadata["scoring_file_sha256"] == (
        "44ed732db0bf8668b0f90d1eb748bf53f94205525824064ff2374c3be3ef159f")
    assert package.metadata["risk_model"] == "multiplicative-hazard"
    assert len(package.read_json("score_layout.json")["variant_ids"]) == 313
    # the parameters are a file of the package: its SHA-256 covers them
    assert RISK_PARAMETERS_FILE in package.manifest["files"]


def test_training_is_deterministic(package: ModelPackage, tmp_path: Path, pgs000004_path: Path) -> None:
    again = train_genomics(pgs000004_path, cancer="breast", models_root=tmp_path, cohort_size=40_000,
                           reference_size=20_000, seed=11, released="2026-12-01", progress=False)
    for name in (RISK_PARAMETERS_FILE, "metrics.json", "reference_distribution.json", "MODEL_CARD.md",
                 "transparency.json"):
        assert again.file(name).read_bytes() == package.file(name).read_bytes(), name
    with pytest.raises(ModelPackageError, match="already exists"):
        train_genomics(pgs000004_path, cancer="breast", models_root=tmp_path, version="1.0.0", cohort_size=1000,
                       reference_size=1000, progress=False)


def test_other_cancers_need_their_published_figures(tmp_path: Path, pgs000004_path: Path) -> None:
    with pytest.raises(FailedPrecondition, match="--calibration"):
        train_genomics(pgs000004_path, cancer="ovarian", models_root=tmp_path, cohort_size=1000,
                       reference_size=1000, progress=False)
    assert not (tmp_path / "genomics" / "ovarian-pgs000004").exists() or not any(
        (tmp_path / "genomics" / "ovarian-pgs000004").iterdir())
    assert CalibrationTargets.from_json(BREAST.to_json()) == BREAST


def test_assessment_is_calibrated_explained_and_named(
    predictor: GenomicRiskPredictor, pgs000004: ScoringFile
) -> None:
    genotypes = next(simulated_genotypes(pgs000004, 200, seed=77))
    scores = score_vcf(genotypes, pgs000004)
    ordered = sorted(scores, key=lambda s: s.score_sum)
    low, high = ordered[5], ordered[-5]
    risk_low = predictor.assess(low, 55, "female", 0)
    risk_high = predictor.assess(high, 55, "female", 0)
    assert risk_high.percentile > risk_low.percentile
    assert risk_high.absolute_risk > risk_low.absolute_risk
    assert risk_high.relative_risk > 1 > risk_low.relative_risk
    for risk in (risk_low, risk_high):
        lower, upper = risk.risk_interval
        assert lower < risk.absolute_risk < upper
        assert risk.relative_risk == pytest.approx(risk.absolute_risk / risk.population_average_risk)
        assert risk.model == predictor.identity and risk.model.version == "1.0.0"
        assert (risk.variants_total, risk.variants_matched) == (313, 282)
        assert risk.overlap is not None and risk.overlap.unmatched["strand_ambiguous"] == 31
        assert len(risk.top_variants) == 10
        assert abs(risk.top_variants[0].contribution) >= abs(risk.top_variants[-1].contribution)
        explanation = risk.explanation
        assert [c.feature for c in explanation.contributions] == list(MULTIPLICATIVE_FEATURES)
        assert [c.value for c in explanation.contributions] == [risk.z_score, 55.0, 0.0]
        assert explanation.explained_class == "breast cancer within 10 years"
        assert explanation.output_space == "log cumulative hazard"
        for reason in explanation.top_reasons:
            assert reason.direction == ("raises" if reason.shap_value > 0 else "lowers")
            assert reason.text.endswith(f"{reason.direction} the likelihood of breast cancer within 10 years")
        assert risk.out_of_range == ()
        assert risk.unmeasured_variance_fraction == pytest.approx(1 - predictor.parameters.matched_variance_fraction)
    # relatives and age raise risk
    assert predictor.assess(high, 55, "female", 1).absolute_risk > risk_high.absolute_risk
    assert predictor.assess(high, 68, "female", 0).absolute_risk > predictor.assess(high, 42, "female", 0).absolute_risk


def test_imputed_genotypes_widen_the_interval(
    predictor: GenomicRiskPredictor, pgs000004: ScoringFile, simulate_genotypes: SimulateGenotypes
) -> None:
    complete = score_vcf(simulate_genotypes(pgs000004, 60, seed=4), pgs000004)[0]
    gappy = score_vcf(simulate_genotypes(pgs000004, 60, seed=4, missing=0.4), pgs000004)[0]
    assert gappy.variants_imputed > 50
    full, partial = predictor.assess(complete, 50, "female", 0), predictor.assess(gappy, 50, "female", 0)
    assert partial.unmeasured_variance_fraction > full.unmeasured_variance_fraction + 0.2
    full_width = full.risk_interval[1] / full.risk_interval[0]
    assert partial.risk_interval[1] / partial.risk_interval[0] > full_width


def test_invalid_requests_are_refused(predictor: GenomicRiskPredictor, pgs000004: ScoringFile) -> None:
    score = score_vcf(next(simulated_genotypes(pgs000004, 1, seed=1)), pgs000004)[0]
    with pytest.raises(InvalidInput) as caught:
        predictor.assess(score, 140, "unknown", -1)
    assert {v.field for v in caught.value.violations} == {"age", "sex", "affected_first_degree_relatives"}
    other = type(score)(**{**score.__dict__, "pgs_id": "PGS000662"})
    with pytest.raises(FailedPrecondition, match="PGS000662"):
        predictor.assess(other, 50, "female", 0)


def test_encrypted_score_gives_the_same_risk_on_the_client(
    predictor: GenomicRiskPredictor, pgs000004: ScoringFile
) -> None:
    genotypes = next(simulated_genotypes(pgs000004, 1, seed=8))
    effect = effect_dosages(match_variants(pgs000004, genotypes))
    plain = sample_scores(effect)[0]
    context = create_client_context()
    layout = predictor.layout
    request = encrypt_dosages(context, dosages_for_layout(effect, layout), layout)
    result = score_encrypted(public_context_bytes(context), request.ciphertexts, layout)
    decrypted = decrypt_score(context, result, layout)
    from_encrypted = predictor.explain(predictor.predict_score_sum(decrypted.score_sum, 50, "female", 1))
    from_plain = predictor.assess(plain, 50, "female", 1)
    assert from_encrypted.percentile == pytest.approx(from_plain.percentile, abs=0.05)
    assert from_encrypted.absolute_risk == pytest.approx(from_plain.absolute_risk, abs=1e-4)
    # a client holding only the published parameters computes the server's answer
    assert predictor.parameters is not None
    on_client = assess_score(predictor.parameters, decrypted.score_sum, 50, "female", 1,
                             variants_matched=plain.variants_matched,
                             imputed_variance=imputed_score_variance(plain.contributions))
    assert on_client.absolute_risk == from_encrypted.absolute_risk
    assert on_client.risk_interval == from_encrypted.risk_interval
