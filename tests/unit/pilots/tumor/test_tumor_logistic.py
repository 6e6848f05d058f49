"""The standardised logistic regression package: exact linear SHAP, calibration kept only when it helps,
and its encrypted linear form equal to the plain classifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clinpred.pilots.common.errors import InvalidInput
from clinpred.pilots.common.model_package import ModelPackage, latest_package
from clinpred.pilots.common.onnx import onnx_session
from clinpred.pilots.tumor.classifier import TumorClassifier
from clinpred.pilots.tumor.data import TumorDataset
from clinpred.pilots.tumor.encrypted import (
    LINEAR_LAYOUT_FORMAT,
    EncryptedTumorLayout,
    classifications_from_decrypted,
    create_client_context,
    decrypt_cases,
    encode_cases,
    encrypt_cases,
    encrypted_tumor_model,
    public_context_bytes,
    score_encrypted_case,
    tumor_layout,
)
from clinpred.pilots.tumor.package_format import ONNX_INPUT, ONNX_PROBABILITIES
from clinpred.pilots.tumor.training import train_tumor
from tests.conftest import MODELS

LOGISTIC = MODELS / "tumor" / "wdbc-logistic" / "1.0.0"
# The served default: the same regression, its card with the nested comparison and prevalence recalibration.
SERVED = MODELS / "tumor" / "wdbc-logistic" / "1.1.0"
BOOSTER = MODELS / "tumor" / "wdbc-xgboost" / "1.2.0"
# CKKS at the default parameters errs by about 1e-4 per slot; answers are compared at the service's 1e-3.
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def logistic() -> TumorClassifier:
    return TumorClassifier.load(ModelPackage.open(LOGISTIC))


def test_shap_values_are_weight_times_centred_standardised_feature(logistic: TumorClassifier, wdbc: TumorDataset) -> None:
    linear = json.loads((LOGISTIC / "linear.json").read_text())
    z = (wdbc.x - np.array(linear["mean"])) / np.array(linear["scale"])
    # The package's training mean is of the float32 features the models read: equal to ~1e-7 in z.
    expected = np.array(linear["coef"][0]) * (z - z.mean(axis=0))
    answers = logistic.classify(wdbc.x)
    names = logistic.schema.feature_names
    for i in (0, 100, 568):
        shap = {c.feature: c.shap_value for c in answers[i].explanation.contributions}
        np.testing.assert_allclose([shap[n] for n in names], expected[i], atol=1e-6)
    # The served float64 probabilities are the ONNX graph's (float32) to its export tolerance.
    p = np.array([a.probabilities["malignant"] for a in answers])
    session = onnx_session(LOGISTIC / "model.onnx")
    onnx_p = session.run([ONNX_PROBABILITIES], {ONNX_INPUT: wdbc.x.astype(np.float32)})[0][:, 1]
    np.testing.assert_allclose(p, onnx_p, atol=1e-5)
    # Base plus contributions is the margin the probability comes from.
    margins = np.array([a.explanation.margin for a in answers])
    # Away from 0 and 1, where a float32 probability still pins its logit to 1e-3.
    inside = (p > 1e-3) & (p < 1 - 1e-3)
    assert inside.sum() > 50
    np.testing.assert_allclose(np.log(p[inside] / (1 - p[inside])), margins[inside], atol=1e-3)
    assert logistic.explanation_method.startswith("Linear SHAP (exact")


def test_the_package_publishes_held_out_figures_and_its_calibration_choice(logistic: TumorClassifier) -> None:
    metrics = logistic.metrics
    assert metrics["auroc"] > 0.99 and metrics["accuracy"] > 0.96
    # Identity served only because Platt scaling did not lower held-out log loss.
    assert logistic.calibrator.method == "identity"
    assert metrics["log_loss_platt_declined"] >= metrics["log_loss_uncalibrated"]
    assert metrics["log_loss"] == pytest.approx(metrics["log_loss_uncalibrated"])
    assert set(metrics["conformal_class_coverage_heldout"]) == {"benign", "malignant"}


def test_training_writes_a_loadable_logistic_package(tmp_path: Path, wdbc: TumorDataset) -> None:
    report = train_tumor(
        wdbc, algorithm="logistic", models_root=tmp_path, version="1.0.0", progress=False, n_splits=5, nested_seeds=0
    )
    assert "linear.json" in report.package.manifest["files"]
    assert report.metrics["shap_additivity_max_abs_error"] < 1e-4
    assert report.metrics["onnx_native_max_abs_diff"] < 1e-5
    # The calibration rule: Platt kept exactly when it lowered held-out log loss.
    if report.calibrator.method == "identity":
        assert report.metrics["log_loss_platt_declined"] >= report.metrics["log_loss_uncalibrated"]
    else:
        assert report.metrics["log_loss"] < report.metrics["log_loss_uncalibrated"]
    loaded = TumorClassifier.load(report.package)
    assert loaded.linear_model is not None
    labels = [a.label for a in loaded.classify(wdbc.x)]
    assert np.mean([label == wdbc.classes[c] for label, c in zip(labels, wdbc.y, strict=True)]) > 0.97


def test_the_encrypted_linear_form_gives_the_plain_answers(logistic: TumorClassifier, wdbc: TumorDataset) -> None:
    layout = tumor_layout(logistic)
    assert layout.format == LINEAR_LAYOUT_FORMAT and len(layout) == 30 and layout.thresholds == ()
    assert EncryptedTumorLayout.from_json(layout.to_json()) == layout
    context = create_client_context()
    rows = wdbc.x[:40]
    encrypted = encrypt_cases(context, layout, encode_cases(layout, rows))
    # 30 slots a case: 68 cases fit one ciphertext at degree 4096.
    assert len(encrypted.ciphertexts) == 1
    products = score_encrypted_case(public_context_bytes(context), encrypted.ciphertexts, layout)
    decrypted = decrypt_cases(context, layout, products)
    mine = classifications_from_decrypted(encrypted_tumor_model(logistic), rows, decrypted)
    theirs = logistic.classify(rows)
    for a, b in zip(mine, theirs, strict=True):
        assert a.label == b.label and a.confidence == b.confidence
        assert a.probabilities["malignant"] == pytest.approx(b.probabilities["malignant"], abs=TOLERANCE)
        assert a.explanation.margin == pytest.approx(b.explanation.margin, abs=TOLERANCE)
        for c, d in zip(a.explanation.contributions, b.explanation.contributions, strict=True):
            assert c.feature == d.feature and c.shap_value == pytest.approx(d.shap_value, abs=TOLERANCE)


def test_a_linear_layout_without_one_scale_per_feature_is_refused(logistic: TumorClassifier) -> None:
    obj = tumor_layout(logistic).to_json()
    for broken in ({"feature_scales": obj["feature_scales"][:-1]}, {"feature_scales": [0.0] * 30}, {"thresholds": [1.0] * 30}):
        with pytest.raises(InvalidInput):
            EncryptedTumorLayout.from_json({**obj, **broken})


def test_the_stump_layout_still_says_its_form(reference: TumorClassifier) -> None:
    layout = tumor_layout(reference)
    assert layout.format == "clinpred-encrypted-stumps/1" and len(layout) == len(layout.thresholds) == 360



def test_the_served_version_is_the_same_regression_with_a_fuller_card(logistic: TumorClassifier, wdbc: TumorDataset) -> None:
    served, first = ModelPackage.open(SERVED), ModelPackage.open(LOGISTIC)
    assert latest_package(MODELS, "tumor", "wdbc-logistic").path == served.path
    for name in ("model.onnx", "linear.json", "calibration.json", "conformal.json", "schema.json"):
        assert served.file(name).read_bytes() == first.file(name).read_bytes(), name
    new = TumorClassifier.load(served)
    assert [a.probabilities for a in new.classify(wdbc.x)] == [a.probabilities for a in logistic.classify(wdbc.x)]
    # The first version stays loadable and keeps its identity.
    assert logistic.identity.version == "1.0.0" and new.identity.version == "1.1.0"


def test_the_served_card_shows_the_nested_comparison_beside_the_boosters() -> None:
    served = ModelPackage.open(SERVED)
    nested = served.read_json("metrics.json")["nested_cv"]
    card = served.file("MODEL_CARD.md").read_text()
    assert len(nested["seeds"]) >= 5 and nested["n_splits"] == 10
    assert nested["winner_log_loss"] == "logistic_regression"
    # The same folds and settings as the booster package's comparison: the per-fold figures agree.
    booster = ModelPackage.open(BOOSTER).read_json("metrics.json")["nested_cv"]
    for model in ("boosted_stumps", "logistic_regression"):
        for key, values in booster["models"][model]["per_fold"].items():
            np.testing.assert_allclose(nested["models"][model]["per_fold"][key], values, rtol=0, atol=1e-9)
        figures = nested["models"][model]
        for key in ("log_loss", "auroc", "accuracy", "brier", "ece"):
            m = figures["metrics"][key]
            assert f"{m['mean']:.4f} ± {m['sd']:.4f}" in card, (model, key)
        for target in ("0.95", "0.99"):
            row = figures["mondrian_conformal"][target]
            assert f"{row['malignant_miss_rate']:.4f} | {row['two_label_share']:.1%} |" in card, (model, target)
        assert f"{figures['net_benefit']['0.02']:.4f}" in card
    assert "This package is that logistic regression" in card
    for section in ("### Decision curve: referral for biopsy", "### Recalibration for a clinical prevalence",
                    "### Calibration on held-out cases"):
        assert section in card
    for image in ("decision_curve.png", "calibration_plot.png", "shap_summary.png"):
        assert served.file(image).read_bytes()[:4] == b"\x89PNG"


def test_the_served_card_recalibrates_for_a_clinical_prevalence() -> None:
    nested = ModelPackage.open(SERVED).read_json("metrics.json")["nested_cv"]
    threshold = nested["decision_curve"]["biopsy_threshold"]
    for model in ("boosted_stumps", "logistic_regression"):
        rows = nested["models"][model]["clinical_prevalence"]
        assert rows
        for prevalence, row in rows.items():
            pi = float(prevalence)
            assert pi < 212 / 569
            shifted, unshifted = row["recalibrated"], row["not_recalibrated"]
            # A lower prevalence lowers every probability: never more referrals, never a higher sensitivity.
            assert shifted["referred_share"]["mean"] <= unshifted["referred_share"]["mean"]
            assert shifted["sensitivity"]["mean"] <= unshifted["sensitivity"]["mean"]
            for point in (shifted, unshifted):
                sens, spec = point["sensitivity"]["mean"], point["specificity"]["mean"]
                # Linear in sensitivity and specificity, so the means over seeds obey the same identities.
                assert point["referred_share"]["mean"] == pytest.approx(sens * pi + (1 - spec) * (1 - pi))
                assert point["net_benefit"]["mean"] == pytest.approx(
                    sens * pi - (1 - spec) * (1 - pi) * threshold / (1 - threshold)
                )
            assert row["log_odds_shift"] == pytest.approx(np.log(pi / (1 - pi)) - np.log(212 / 357))


def test_readme_quotes_the_served_package() -> None:
    readme = " ".join((MODELS.parent / "README.md").read_text().split())
    nested = ModelPackage.open(SERVED).read_json("metrics.json")["nested_cv"]
    lr, stumps = nested["models"]["logistic_regression"], nested["models"]["boosted_stumps"]

    def summary(model: dict[str, Any], key: str) -> str:
        return f"{model['metrics'][key]['mean']:.4f} ± {model['metrics'][key]['sd']:.4f}"

    at_5 = lr["clinical_prevalence"]["0.05"]
    shifted, unshifted = at_5["recalibrated"], at_5["not_recalibrated"]
    quoted = [
        f"log loss {summary(lr, 'log_loss')} against {summary(stumps, 'log_loss')}",
        "`wdbc-logistic` 1.1.0 is served by default",
        f"refers {shifted['referred_share']['mean']:.0%} of cases instead of {unshifted['referred_share']['mean']:.0%}",
        f"sensitivity {shifted['sensitivity']['mean']:.3f} instead of {unshifted['sensitivity']['mean']:.3f}",
        f"PPV {shifted['ppv']['mean']:.0%} instead of {unshifted['ppv']['mean']:.0%}",
        f"({shifted['net_benefit']['mean']:.4f} against {unshifted['net_benefit']['mean']:.4f})",
    ]
    for text in quoted:
        assert text in readme, text
