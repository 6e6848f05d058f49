"""WDBC as the service sees it, and users' own CSV files with errors that name column and row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from clinpred.pilots.common.errors import InvalidInput
from clinpred.pilots.tumor.data import WDBC_FEATURES, TumorDataset, load_tumor_csv


def test_wdbc_has_real_patients_with_malignant_as_positive(wdbc: TumorDataset) -> None:
    raw = load_breast_cancer()
    assert wdbc.x.shape == (569, 30)
    assert wdbc.classes == ("benign", "malignant")
    assert wdbc.positive_class == "malignant"
    assert wdbc.class_counts == {"benign": 357, "malignant": 212}
    # scikit-learn's 0 is malignant; ours is 1.
    assert np.array_equal(wdbc.y, (raw.target == 0).astype(int))
    assert np.array_equal(wdbc.x, raw.data)


def test_wdbc_feature_names_units_and_ranges(wdbc: TumorDataset) -> None:
    names = wdbc.feature_names
    assert names[0] == "mean_radius" and names[-1] == "worst_fractal_dimension"
    assert names[10] == "radius_error" and names[7] == "mean_concave_points"
    specs = {f.name: f for f in wdbc.features}
    assert specs["mean_radius"].unit == "pixels"
    assert specs["worst_area"].unit == "pixels^2"
    assert specs["mean_texture"].unit == "gray levels"
    assert specs["mean_smoothness"].unit == "dimensionless"
    assert specs["mean_radius"].valid_min == 0.0 and specs["mean_radius"].valid_max is None
    assert (specs["mean_smoothness"].valid_min, specs["mean_smoothness"].valid_max) == (0.0, 1.0)
    for j, spec in enumerate(wdbc.features):
        assert spec.training_min == wdbc.x[:, j].min() and spec.training_max == wdbc.x[:, j].max()
        assert spec.training_median == pytest.approx(np.median(wdbc.x[:, j]))
        # Every real case is physically valid.
        assert spec.valid_min is None or spec.training_min >= spec.valid_min
        assert spec.valid_max is None or spec.training_max <= spec.valid_max


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.write_text("\n".join(",".join(str(v) for v in r) for r in [header, *rows]) + "\n")
    return path


def _rows(n_per_class: int, classes: tuple[str, ...] = ("B", "M")) -> list[list[object]]:
    rng = np.random.default_rng(0)
    return [[*np.round(rng.uniform(1, 20, 2), 3), c] for c in classes for _ in range(n_per_class)]


def test_a_multi_class_user_file_loads(iris_csv: Path) -> None:
    data = load_tumor_csv(iris_csv, label_column="grade")
    assert data.classes == ("grade A", "grade B", "grade C")
    assert data.feature_names == ("sepal_length", "sepal_width", "petal_length", "petal_width")
    assert data.x.shape == (150, 4)
    assert data.class_counts == {"grade A": 50, "grade B": 50, "grade C": 50}
    assert data.features[0].unit == "unspecified" and data.features[0].valid_min is None
    assert data.name == "nuclei"


def test_a_binary_file_keeps_the_positive_class_second(tmp_path: Path) -> None:
    rows = [[*r[:2], {"B": "malignant", "M": "benign"}[str(r[2])]] for r in _rows(10)]
    data = load_tumor_csv(_write(tmp_path / "t.csv", ["mean_radius", "x2", "diagnosis"], rows))
    assert data.classes == ("benign", "malignant") and data.positive_class == "malignant"
    # WDBC names get WDBC units and ranges.
    assert data.features[0].unit == "pixels" and data.features[0].valid_min == 0.0
    chosen = load_tumor_csv(_write(tmp_path / "u.csv", ["a", "b", "diagnosis"], _rows(10, ("x", "y"))), positive_class="x")
    assert chosen.classes == ("y", "x")


def _violations(excinfo: pytest.ExceptionInfo[InvalidInput]) -> dict[str, str]:
    return {v.field: v.description for v in excinfo.value.violations}


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", ["a", "b", "diagnosis"], _rows(10))
    with pytest.raises(InvalidInput) as caught:
        load_tumor_csv(path, label_column="label")
    assert "label" in _violations(caught)
    with pytest.raises(InvalidInput) as caught:
        load_tumor_csv(path, feature_columns=["a", "mean_area"])
    assert _violations(caught) == {"mean_area": "feature column is missing from the file"}


def test_bad_values_are_named_by_column_and_row_without_echoing_them(tmp_path: Path) -> None:
    rows = _rows(10)
    rows[2][0] = "12.3456abc"
    rows[4][1] = ""
    rows[5][1] = "NaN"
    rows[6][0] = "inf"
    path = _write(tmp_path / "t.csv", ["a", "b", "diagnosis"], rows)
    with pytest.raises(InvalidInput) as caught:
        load_tumor_csv(path)
    assert _violations(caught) == {
        "a[row 3]": "is not a number",
        "b[row 5]": "is missing (empty or NaN)",
        "b[row 6]": "is missing (empty or NaN)",
        "a[row 7]": "is infinite",
    }
    assert "12.3456" not in str(caught.value)
    assert all("12.3456" not in v.description for v in caught.value.violations)


def test_physically_impossible_wdbc_values_are_rejected(tmp_path: Path) -> None:
    rows = _rows(10)
    rows[0][0] = -4.2
    path = _write(tmp_path / "t.csv", ["mean_radius", "b", "diagnosis"], rows)
    with pytest.raises(InvalidInput) as caught:
        load_tumor_csv(path)
    assert _violations(caught) == {"mean_radius[row 1]": "must be within [0, +inf) for mean_radius"}
    assert "4.2" not in str(caught.value)


def test_a_single_class_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", ["a", "b", "diagnosis"], _rows(12, ("M",)))
    with pytest.raises(InvalidInput, match="at least 2 classes"):
        load_tumor_csv(path)


def test_too_few_rows_for_ten_fold_cross_validation(tmp_path: Path) -> None:
    rows = _rows(12, ("B",)) + _rows(9, ("M",))
    path = _write(tmp_path / "t.csv", ["a", "b", "diagnosis"], rows)
    with pytest.raises(InvalidInput) as caught:
        load_tumor_csv(path)
    (description,) = _violations(caught).values()
    assert "'M' has 9 rows" in description and "10-fold" in description


def test_missing_labels_and_unreadable_files(tmp_path: Path) -> None:
    rows = _rows(10)
    rows[3][2] = ""
    with pytest.raises(InvalidInput) as caught:
        load_tumor_csv(_write(tmp_path / "t.csv", ["a", "b", "diagnosis"], rows))
    assert _violations(caught) == {"diagnosis[row 4]": "label is missing"}
    with pytest.raises(InvalidInput, match="no such file"):
        load_tumor_csv(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InvalidInput, match="not a readable CSV"):
        load_tumor_csv(tmp_path / "empty.csv")


def test_wdbc_feature_table_covers_all_thirty_features() -> None:
    assert len(WDBC_FEATURES) == 30
    assert {unit for unit, *_ in WDBC_FEATURES.values()} == {"pixels", "pixels^2", "gray levels", "dimensionless"}
