"""Tumour feature data sets: the Wisconsin Diagnostic Breast Cancer data and users' own files.

WDBC (569 real patients, Wolberg, Street and Mangasarian, 1995) holds 30
features computed from a digitized image of a fine-needle aspirate of a
breast mass: for each of ten properties of the cell nuclei, the mean, the
standard error and the "worst" (mean of the three largest values) over the
nuclei in the image.

Units: the data set's documentation gives none. Sizes are measured on the
digitized image, so radius and perimeter are in pixels and area in pixels^2,
not millimetres; texture is a standard deviation of gray-scale values (gray
levels); the shape features are dimensionless ratios or counts normalised by
the contour. Physically valid ranges only encode what the definitions imply
(sizes and spreads are non-negative; smoothness and fractal dimension lie in
[0, 1]); the rest is left open rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clinpred.pilots.common.errors import InvalidInput, ViolationCollector
from clinpred.pilots.common.schema import FeatureSpec, interval_text

POSITIVE_CLASS = "malignant"
WDBC_CLASSES = ("benign", "malignant")
# A column of case identifiers, as in the CSVs `clinpred call tumor batch|stream` read: never a feature.
CASE_ID_COLUMN = "case_id"
MIN_ROWS_PER_CLASS = 10  # one per fold of stratified 10-fold cross-validation

# property -> (unit of the mean/worst value, description, valid_min, valid_max)
_PROPERTIES: dict[str, tuple[str, str, float | None, float | None]] = {
    "radius": ("pixels", "mean distance from the nucleus centre to points on its contour", 0.0, None),
    "texture": ("gray levels", "standard deviation of gray-scale values inside the nucleus", 0.0, None),
    "perimeter": ("pixels", "length of the nucleus contour", 0.0, None),
    "area": ("pixels^2", "area inside the nucleus contour", 0.0, None),
    "smoothness": ("dimensionless", "local variation in radius lengths, relative to the radius", 0.0, 1.0),
    "compactness": ("dimensionless", "perimeter^2 / area - 1.0, as scaled in WDBC", 0.0, None),
    "concavity": ("dimensionless", "severity of concave portions of the contour", 0.0, None),
    "concave_points": ("dimensionless", "number of concave portions of the contour, normalised", 0.0, None),
    "symmetry": ("dimensionless", "difference between chords perpendicular to the major axis", 0.0, None),
    "fractal_dimension": ("dimensionless", '"coastline approximation" of the contour - 1', 0.0, 1.0),
}
_STATS = {
    "mean": "mean over the nuclei in the image of the {what}",
    "error": "standard error over the nuclei in the image of the {what}",
    "worst": "mean of the three largest values over the nuclei in the image of the {what}",
}


def _wdbc_specs() -> dict[str, tuple[str, str, float | None, float | None]]:
    """Feature name -> (unit, description, valid_min, valid_max), in scikit-learn's column order."""
    specs = {}
    for stat in ("mean", "error", "worst"):
        for prop, (unit, what, lo, hi) in _PROPERTIES.items():
            # scikit-learn calls the standard-error block "<property> error".
            name = f"{prop}_error" if stat == "error" else f"{stat}_{prop}"
            specs[name] = (unit, _STATS[stat].format(what=what), lo, hi)
    return specs


WDBC_FEATURES: dict[str, tuple[str, str, float | None, float | None]] = _wdbc_specs()


@dataclass(frozen=True)
class TumorDataset:
    """Features `x[n, d]` (float64) and class indices `y[n]` into `classes`.

    `features` carry units, valid ranges and the training range/median of
    this very data, so a model trained on it can write its schema directly.
    For binary data the positive class is last (index 1).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    positive_class: str
    features: tuple[FeatureSpec, ...]
    source: str

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.y, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts, strict=True)}


def snake_case(name: str) -> str:
    """ "mean concave points" -> "mean_concave_points"."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def _feature_specs(x: np.ndarray, names: Sequence[str]) -> tuple[FeatureSpec, ...]:
    specs = []
    for j, name in enumerate(names):
        unit, description, lo, hi = WDBC_FEATURES.get(name, ("unspecified", "user-supplied feature", None, None))
        column = x[:, j]
        specs.append(
            FeatureSpec(
                name=name,
                unit=unit,
                description=description,
                valid_min=lo,
                valid_max=hi,
                training_min=float(column.min()),
                training_max=float(column.max()),
                training_median=float(np.median(column)),
            )
        )
    return tuple(specs)


def load_wdbc() -> TumorDataset:
    """WDBC from scikit-learn, relabelled so that 1 = malignant (scikit-learn uses 0 = malignant)."""
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer()
    names = [snake_case(n) for n in raw.feature_names]
    if tuple(names) != tuple(WDBC_FEATURES):
        raise RuntimeError("scikit-learn's WDBC columns changed; update WDBC_FEATURES")
    x = np.asarray(raw.data, dtype=np.float64)
    malignant = list(raw.target_names).index("malignant")
    y = (np.asarray(raw.target) == malignant).astype(np.int64)
    return TumorDataset(
        name="wdbc",
        x=x,
        y=y,
        classes=WDBC_CLASSES,
        positive_class=POSITIVE_CLASS,
        features=_feature_specs(x, names),
        source="scikit-learn load_breast_cancer (UCI Breast Cancer Wisconsin (Diagnostic), 569 patients)",
    )


def _order_classes(labels: Sequence[str], positive_class: str | None) -> tuple[tuple[str, ...], str]:
    classes = sorted(set(labels))
    if positive_class is None:
        positive_class = POSITIVE_CLASS if POSITIVE_CLASS in classes else classes[-1]
    if positive_class not in classes:
        raise InvalidInput(f"positive class {positive_class!r} is not among the labels")
    if len(classes) == 2:
        # Binary models output P(class 1); keep the positive class there.
        classes = [c for c in classes if c != positive_class] + [positive_class]
    return tuple(classes), positive_class


def load_tumor_csv(
    path: Path | str,
    label_column: str = "diagnosis",
    feature_columns: Sequence[str] | None = None,
    *,
    positive_class: str | None = None,
    name: str | None = None,
) -> TumorDataset:
    """A user's own table of tumour features: one row per case, a label column and numeric features.

    Column names are turned into snake_case feature names (WDBC names get
    WDBC units and valid ranges). Without `feature_columns`, every column but
    the label and a `case_id` column (the identifier the call commands' CSVs
    have) is a feature. Any number (>= 2) of classes; every class needs at
    least 10 rows for stratified 10-fold cross-validation. Problems are
    reported all at once, by column and row (1-based data rows, the header
    not counted), never echoing a value.
    """
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path.name} is not a readable CSV file ({type(exc).__name__})") from None
    frame.columns = [str(c).strip() for c in frame.columns]

    problems = ViolationCollector()
    if label_column not in frame.columns:
        problems.add(label_column, "label column is missing from the file")
    not_features = (label_column, CASE_ID_COLUMN)
    columns = list(feature_columns) if feature_columns is not None else [c for c in frame.columns if c not in not_features]
    for column in columns:
        if column not in frame.columns:
            problems.add(column, "feature column is missing from the file")
    if not columns:
        problems.add("feature_columns", "no feature columns")
    problems.raise_if_any()

    names = [snake_case(c) for c in columns]
    seen: dict[str, str] = {}
    for column, feature in zip(columns, names, strict=True):
        if not feature:
            problems.add(column, "column name has no letters or digits")
        elif feature in seen:
            problems.add(column, f"clashes with column {seen[feature]!r} as feature name {feature!r}")
        seen.setdefault(feature, column)
    problems.raise_if_any()

    x = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, (column, feature) in enumerate(zip(columns, names, strict=True)):
        text = frame[column].str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        empty = (text == "").to_numpy()
        unparsed = np.isnan(values) & ~empty & ~text.str.lower().isin(["nan", "na", "n/a", "null"]).to_numpy()
        missing = np.isnan(values) & ~unparsed
        for row in np.flatnonzero(unparsed)[:20]:
            problems.add(f"{column}[row {row + 1}]", "is not a number")
        for row in np.flatnonzero(missing)[:20]:
            problems.add(f"{column}[row {row + 1}]", "is missing (empty or NaN)")
        for row in np.flatnonzero(np.isinf(values))[:20]:
            problems.add(f"{column}[row {row + 1}]", "is infinite")
        if feature in WDBC_FEATURES:
            _, _, lo, hi = WDBC_FEATURES[feature]
            low = -np.inf if lo is None else lo
            high = np.inf if hi is None else hi
            outside = np.isfinite(values) & ((values < low) | (values > high))
            for row in np.flatnonzero(outside)[:20]:
                problems.add(f"{column}[row {row + 1}]", f"must be within {interval_text(low, high)} for {feature}")
        x[:, j] = values

    labels = frame[label_column].str.strip() if label_column in frame.columns else pd.Series([], dtype=str)
    for row in np.flatnonzero((labels == "").to_numpy())[:20]:
        problems.add(f"{label_column}[row {row + 1}]", "label is missing")
    problems.raise_if_any()

    label_list = labels.tolist()
    if len(set(label_list)) < 2:
        problems.add(label_column, f"needs at least 2 classes, found {len(set(label_list))}")
        problems.raise_if_any()
    classes, positive = _order_classes(label_list, positive_class)
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[label] for label in label_list], dtype=np.int64)
    counts = np.bincount(y, minlength=len(classes))
    for cls, count in zip(classes, counts, strict=True):
        if count < MIN_ROWS_PER_CLASS:
            problems.add(
                label_column,
                f"class {cls!r} has {count} rows; stratified 10-fold cross-validation needs at least "
                f"{MIN_ROWS_PER_CLASS} per class",
            )
    problems.raise_if_any()

    return TumorDataset(
        name=name or snake_case(path.stem) or "tumor",
        x=x,
        y=y,
        classes=classes,
        positive_class=positive,
        features=_feature_specs(x, names),
        source=f"user file {path.name}",
    )
