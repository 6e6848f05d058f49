"""Shared fixtures: the committed reference package, WDBC, and a small multi-class user CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sklearn.datasets import load_iris

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.tumor.classifier import TumorClassifier
from clinpred.pilots.tumor.data import TumorDataset, load_wdbc
from tests.conftest import MODELS

# Served: the trained package plus class-conditional conformal thresholds (build_mondrian_package).
REFERENCE = MODELS / "tumor" / "wdbc-xgboost" / "1.2.0"
# What `train_tumor` writes for the reference: same booster and calibration, marginal conformal sets.
TRAINED = MODELS / "tumor" / "wdbc-xgboost" / "1.1.0"
# The first package (single, non-nested 10-fold CV): it stays loadable and selectable.
PREVIOUS = MODELS / "tumor" / "wdbc-xgboost" / "1.0.0"
# Tiny boosters keep training tests fast; the reference package is tested as committed.
TINY = {"n_estimators": 20}


@pytest.fixture(scope="session")
def reference_package() -> ModelPackage:
    return ModelPackage.open(REFERENCE)


@pytest.fixture(scope="session")
def trained_package() -> ModelPackage:
    return ModelPackage.open(TRAINED)


@pytest.fixture(scope="session")
def reference(reference_package: ModelPackage) -> TumorClassifier:
    return TumorClassifier.load(reference_package)


@pytest.fixture(scope="session")
def wdbc() -> TumorDataset:
    return load_wdbc()


@pytest.fixture
def iris_csv(tmp_path: Path) -> Path:
    """Three classes of 50 rows: a user's own multi-class table with free-form column names."""
    iris = load_iris()
    path = tmp_path / "nuclei.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Sepal Length", "sepal width", "petal length", "petal width", "grade"])
        for row, label in zip(iris.data, iris.target, strict=True):
            writer.writerow([*row, f"grade {'ABC'[label]}"])
    return path
