"""Training the absolute-risk model of one cancer: score + age + sex + family history -> risk over a horizon.

Deterministic from its seed: a reference population gives the score's
distribution (standardisation, percentiles), a simulated cohort gives
outcomes (`cohort`), and an XGBoost model with monotone constraints (risk
never falls as score, age or family history rise) is fitted on 60% of it,
Platt-calibrated on 20% (`pilots/common/calibration.py`) and evaluated on
the last 20%. The package holds everything a predictor or an encrypted-scoring
client needs: model.onnx (served), the native booster (TreeSHAP),
calibration with the covariance of its two parameters (risk intervals),
the score's reference distribution, the published variant layout for
encrypted scoring, schema, metrics and a model card with a SHAP summary plot.
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from clinpred.pilots.common.calibration import brier_score, expected_calibration_error, fit_calibrator
from clinpred.pilots.common.explanation import treeshap_contributions
from clinpred.pilots.common.model_package import ModelPackage, ModelPackageWriter, next_version
from clinpred.pilots.common.onnx import max_parity_error, onnx_session
from clinpred.pilots.common.schema import FeatureSpec, ModelSchema
from clinpred.pilots.genomics.cohort import OutcomeModel, reference_distribution, simulate_cohort
from clinpred.pilots.genomics.encrypted import score_layout
from clinpred.pilots.genomics.package_format import FEATURES, ONNX_INPUT, onnx_probabilities
from clinpred.pilots.genomics.scoring_file import ScoringFile, read_scoring_file
from clinpred.pilots.genomics.text_stream import TextSource

PILOT = "genomics"
PARITY_TOLERANCE = 1e-5
INTERVAL_LEVEL = 0.95


def _platt_covariance(raw: npt.NDArray[np.float64], y: npt.NDArray[np.int64], slope: float,
                      intercept: float) -> list[list[float]]:
    """Covariance of the Platt (slope, intercept) estimate from the Fisher information; gives risk intervals."""
    logit = np.log(np.clip(raw, 1e-12, 1 - 1e-12)) - np.log1p(-np.clip(raw, 1e-12, 1 - 1e-12))
    p = 1.0 / (1.0 + np.exp(-(slope * logit + intercept)))
    design = np.column_stack([logit, np.ones_like(logit)])
    information = design.T @ (design * (p * (1 - p))[:, None])
    return [[float(v) for v in row] for row in np.linalg.inv(information)]


def _features(z: npt.NDArray[np.float64], age: npt.NDArray[np.float64], male: npt.NDArray[np.bool_],
              family_history: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    return np.column_stack([z, age, male.astype(float), family_history.astype(float)]).astype(np.float32)


class _Progress:
    """An XGBoost callback that advances a tqdm bar per boosting round."""

    def __init__(self, rounds: int, enabled: bool) -> None:
        import xgboost as xgb

        bar = tqdm(total=rounds, desc="boosting", unit="tree", disable=not enabled)

        class Callback(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                bar.update(1)
                return False

            def after_training(self, model: Any) -> Any:
                bar.close()
                return model

        self.callback = Callback()


def _onnx_bytes(model: Any) -> bytes:
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    onnx_model = convert_xgboost(model, initial_types=[(ONNX_INPUT, FloatTensorType([None, len(FEATURES)]))],
                                 target_opset=15)
    onnx_model.graph.name = "genomics_xgboost"  # the converter's random name would make exports differ
    return bytes(onnx_model.SerializeToString())


def _shap_summary_png(values: npt.NDArray[np.float64], x: npt.NDArray[np.float32], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    plt.figure()
    shap.summary_plot(values, x, feature_names=list(FEATURES), show=False, rng=np.random.default_rng(0))
    plt.title("SHAP (log-odds) of the absolute-risk model")
    plt.tight_layout()
    plt.savefig(path, dpi=100)
    plt.close("all")


def train_genomics(
    scoring_file: ScoringFile | TextSource,
    *,
    cancer: str,
    models_root: Path | str = "models",
    name: str | None = None,
    version: str | None = None,
    cohort_size: int = 120_000,
    reference_size: int = 50_000,
    seed: int = 7,
    outcome_model: OutcomeModel | None = None,
    n_estimators: int = 150,
    progress: bool = True,
) -> ModelPackage:
    """Train, evaluate and write `models/genomics/<name>/<version>/`; returns the opened package."""
    import xgboost as xgb

    score = scoring_file if isinstance(scoring_file, ScoringFile) else read_scoring_file(scoring_file)
    source_sha256 = None
    if isinstance(scoring_file, (str, Path)):
        source_sha256 = hashlib.sha256(Path(scoring_file).read_bytes()).hexdigest()
    model_spec = outcome_model or OutcomeModel()
    name = name or f"{cancer}-{score.pgs_id.lower()}"
    version = version or next_version(models_root, PILOT, name)

    writer = ModelPackageWriter(models_root, PILOT, name, version)
    try:
        reference = reference_distribution(score, reference_size, seed=seed + 1, progress=progress)
        cohort = simulate_cohort(score, cohort_size, seed=seed, model=model_spec, progress=progress)
        z = reference.standardise(cohort.score_sum)
        x = _features(z, cohort.age, cohort.male, cohort.family_history)
        y = cohort.outcome.astype(np.int64)
        order = np.random.default_rng([seed, 17]).permutation(len(y))
        train, calibration, test = np.split(order, [int(0.6 * len(y)), int(0.8 * len(y))])

        model = xgb.XGBClassifier(
            n_estimators=n_estimators, max_depth=3, learning_rate=0.05, subsample=0.8, min_child_weight=20,
            monotone_constraints=(1, 1, 0, 1), tree_method="hist", n_jobs=1, random_state=seed,
            callbacks=[_Progress(n_estimators, progress).callback],
        )
        model.fit(x[train], y[train])
        raw_calibration = model.predict_proba(x[calibration])
        calibrator = fit_calibrator(raw_calibration, y[calibration])
        covariance = _platt_covariance(raw_calibration[:, 1], y[calibration], calibrator.slope, calibrator.intercept)

        onnx = _onnx_bytes(model)
        session = onnx_session(onnx)
        native_test = model.predict_proba(x[test])
        onnx_test = onnx_probabilities(session, x[test])
        parity = max_parity_error(onnx_test, native_test, PARITY_TOLERANCE)
        calibrated = calibrator.apply(onnx_test)

        women = test[~cohort.male[test]]
        adjusted = LogisticRegression(C=np.inf, max_iter=1000).fit(
            np.column_stack([z[women], (cohort.age[women] - 50) / 10, cohort.family_history[women]]), y[women])
        metrics = {
            "test_size": len(test),
            "test_events": int(y[test].sum()),
            "auroc": float(roc_auc_score(y[test], calibrated[:, 1])),
            "brier": brier_score(calibrated, y[test]),
            "expected_calibration_error": expected_calibration_error(calibrated, y[test]),
            "mean_predicted_risk": float(calibrated[:, 1].mean()),
            "observed_risk": float(y[test].mean()),
            "score_only_auroc_women": float(roc_auc_score(y[women], z[women])),
            "odds_ratio_per_sd_women_adjusted": float(np.exp(adjusted.coef_[0][0])),
            "published_odds_ratio_per_sd": model_spec.or_per_sd,
            "onnx_native_max_abs_diff": parity,
            "variants_matched": reference.variants_matched,
            "variants_total": len(score),
        }

        shap_rows = x[test][:2000]
        shap_values = treeshap_contributions(model, shap_rows).values[:, 0, :]
        schema = ModelSchema(
            features=(
                FeatureSpec("polygenic_score_z", "SD", "polygenic score standardised with the reference population",
                            None, None, float(x[train, 0].min()), float(x[train, 0].max())),
                FeatureSpec("age", "years", "age at assessment", 18.0, 100.0, *model_spec.age_range),
                FeatureSpec("male", "1 = male", "sex (0 female, 1 male)", 0.0, 1.0, 0.0, 1.0),
                FeatureSpec("family_history", "1 = yes", f"first-degree relative with {cancer} cancer", 0.0, 1.0, 0.0, 1.0),
            ),
            classes=("no_event", "event"),
            positive_class="event",
            extra={"cancer": cancer, "pgs_id": score.pgs_id, "horizon_years": model_spec.horizon_years},
        )
        writer.write_bytes("model.onnx", onnx)
        model.get_booster().save_model(str(writer.path("booster.json")))
        writer.write_json("calibration.json", {**calibrator.to_json(), "covariance": covariance,
                                               "interval_level": INTERVAL_LEVEL})
        writer.write_json("schema.json", schema.to_json())
        writer.write_json("metrics.json", metrics)
        writer.write_json("reference_distribution.json", reference.to_json())
        writer.write_json("score_layout.json", score_layout(score).to_json())
        _shap_summary_png(shap_values, shap_rows, writer.path("shap_summary.png"))
        writer.write_text("MODEL_CARD.md", _model_card(name, version, cancer, score, model_spec, metrics, seed,
                                                        cohort_size, reference_size))
        package_metadata = {
            "cancer": cancer,
            "pgs_id": score.pgs_id,
            "pgs_name": score.header.pgs_name,
            "scoring_file": score.name,
            "scoring_file_sha256": source_sha256,
            "genome_build": score.build,
            "horizon_years": model_spec.horizon_years,
            "family_history_prevalence": model_spec.family_history_prevalence,
            "features": list(FEATURES),
            "onnx_input": ONNX_INPUT,
            "seed": seed,
            "versions": _library_versions(),
            "python": platform.python_version(),
        }
        return writer.finish(package_metadata)
    except BaseException:
        writer.abandon()
        raise


def _library_versions() -> dict[str, str]:
    import importlib

    versions = {}
    for module in ("xgboost", "onnxmltools", "onnxruntime", "numpy", "tenseal", "shap"):
        try:
            versions[module] = str(importlib.import_module(module).__version__)
        except (ImportError, AttributeError):
            versions[module] = "unknown"
    return versions


def _model_card(name: str, version: str, cancer: str, score: ScoringFile, spec: OutcomeModel,
                metrics: dict[str, Any], seed: int, cohort_size: int, reference_size: int) -> str:
    return f"""# {name} {version}: {spec.horizon_years:g}-year absolute risk of {cancer} cancer

## Intended use
Absolute risk of a first {cancer} cancer within {spec.horizon_years:g} years for adults aged
{spec.age_range[0]:g}-{spec.age_range[1]:g}, combining the polygenic score {score.pgs_id}
({score.header.pgs_name}, {score.header.trait_reported}) with age, sex and family history.
Decision support for genetics units; not a diagnosis. Answers carry a 95% interval,
the score's percentile, the variant overlap and imputation counts.

## Data
Simulated, deterministic (seed {seed}): {reference_size} reference genotypes for the score's
distribution and a cohort of {cohort_size} with genotypes drawn from the scoring file's
effect-allele frequencies (Hardy-Weinberg, no linkage) and outcomes from a logistic model
with the published odds ratio per SD ({spec.or_per_sd}), baseline {spec.horizon_years:g}-year risk
{spec.baseline_risk} at age 50, OR {spec.or_per_decade} per decade of age, OR {spec.or_family_history} for
family history (prevalence {spec.family_history_prevalence}), OR {spec.or_male} for men.
Scores use {metrics['variants_matched']} of {metrics['variants_total']} variants (strand-ambiguous
variants excluded, as pgsc_calc does by default).

## Model
XGBoost (monotone in score, age and family history), Platt-calibrated on a held-out 20%,
served as ONNX (max |ONNX - native| = {metrics['onnx_native_max_abs_diff']:.2g}); native booster kept for
TreeSHAP. Intervals: delta method on the Platt parameters' covariance.

## Metrics (held-out 20%, {metrics['test_size']} people, {metrics['test_events']} events)
| metric | value |
|---|---|
| AUROC | {metrics['auroc']:.3f} |
| Brier | {metrics['brier']:.4f} |
| ECE | {metrics['expected_calibration_error']:.4f} |
| mean predicted / observed risk | {metrics['mean_predicted_risk']:.4f} / {metrics['observed_risk']:.4f} |
| score-only AUROC, women | {metrics['score_only_auroc_women']:.3f} |
| OR per SD, women, adjusted | {metrics['odds_ratio_per_sd_women_adjusted']:.3f} (published {spec.or_per_sd}) |

![SHAP summary](shap_summary.png)

## Limitations
Trained on simulated data reproducing published effect sizes, not on real outcomes:
absolute risks are only as good as the assumed incidence. Allele frequencies are those of
the scoring file's population (European ancestry for most PGS Catalog scores); percentiles
and risks do not transfer to other ancestries. Linkage between variants is ignored.
"""
