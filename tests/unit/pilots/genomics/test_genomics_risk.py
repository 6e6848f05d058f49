"""Training writes a complete model package; the predictor turns scores into calibrated, explained risks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clinpred.pilots.common.errors import FailedPrecondition, InvalidInput, ModelPackageError
from clinpred.pilots.common.explanation import raw_margin
from clinpred.pilots.common.model_package import ModelPackage
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
from clinpred.pilots.genomics.package_format import FEATURES, onnx_probabilities
from clinpred.pilots.genomics.risk import GenomicRiskPredictor
from clinpred.pilots.genomics.scoring import effect_dosages, sample_scores, score_vcf
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.genomics.training import train_genomics


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, pgs000004_path: Path) -> ModelPackage:
    root = tmp_path_factory.mktemp("models")
    return train_genomics(pgs000004_path, cancer="breast", models_root=root, cohort_size=60_000,
                          reference_size=20_000, seed=11, n_estimators=120, progress=False)


@pytest.fixture(scope="module")
def predictor(package: ModelPackage) -> GenomicRiskPredictor:
    return GenomicRiskPredictor.load(package.path)


def test_package_contents_and_metrics(package: ModelPackage) -> None:
    assert package.path.parts[-3:] == ("genomics", "breast-pgs000004", "1.0.0")
    for name in ("model.onnx", "booster.json", "calibration.json", "schema.json", "metrics.json", "MODEL_CARD.md",
                 "shap_summary.png", "reference_distribution.json", "score_layout.json"):
        assert package.file(name).stat().st_size > 0
    assert package.file("shap_summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "shap_summary.png" in package.file("MODEL_CARD.md").read_text()
    metrics = package.read_json("metrics.json")
    assert metrics["onnx_native_max_abs_diff"] <= 1e-5
    assert metrics["auroc"] > 0.62
    assert abs(metrics["odds_ratio_per_sd_women_adjusted"] - 1.6) <= 0.15
    assert abs(metrics["mean_predicted_risk"] - metrics["observed_risk"]) < 0.01
    assert package.read_json("schema.json")["extra"]["pgs_id"] == "PGS000004"
    assert package.metadata["scoring_file_sha256"] == (
        "44ed732db0bf8668b0f90d1eb748bf53f94205525824064ff2374c3be3ef159f")
    assert len(package.read_json("score_layout.json")["variant_ids"]) == 313


def test_training_is_deterministic(package: ModelPackage, tmp_path: Path, pgs000004_path: Path) -> None:
    again = train_genomics(pgs000004_path, cancer="breast", models_root=tmp_path, cohort_size=60_000,
                           reference_size=20_000, seed=11, n_estimators=120, progress=False)
    for name in ("model.onnx", "calibration.json", "metrics.json", "reference_distribution.json"):
        assert again.file(name).read_bytes() == package.file(name).read_bytes(), name
    with pytest.raises(ModelPackageError, match="already exists"):
        train_genomics(pgs000004_path, cancer="breast", models_root=tmp_path, version="1.0.0", cohort_size=1000,
                       reference_size=1000, progress=False)


def test_assessment_is_calibrated_explained_and_named(
    predictor: GenomicRiskPredictor, pgs000004: ScoringFile
) -> None:
    genotypes = next(simulated_genotypes(pgs000004, 200, seed=77))
    scores = score_vcf(genotypes, pgs000004)
    ordered = sorted(scores, key=lambda s: s.score_sum)
    low, high = ordered[5], ordered[-5]
    risk_low = predictor.assess(low, 55, "female", False)
    risk_high = predictor.assess(high, 55, "female", False)
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
        assert [c.feature for c in explanation.contributions] == list(FEATURES)
        assert [c.value for c in explanation.contributions] == [risk.z_score, 55.0, 0.0, 0.0]
        assert explanation.explained_class == "breast cancer within 10 years" and explanation.output_space == "log-odds"
        assert len(explanation.top_reasons) == 3
        for reason in explanation.top_reasons:
            assert reason.direction == ("raises" if reason.shap_value > 0 else "lowers")
            assert reason.text.endswith(f"{reason.direction} the likelihood of breast cancer within 10 years")
        # yes/no inputs are told in words, not as "family history 0 1 = yes"
        words = {r.feature: r.text for r in explanation.top_reasons}
        assert words.get("family_history", "no family history").startswith("no family history")
        assert words.get("male", "female sex").startswith("female sex")
        assert risk.out_of_range == ()
    # TreeSHAP is additive in log-odds: base + contributions equal the booster's margin.
    x = np.array([[risk_high.z_score, 55, 0, 0]], dtype=np.float32)
    margin = raw_margin(predictor.booster, x)[0, 0]
    assert risk_high.explanation.margin == pytest.approx(margin, abs=1e-4)
    raw = onnx_probabilities(predictor.session, x)[0, 1]
    assert raw == pytest.approx(1 / (1 + np.exp(-margin)), abs=1e-5)
    # Family history and age raise risk; men have far lower breast cancer risk.
    assert predictor.assess(high, 55, "female", True).absolute_risk > risk_high.absolute_risk
    assert predictor.assess(high, 68, "female", False).absolute_risk > predictor.assess(high, 42, "female",
                                                                                       False).absolute_risk
    assert predictor.assess(high, 55, "male", False).absolute_risk < risk_high.absolute_risk / 5


def test_invalid_requests_are_refused(predictor: GenomicRiskPredictor, pgs000004: ScoringFile) -> None:
    score = score_vcf(next(simulated_genotypes(pgs000004, 1, seed=1)), pgs000004)[0]
    with pytest.raises(InvalidInput) as caught:
        predictor.assess(score, 140, "unknown", False)
    assert {v.field for v in caught.value.violations} == {"age", "sex"}
    other = type(score)(**{**score.__dict__, "pgs_id": "PGS000662"})
    with pytest.raises(FailedPrecondition, match="PGS000662"):
        predictor.assess(other, 50, "female", False)


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
    from_encrypted = predictor.explain(predictor.predict_score_sum(decrypted.score_sum, 50, "female", False))
    from_plain = predictor.assess(plain, 50, "female", False)
    assert from_encrypted.percentile == pytest.approx(from_plain.percentile, abs=0.05)
    assert from_encrypted.absolute_risk == pytest.approx(from_plain.absolute_risk, abs=1e-4)
