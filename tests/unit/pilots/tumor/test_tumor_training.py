"""Training pipeline on tiny configurations: packages, multi-class, LightGBM, determinism, ONNX parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from clinpred.pilots.common.errors import FailedPrecondition, InvalidInput
from clinpred.pilots.common.explanation import raw_margin
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.common.onnx import OnnxParityError
from clinpred.pilots.tumor import training
from clinpred.pilots.tumor.classifier import TumorClassifier
from clinpred.pilots.tumor.data import TumorDataset, load_tumor_csv
from clinpred.pilots.tumor.encrypted import encrypted_tumor_model
from clinpred.pilots.tumor.training import check_onnx_parity, make_estimator, to_onnx, train_tumor
from tests.unit.pilots.tumor.conftest import TINY

PACKAGE_FILES = {
    "model.onnx",
    "calibration.json",
    "conformal.json",
    "schema.json",
    "metrics.json",
    "MODEL_CARD.md",
    "shap_summary.png",
}


def _subset(data: TumorDataset, n: int = 200) -> TumorDataset:
    """A stratified slice of WDBC, so LightGBM and parity tests stay fast."""
    rng = np.random.default_rng(0)
    keep = np.sort(rng.choice(data.y.size, n, replace=False))
    return TumorDataset(data.name, data.x[keep], data.y[keep], data.classes, data.positive_class, data.features, "t")


def test_multi_class_user_csv_trains_into_a_servable_package(iris_csv: Path, tmp_path: Path) -> None:
    data = load_tumor_csv(iris_csv, label_column="grade")
    report = train_tumor(data, models_root=tmp_path, progress=False, params=TINY, nested_seeds=0)
    package = report.package
    assert package.identity.name == "nuclei-xgboost" and package.identity.version == "1.0.0"
    assert set(package.manifest["files"]) == PACKAGE_FILES | {"booster.json"}
    metrics = report.metrics
    assert metrics["auroc"] > 0.95 and metrics["accuracy"] > 0.9
    assert metrics["details"]["auroc_definition"] == "one-vs-rest macro AUROC"
    assert metrics["conformal_coverage_heldout"] >= 0.9
    assert metrics["onnx_native_max_abs_diff"] <= 1e-5
    assert package.read_json("calibration.json")["method"] == "temperature"
    assert "shap_summary.png" in package.file("MODEL_CARD.md").read_text()

    classifier = TumorClassifier.load(package)
    results = classifier.classify(data.x[[0, 60, 120]])
    assert [r.label for r in results] == ["grade A", "grade B", "grade C"]
    for r in results:
        assert list(r.probabilities) == ["grade A", "grade B", "grade C"]
        assert sum(r.probabilities.values()) == pytest.approx(1.0)
        assert r.explanation.explained_class == r.label
        assert r.explanation.output_space == "softmax-logit"
        assert r.label in r.confidence.labels
    margins = raw_margin(classifier._booster, data.x[[0, 60, 120]])
    for i, r in enumerate(results):
        k = classifier.schema.classes.index(r.label)
        assert r.explanation.margin == pytest.approx(margins[i, k], abs=1e-4)
    # Encrypted classification needs one additive margin (binary); a service with this model says so.
    with pytest.raises(FailedPrecondition, match="binary ensemble of depth-1 trees"):
        encrypted_tumor_model(classifier)


def test_lightgbm_is_selectable(wdbc: TumorDataset, tmp_path: Path) -> None:
    data = _subset(wdbc)
    report = train_tumor(data, algorithm="lightgbm", models_root=tmp_path, progress=False, params=TINY, nested_seeds=0)
    package = report.package
    assert package.identity.name == "wdbc-lightgbm"
    assert package.metadata["algorithm"] == "lightgbm" and package.metadata["booster"] == "booster.txt"
    # WDBC rows: the WDBC HTI-1 attributes apply.
    assert set(package.manifest["files"]) == PACKAGE_FILES | {"booster.txt", "transparency.json"}
    assert report.metrics["auroc"] > 0.95
    classifier = TumorClassifier.load(package)
    rows = data.x[:20]
    explanations = classifier.explain(rows, classifier.predict(rows))
    margins = raw_margin(classifier._booster, rows)[:, 0]
    for e, m in zip(explanations, margins, strict=True):
        assert e.margin == pytest.approx(m, abs=1e-4)
        assert e.base_value + sum(c.shap_value for c in e.contributions) == pytest.approx(e.margin, abs=1e-9)
    with pytest.raises(FailedPrecondition, match="binary ensemble of depth-1 trees"):
        encrypted_tumor_model(classifier)


def test_retraining_reproduces_metrics_and_model(wdbc: TumorDataset, tmp_path: Path) -> None:
    data = _subset(wdbc)
    first = train_tumor(data, models_root=tmp_path, progress=False, params=TINY, nested_seeds=0)
    second = train_tumor(data, models_root=tmp_path, progress=False, params=TINY, nested_seeds=0)
    assert second.package.identity.version == "1.1.0"  # next_version by default
    assert first.metrics == second.metrics
    files_a, files_b = first.package.manifest["files"], second.package.manifest["files"]
    for name in ("model.onnx", "booster.json", "calibration.json", "conformal.json", "metrics.json"):
        assert files_a[name] == files_b[name], name
    other_seed = train_tumor(data, models_root=tmp_path, progress=False, params=TINY, seed=1, nested_seeds=0)
    assert other_seed.metrics["details"]["auroc_per_fold"] != first.metrics["details"]["auroc_per_fold"]


def _tamper(onnx_bytes: bytes) -> bytes:
    model = onnx.load_from_string(onnx_bytes)
    (node,) = model.graph.node
    weights = next(a for a in node.attribute if a.name == "class_weights")
    weights.floats[0] += 0.5
    return bytes(model.SerializeToString())


def test_onnx_parity_check_raises_when_violated(wdbc: TumorDataset) -> None:
    data = _subset(wdbc)
    x32 = data.x.astype(np.float32)
    model = make_estimator("xgboost", TINY, 0, 2).fit(x32, data.y)
    native = model.predict_proba(x32).astype(np.float64)
    good = to_onnx(model, "xgboost", x32.shape[1])
    assert check_onnx_parity(good, native, x32) <= 1e-5
    with pytest.raises(OnnxParityError, match="export refused"):
        check_onnx_parity(_tamper(good), native, x32)
    # The threshold is the one stated: a hair of difference above it is refused too.
    with pytest.raises(OnnxParityError):
        check_onnx_parity(good, native + 2e-5, x32)


def test_a_failed_export_writes_no_package(wdbc: TumorDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = training.to_onnx
    monkeypatch.setattr(training, "to_onnx", lambda *args: _tamper(real(*args)))
    with pytest.raises(OnnxParityError):
        train_tumor(_subset(wdbc), models_root=tmp_path, progress=False, params=TINY, nested_seeds=0)
    assert not list(tmp_path.rglob("package.json"))


def test_bad_training_requests(wdbc: TumorDataset, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="algorithm"):
        train_tumor(wdbc, algorithm="catboost", models_root=tmp_path, progress=False)  # type: ignore[arg-type]
    few = TumorDataset("few", wdbc.x[:30], wdbc.y[:30], wdbc.classes, "malignant", wdbc.features, "t")
    assert few.class_counts["benign"] < 10
    with pytest.raises(InvalidInput, match="10-fold"):
        train_tumor(few, models_root=tmp_path, progress=False)


def test_an_explicit_name_and_version_are_used(wdbc: TumorDataset, tmp_path: Path) -> None:
    report = train_tumor(
        _subset(wdbc), models_root=tmp_path, name="custom", version="2.3.4", progress=False, params=TINY, nested_seeds=0
    )
    assert report.package.path == tmp_path / "tumor" / "custom" / "2.3.4"
    assert ModelPackage.open(report.package.path).identity == report.package.identity
