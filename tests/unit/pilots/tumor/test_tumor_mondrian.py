"""Class-conditional (Mondrian) conformal sets in the served package 1.2.0, built from 1.1.0 without retraining."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.tumor.classifier import TumorClassifier
from clinpred.pilots.tumor.data import TumorDataset
from clinpred.pilots.tumor.package_format import PACKAGE_FORMAT, PACKAGE_FORMAT_KEY
from clinpred.pilots.tumor.training import build_mondrian_package
from tests.conftest import MODELS
from tests.support import assert_figures_close
from tests.unit.pilots.tumor.conftest import PREVIOUS, TRAINED

# Binomial standard error of a 95% coverage on the 212 malignant cases: sqrt(0.05 * 0.95 / 212) = 0.015.
TWO_STANDARD_ERRORS = 0.03


def test_the_served_package_is_built_reproducibly_from_the_trained_one(
    reference_package: ModelPackage, wdbc: TumorDataset, tmp_path: Path
) -> None:
    source = tmp_path / "tumor" / "wdbc-xgboost" / "1.1.0"
    shutil.copytree(TRAINED, source)
    built = build_mondrian_package(wdbc, models_root=tmp_path)
    assert built.identity.version == "1.2.0"
    assert built.metadata[PACKAGE_FORMAT_KEY] == PACKAGE_FORMAT == 2
    # Booster, ONNX graph, calibration and schema are the trained package's, byte for byte.
    for name in ("booster.json", "model.onnx", "calibration.json", "schema.json", "shap_summary.png"):
        assert built.file(name).read_bytes() == (TRAINED / name).read_bytes()
    # Same tolerance as the retraining test: float sums in calibration fitting differ by machine at ~1e-8.
    for name in ("conformal.json", "metrics.json", "transparency.json"):
        assert_figures_close(built.read_json(name), reference_package.read_json(name), rel=1e-6, path=name)


def test_the_malignant_miss_rate_on_held_out_folds_is_within_the_stated_level(reference: TumorClassifier) -> None:
    m = reference.metrics
    level = reference.conformal.coverage
    assert level == 0.95
    assert m["conformal_coverage_heldout_malignant"] >= level - TWO_STANDARD_ERRORS
    assert m["conformal_coverage_heldout_benign"] >= level - TWO_STANDARD_ERRORS
    assert reference.info.class_coverage == {
        "benign": m["conformal_coverage_heldout_benign"],
        "malignant": m["conformal_coverage_heldout_malignant"],
    }


def test_answers_use_one_threshold_per_class(reference: TumorClassifier, wdbc: TumorDataset) -> None:
    q = reference.conformal.class_q_hat
    assert q is not None and len(q) == 2
    predictions = reference.predict(wdbc.x)
    p = np.array([[a.probabilities["benign"], a.probabilities["malignant"]] for a in predictions])
    for row, answer in zip(p, predictions, strict=True):
        expected = {c for k, c in enumerate(("benign", "malignant")) if 1 - row[k] <= q[k] or k == row.argmax()}
        assert set(answer.confidence.labels) == expected
        assert answer.confidence.method.startswith("class-conditional")
    # The malignant threshold is wider than the marginal one: a borderline benign answer (p malignant 0.48)
    # names both classes, where the marginal set named benign alone (the training cases themselves are all
    # confident in-sample, so none of them shows this).
    assert q[1] > reference.conformal.q_hat
    borderline = np.array([[0.52, 0.48]])
    assert reference.conformal.sets(borderline)[0].labels == ("benign", "malignant")
    assert replace(reference.conformal, class_q_hat=None).sets(borderline)[0].labels == ("benign",)


def test_packages_without_class_thresholds_keep_marginal_sets(wdbc: TumorDataset) -> None:
    for path in (TRAINED, PREVIOUS):
        classifier = TumorClassifier.load(ModelPackage.open(path))
        assert classifier.conformal.class_q_hat is None and classifier.info.class_coverage == {}
        assert all(len(a.confidence.labels) == 1 for a in classifier.predict(wdbc.x))


def test_the_hti1_source_attributes_are_in_the_package_and_state_its_figures(reference: TumorClassifier) -> None:
    document = json.loads(reference.info.transparency_json)
    assert document["format"] == "clinpred-hti1-source-attributes/1"
    assert document["model"] == {"name": "wdbc-xgboost", "version": "1.2.0"}
    attributes = document["attributes"]
    # The same attribute names as the deterioration model's document: one schema for every service.
    deterioration = ModelPackage.open(MODELS / "deterioration" / "home-deterioration" / "1.1.0")
    assert set(attributes) == set(json.loads(deterioration.file("transparency.json").read_text())["attributes"])
    validity = attributes["validity_same_source"]
    m = reference.metrics
    assert validity["auroc_10_fold"] == m["auroc"] and validity["log_loss_10_fold"] == m["log_loss"]
    assert validity["conformal_coverage_heldout_per_class"] == m["conformal_class_coverage_heldout"]
    assert validity["nested_cv"] == m["nested_cv"]["models"]["boosted_stumps"]["metrics"]
    # A package file: covered by the manifest's hashes, so tampering stops the package from loading.
    assert "transparency.json" in reference.package.manifest["files"]
    assert TumorClassifier.load(ModelPackage.open(TRAINED)).info.transparency_json == ""
