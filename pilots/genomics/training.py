"""Building the absolute-risk model package of one cancer: published figures in, calibrated parameters out.

Deterministic from its seed. The effect sizes are published ones
(`registry.CalibrationTargets`: OR per SD of the score, family-history
relative risks, registry risk by age, all-cause mortality); nothing is
learned from simulated outcomes. The steps:

1. A simulated reference population (genotypes from the scoring file's allele
   frequencies, through the same matching and scoring as a patient's VCF)
   gives the matched score's distribution: z and percentile.
2. The matched-variance fraction f = Var(matched) / Var(full score) under
   Hardy-Weinberg from the scoring file's frequencies (see `absolute_risk`).
3. All-cause mortality: a Gompertz curve fitted to the 10-year death table.
4. Baseline incidence at yearly knots solved so that the population-average
   risk (score ~ N(0, 1), the family-history mix) equals the registry figures
   at every integer age of the valid range (`absolute_risk.calibrate_incidence`).
5. A pipeline check only: a simulated cohort scored through the pipeline,
   outcomes drawn from the calibrated model; the effect recovered from it and
   its observed risk are reported beside what the model implies.

The package: risk_parameters.json (what GetModelInfo publishes and
`absolute_risk` reads), reference_distribution.json, score_layout.json (for
encrypted scoring), schema.json, metrics.json, a model card with plots of
risk by age and of the calibration to the registry.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from clinpred.pilots.common.model_package import ModelPackage, ModelPackageWriter, next_version
from clinpred.pilots.common.schema import FeatureSpec, ModelSchema
from clinpred.pilots.genomics.absolute_risk import (
    Z_975,
    Z_995,
    RiskParameters,
    absolute_risk,
    calibrate_incidence,
    gompertz_mortality,
    population_average_risk,
    risk_of_relative_hazards,
)
from clinpred.pilots.genomics.cohort import (
    pipeline_score_sums,
    reference_distribution,
    simulated_genotypes,
    theoretical_moments,
)
from clinpred.pilots.genomics.encrypted import score_layout
from clinpred.pilots.genomics.package_format import (
    MULTIPLICATIVE_FEATURES,
    MULTIPLICATIVE_MODEL,
    RISK_PARAMETERS_FILE,
    TRANSPARENCY_FILE,
    ScoreDistribution,
)
from clinpred.pilots.genomics.registry import CalibrationTargets, targets_for
from clinpred.pilots.genomics.scoring_file import ScoringFile, read_scoring_file
from clinpred.pilots.genomics.text_stream import TextSource

PILOT = "genomics"
OWNER = "clinpred genomics pilot"
RISK_THRESHOLDS = (0.03, 0.08)  # NICE CG164 10-year risk bands, women aged 40-50: moderate >= 3%, high >= 8%
AGE_BANDS = ((40.0, 49.0), (50.0, 59.0), (60.0, 70.0))
INTERVAL_LEVEL = 0.95
INTERVAL_DRAWS = 2000
STEP_YEARS = 0.25
CALIBRATION_TOLERANCE = 0.05  # relative, at every integer age of the valid range


def full_score_sd(scoring_file: ScoringFile) -> float:
    """SD of the full score (every variant of the file) under Hardy-Weinberg, from its allele frequencies."""
    p = scoring_file.allele_frequency
    w = scoring_file.effect_weight
    known = np.isfinite(p)
    return float(np.sqrt(np.sum(2 * p[known] * (1 - p[known]) * w[known] ** 2)))


def fit_parameters(
    targets: CalibrationTargets, pgs_id: str, reference: ScoreDistribution, matched_variance_fraction: float, seed: int
) -> RiskParameters:
    """The calibrated parameters of the multiplicative model for one cancer and score."""
    low, high = targets.valid_ages
    ages = np.arange(low, high + targets.horizon_years + 1.0)
    mortality = gompertz_mortality(
        np.asarray(targets.mortality_band_ages), np.asarray(targets.mortality_per_1000) / 1000.0, ages
    )
    unfitted = RiskParameters(
        cancer=targets.cancer, pgs_id=pgs_id, horizon_years=targets.horizon_years, step_years=STEP_YEARS,
        ages=tuple(float(a) for a in ages), baseline_incidence=tuple(np.full(len(ages), 1e-3)),
        competing_mortality=tuple(float(m) for m in mortality), log_or_per_sd=float(np.log(targets.or_per_sd)),
        log_or_per_sd_se=float((np.log(targets.or_per_sd_95_ci[1]) - np.log(targets.or_per_sd_95_ci[0])) / (2 * Z_975)),
        matched_variance_fraction=matched_variance_fraction,
        family_relative_risks=targets.family_relative_risks,
        family_log_rr_se=tuple(float((np.log(hi) - np.log(lo)) / (2 * Z_995)) for lo, hi in targets.family_rr_99_ci),
        family_history_mix=targets.family_history_mix, reference=reference, valid_ages=targets.valid_ages,
        valid_sexes=targets.valid_sexes, interval_level=INTERVAL_LEVEL, interval_draws=INTERVAL_DRAWS,
        interval_seed=seed, sources=dict(targets.sources),
    )
    calibration_ages = np.arange(low, high + 1.0)
    incidence = calibrate_incidence(unfitted, calibration_ages, targets.registry_risk(calibration_ages))
    return RiskParameters(**{**unfitted.__dict__, "baseline_incidence": tuple(float(v) for v in incidence)})


def calibration_errors(parameters: RiskParameters, targets: CalibrationTargets) -> npt.NDArray[np.float64]:
    """Relative error of the population-average risk against the registry at every integer age of the valid range."""
    low, high = parameters.valid_ages
    ages = np.arange(low, high + 1.0)
    fitted = np.array([population_average_risk(parameters, float(a)) for a in ages])
    return np.asarray(fitted / targets.registry_risk(ages) - 1.0, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class PipelineCheck:
    """The simulated women of the pipeline check: what the model predicted and what happened."""

    metrics: dict[str, float]
    predicted: npt.NDArray[np.float64]
    outcome: npt.NDArray[np.bool_]
    age: npt.NDArray[np.float64]


def _wilson(events: float, n: float) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = events / n
    centre = (p + Z_975**2 / (2 * n)) / (1 + Z_975**2 / n)
    half = Z_975 * np.sqrt(p * (1 - p) / n + Z_975**2 / (4 * n**2)) / (1 + Z_975**2 / n)
    return float(centre - half), float(centre + half)


def _operating_points(check: PipelineCheck) -> dict[str, float]:
    """At NICE CG164's 10-year risk bands for women aged 40-50 (moderate 3%, high 8%): share flagged, sensitivity, PPV."""
    points: dict[str, float] = {}
    events = max(int(check.outcome.sum()), 1)
    for threshold in RISK_THRESHOLDS:
        flagged = check.predicted >= threshold
        key = f"at_{100 * threshold:g}pct"
        points[f"operating_{key}_flagged"] = float(flagged.mean())
        points[f"operating_{key}_sensitivity"] = float((flagged & check.outcome).sum() / events)
        points[f"operating_{key}_ppv"] = float((flagged & check.outcome).sum() / max(int(flagged.sum()), 1))
    for low, high in AGE_BANDS:
        rows = (check.age >= low) & (check.age <= high)
        band = f"age_{low:g}_{high:g}"
        points[f"subgroup_{band}_observed_risk"] = float(check.outcome[rows].mean())
        points[f"subgroup_{band}_predicted_risk"] = float(check.predicted[rows].mean())
        points[f"subgroup_{band}_auroc"] = float(roc_auc_score(check.outcome[rows], check.predicted[rows]))
    return points


def _pipeline_check(
    score: ScoringFile, parameters: RiskParameters, size: int, seed: int, progress: bool
) -> PipelineCheck:
    """Simulated women scored through the pipeline, outcomes from the full-score model: what comes back out."""
    sums, _ = pipeline_score_sums(
        score, simulated_genotypes(score, size, seed, progress=progress, description=f"{score.pgs_id} pipeline check")
    )
    z = parameters.reference.standardise(sums)
    mean, sd = theoretical_moments(score)
    f = parameters.matched_variance_fraction
    rng = np.random.default_rng([seed, 1_000_003])
    z_full = np.sqrt(f) * (sums - mean) / sd + np.sqrt(1.0 - f) * rng.standard_normal(size)
    low, high = parameters.valid_ages
    age = rng.integers(int(low), int(high) + 1, size).astype(np.float64)
    relatives = rng.choice(len(parameters.family_history_mix), size, p=np.asarray(parameters.family_history_mix))
    rr = np.array([parameters.family_relative_risk(int(r)) for r in range(len(parameters.family_history_mix))])
    true_risk = np.empty(size)
    predicted = np.empty(size)
    for a in np.unique(age):
        rows = age == a
        true_risk[rows] = risk_of_relative_hazards(
            parameters, float(a), np.exp(parameters.log_or_per_sd * z_full[rows]) * rr[relatives[rows]]
        )
        for r in np.unique(relatives[rows]):
            both = rows & (relatives == r)
            predicted[both] = absolute_risk(parameters, z[both], float(a), int(r))
    outcome = rng.random(size) < true_risk
    covariates = np.column_stack([z, (age - 50.0) / 10.0, np.log(rr[relatives])])
    fitted = LogisticRegression(C=np.inf, max_iter=1000).fit(covariates, outcome)
    metrics = {
        "pipeline_check_size": float(size),
        "pipeline_check_events": float(outcome.sum()),
        "pipeline_check_observed_risk": float(outcome.mean()),
        "pipeline_check_predicted_risk": float(predicted.mean()),
        "pipeline_check_or_per_sd": float(np.exp(fitted.coef_[0][0])),
        "pipeline_check_expected_or_per_sd": float(np.exp(parameters.effective_log_hr_per_sd)),
        "pipeline_check_score_auroc": float(roc_auc_score(outcome, z)),
        "pipeline_check_z_mean": float(z.mean()),
        "pipeline_check_z_sd": float(z.std(ddof=1)),
        "pipeline_check_auroc": float(roc_auc_score(outcome, predicted)),
    }
    return PipelineCheck(metrics, predicted, outcome, age)


def train_genomics(
    scoring_file: ScoringFile | TextSource,
    *,
    cancer: str,
    models_root: Path | str = "models",
    name: str | None = None,
    version: str | None = None,
    targets: CalibrationTargets | None = None,
    cohort_size: int = 60_000,
    reference_size: int = 50_000,
    seed: int = 7,
    released: str | None = None,
    owner: str = OWNER,
    progress: bool = True,
) -> ModelPackage:
    """Calibrate, check and write `models/genomics/<name>/<version>/`; returns the opened package.

    `released`: the card's release date (ISO; default today, UTC); `owner`: who answers for the model.

    `targets`: the cancer's published figures (default: the built-in ones, breast only).
    `cohort_size`: women of the simulated pipeline check.
    """
    score = scoring_file if isinstance(scoring_file, ScoringFile) else read_scoring_file(scoring_file)
    targets = targets or targets_for(cancer)
    if targets.cancer != cancer:
        targets = CalibrationTargets(**{**targets.__dict__, "cancer": cancer})
    source_sha256 = None
    if isinstance(scoring_file, (str, Path)):
        source_sha256 = hashlib.sha256(Path(scoring_file).read_bytes()).hexdigest()
    name = name or f"{cancer}-{score.pgs_id.lower()}"
    version = version or next_version(models_root, PILOT, name)

    writer = ModelPackageWriter(models_root, PILOT, name, version)
    try:
        reference = reference_distribution(score, reference_size, seed=seed + 1, progress=progress)
        _, matched_sd = theoretical_moments(score)
        fraction = min(1.0, (matched_sd / full_score_sd(score)) ** 2)
        parameters = fit_parameters(targets, score.pgs_id, reference, fraction, seed)
        errors = calibration_errors(parameters, targets)
        metrics: dict[str, Any] = {
            "calibration_max_relative_error": float(np.max(np.abs(errors))),
            **{f"population_risk_age_{a:g}": population_average_risk(parameters, a) for a in targets.registry_ages},
            **{f"registry_risk_age_{a:g}": r for a, r in zip(targets.registry_ages, targets.registry_risks, strict=True)},
            "matched_variance_fraction": fraction,
            "published_or_per_sd": targets.or_per_sd,
            "effective_or_per_sd": float(np.exp(parameters.effective_log_hr_per_sd)),
            "variants_matched": reference.variants_matched,
            "variants_total": len(score),
        }
        check = _pipeline_check(score, parameters, cohort_size, seed, progress)
        metrics.update(check.metrics)
        metrics.update(_operating_points(check))
        low, high = targets.valid_ages
        schema = ModelSchema(
            features=(
                FeatureSpec("polygenic_score_z", "SD", "polygenic score standardised with the reference population",
                            None, None, -4.0, 4.0, 0.0),
                FeatureSpec("age", "years", "age at assessment", low, high, low, high, 50.0),
                FeatureSpec("affected_first_degree_relatives", "relatives",
                            f"first-degree relatives with {cancer} cancer", 0.0, None, 0.0, 3.0, 0.0),
            ),
            classes=("no_event", "event"),
            positive_class="event",
            extra={"cancer": cancer, "pgs_id": score.pgs_id, "horizon_years": targets.horizon_years},
        )
        writer.write_json(RISK_PARAMETERS_FILE, parameters.to_json())
        writer.write_json("schema.json", schema.to_json())
        writer.write_json("metrics.json", metrics)
        writer.write_json("reference_distribution.json", reference.to_json())
        writer.write_json("score_layout.json", score_layout(score).to_json())
        writer.write_json("calibration_targets.json", targets.to_json())
        _plots(parameters, targets, check, writer.path("risk_by_age.png"), writer.path("calibration.png"))
        released = released or datetime.now(UTC).date().isoformat()
        transparency = transparency_attributes(name, version, score, parameters, metrics, released, owner)
        writer.write_json(TRANSPARENCY_FILE, transparency)
        writer.write_text("MODEL_CARD.md", _model_card(name, version, score, parameters, targets, metrics, seed,
                                                        reference_size, cohort_size, transparency))
        package_metadata = {
            "cancer": cancer,
            "risk_model": MULTIPLICATIVE_MODEL,
            "pgs_id": score.pgs_id,
            "pgs_name": score.header.pgs_name,
            "scoring_file": score.name,
            "scoring_file_sha256": source_sha256,
            "genome_build": score.build,
            "horizon_years": targets.horizon_years,
            "features": list(MULTIPLICATIVE_FEATURES),
            "seed": seed,
            "versions": _library_versions(),
            "python": platform.python_version(),
        }
        return writer.finish(package_metadata)
    except BaseException:
        writer.abandon()
        raise


def _plots(parameters: RiskParameters, targets: CalibrationTargets, check: PipelineCheck, by_age: Path,
           calibration: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    low, high = parameters.valid_ages
    ages = np.arange(low, high + 0.5, 0.5)
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    for z in (-2.0, -1.0, 0.0, 1.0, 2.0):
        axis.plot(ages, [100 * float(absolute_risk(parameters, z, float(a), 0)) for a in ages], label=f"z = {z:+g}")
    axis.set_xlabel("age (years)")
    axis.set_ylabel(f"{parameters.horizon_years:g}-year risk (%)")
    axis.set_title(f"{parameters.cancer} cancer, no affected relative, by polygenic score z")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(by_age, dpi=100)
    plt.close(figure)

    whole = np.arange(low, high + 1.0)
    figure, (axis, deciles) = plt.subplots(1, 2, figsize=(11, 4.2))
    registry = 100 * targets.registry_risk(whole)
    axis.fill_between(whole, registry * (1 - CALIBRATION_TOLERANCE), registry * (1 + CALIBRATION_TOLERANCE), alpha=0.2,
                      label="registry, interpolated, +/- 5%")
    axis.plot(targets.registry_ages, 100 * np.asarray(targets.registry_risks), "o", label="registry (published)")
    axis.plot(whole, [100 * population_average_risk(parameters, float(a)) for a in whole], "-",
              label="model, population average")
    axis.set_xlabel("age (years)")
    axis.set_ylabel(f"{parameters.horizon_years:g}-year risk (%)")
    axis.set_title("calibration to the registry (published figures)")
    axis.legend()
    axis.grid(alpha=0.3)
    # The pipeline check by tenth of predicted risk, with 95% Wilson intervals (simulation).
    order = np.argsort(check.predicted, kind="stable")
    groups = np.array_split(order, 10)
    predicted = np.array([100 * check.predicted[g].mean() for g in groups])
    observed = np.array([100 * check.outcome[g].mean() for g in groups])
    bounds = np.array([_wilson(float(check.outcome[g].sum()), len(g)) for g in groups]) * 100
    # Rounding can put a Wilson bound a hair past the observed share (no events in a tenth).
    spread = np.clip([observed - bounds[:, 0], bounds[:, 1] - observed], 0.0, None)
    deciles.errorbar(predicted, observed, yerr=spread, fmt="o", capsize=3, label="observed, 95% CI")
    top = float(max(predicted.max(), bounds.max())) * 1.05
    deciles.plot([0, top], [0, top], "--", color="grey", label="ideal")
    deciles.set_xlim(0, top)
    deciles.set_ylim(0, top)
    deciles.set_xlabel("predicted risk (%), tenths")
    deciles.set_ylabel("observed risk (%)")
    deciles.set_title(f"pipeline check: {len(check.outcome)} simulated women")
    deciles.legend()
    deciles.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(calibration, dpi=100)
    plt.close(figure)


def transparency_attributes(name: str, version: str, score: ScoringFile, p: RiskParameters, metrics: dict[str, Any],
                            released: str, owner: str) -> dict[str, str]:
    """Source attributes of a predictive decision-support intervention (ONC HTI-1, 45 CFR 170.315(b)(11)), as text."""
    low, high = p.valid_ages
    sexes = " or ".join(p.valid_sexes)
    return {
        "name": name,
        "version": version,
        "release_date": released,
        "developer": owner,
        "funding_source": "none declared",
        "intended_use": f"{p.horizon_years:g}-year absolute risk of a first {p.cancer} cancer, to inform screening and"
                        " referral decisions in genetics units (decision support, not a diagnosis)",
        "intended_users": "clinical geneticists, genetic counsellors, breast clinics",
        "intended_patient_population": f"{sexes} people aged {low:g}-{high:g} of European ancestry without {p.cancer} cancer",
        "cautioned_out_of_scope_use": f"ages outside {low:g}-{high:g} or another sex (refused); other ancestries;"
                                      " people with a known pathogenic variant (BRCA1/2 and similar) or prior cancer",
        "input_features": f"polygenic score {score.pgs_id} (z in the reference population), age, affected"
                          " first-degree relatives",
        "output": "absolute risk with 95% interval, percentile, population-average risk, exact log-hazard terms",
        "target_outcome": f"first invasive {p.cancer} cancer within {p.horizon_years:g} years, death from other causes"
                          " as a competing risk",
        "model_type": "multiplicative hazard (baseline incidence x score relative risk x family relative risk)",
        "training_data": "none fitted to outcomes: published effect sizes and registry figures (see sources);"
                         " simulated genotypes only for the score's reference distribution",
        "training_data_demographics": "reference genotypes from the scoring file's effect-allele frequencies"
                                      " (European ancestry)",
        "effect_size_sources": "; ".join(f"{k}: {v}" for k, v in sorted(p.sources.items())),
        "external_validation": "none on real outcomes in this project; PRS313 was validated by Mavaddat et al. 2019",
        "performance_measures": f"calibration to the registry within {100 * metrics['calibration_max_relative_error']:.1f}%"
                                f" at every age {low:g}-{high:g}; simulated pipeline check AUROC"
                                f" {metrics['pipeline_check_auroc']:.3f}",
        "fairness": "not assessed on real data; the score's distribution and effect are for European ancestry",
        "uncertainty": f"{100 * p.interval_level:g}% interval by simulation of the published CIs and the unmeasured"
                       " part of the score",
        "update_schedule": "on a new registry table, a new published effect size or a new score version",
        "monitoring": "per release: registry calibration at every age, smoothness checks; in use: observed incidence"
                      " against predicted by age band where outcomes are followed",
    }


def _library_versions() -> dict[str, str]:
    import importlib

    versions = {}
    for module in ("numpy", "scipy", "scikit-learn", "tenseal"):
        try:
            versions[module] = str(importlib.import_module(module.replace("scikit-learn", "sklearn")).__version__)
        except (ImportError, AttributeError):
            versions[module] = "unknown"
    return versions


def _model_card(name: str, version: str, score: ScoringFile, p: RiskParameters, targets: CalibrationTargets,
                metrics: dict[str, Any], seed: int, reference_size: int, cohort_size: int,
                transparency: dict[str, str]) -> str:
    low, high = p.valid_ages
    registry_rows = "\n".join(
        f"| {a:g} | {100 * r:.2f}% | {100 * metrics[f'population_risk_age_{a:g}']:.2f}% |"
        for a, r in zip(targets.registry_ages, targets.registry_risks, strict=True)
    )
    family = ", ".join(
        f"{k + 1}{'+' if k + 1 == len(p.family_relative_risks) else ''}: {rr:g} (99% CI {lo:g}-{hi:g})"
        for k, (rr, (lo, hi)) in enumerate(zip(p.family_relative_risks, targets.family_rr_99_ci, strict=True))
    )
    mix = ", ".join(f"{k}: {100 * share:.3f}%" for k, share in enumerate(p.family_history_mix))
    sources = "\n".join(f"- {key}: {value}" for key, value in sorted(p.sources.items()))
    validity = targets.sources.get("valid_ages", "the published figures cover only these")
    operating = "\n".join(
        f"| {100 * t:g}% | {100 * metrics[f'operating_at_{100 * t:g}pct_flagged']:.1f}% |"
        f" {100 * metrics[f'operating_at_{100 * t:g}pct_sensitivity']:.1f}% |"
        f" {100 * metrics[f'operating_at_{100 * t:g}pct_ppv']:.1f}% |"
        for t in RISK_THRESHOLDS
    )
    subgroups = "\n".join(
        f"| {a:g}-{b:g} | {100 * metrics[f'subgroup_age_{a:g}_{b:g}_predicted_risk']:.2f}% |"
        f" {100 * metrics[f'subgroup_age_{a:g}_{b:g}_observed_risk']:.2f}% | {metrics[f'subgroup_age_{a:g}_{b:g}_auroc']:.3f} |"
        for a, b in AGE_BANDS
    )
    attributes = "\n".join(f"| {key} | {value} |" for key, value in transparency.items())
    or_low, or_high = targets.or_per_sd_95_ci
    return f"""# {name} {version}: {p.horizon_years:g}-year absolute risk of {p.cancer} cancer

Released {transparency['release_date']}; owner: {transparency['developer']}.

## Intended use
Absolute risk of a first {p.cancer} cancer within {p.horizon_years:g} years for
{' or '.join(p.valid_sexes)} people aged {low:g}-{high:g}, from the polygenic score {score.pgs_id}
({score.header.pgs_name}, {score.header.trait_reported}) and the number of affected first-degree
relatives. Decision support for genetics units; not a diagnosis. Outside {low:g}-{high:g} years or for
another sex the service answers FAILED_PRECONDITION: {validity}.

## Model (multiplicative hazard, as CanRisk/BOADICEA and Tyrer-Cuzick/IBIS use a polygenic score)
hazard(t) = baseline incidence(t) x exp(beta x sqrt(f) x z) x RR_family(relatives), with death from any
cause as a competing risk, integrated over the horizon in {p.step_years:g}-year steps.
Explanations are the model's exact terms on the log cumulative-hazard scale.

## Which figures come from where
From publications (not fitted here):
- OR per SD of the score {targets.or_per_sd:g} (95% CI {or_low:g}-{or_high:g}): beta = ln {targets.or_per_sd:g}.
- Family history relative risks, by affected first-degree relatives: {family}.
- Registry {p.horizon_years:g}-year risks by age (calibration targets) and all-cause mortality by age.

Assumptions:
- Population mix of affected relatives (0, 1, 2, 3+): {mix}.
- Score variants independent (Hardy-Weinberg, no linkage): f = {p.matched_variance_fraction:.4f}, the share of the
  full score's variance in the {metrics['variants_matched']} of {metrics['variants_total']} variants matched
  (strand-ambiguous ones excluded as pgsc_calc does); effective OR per SD of the score as matched
  {metrics['effective_or_per_sd']:.4f}.
- The youngest relative's age at diagnosis is not used: the published statement (a larger relative risk when the
  relative was diagnosed young) gives no age-specific figures within {low:g}-{high:g} to build on.

Fitted here (deterministic): baseline incidence at yearly knots, so that the population-average risk equals the
registry at every integer age {low:g}-{high:g} (largest relative error {100 * metrics['calibration_max_relative_error']:.2f}%,
tolerance 5%); Gompertz all-cause mortality fitted to the 10-year death table.

From simulation (seed {seed}): the reference distribution of the matched score ({reference_size} simulated genotypes,
for z and percentile), and a pipeline check only (below).

| age | registry | model, population average |
|---|---|---|
{registry_rows}

![calibration to the registry](calibration.png)

![risk by age](risk_by_age.png)

## Uncertainty
{100 * p.interval_level:g}% interval by simulation ({p.interval_draws} draws, seed {p.interval_seed}): the OR per SD
(log-normal from its 95% CI), the family relative risks (log-normal from their 99% CIs), and the part of the score
not measured for the person (unmatched variants and imputed genotypes, normal with the unmeasured variance share).
Each draw keeps the population average at the registry's level.

## Pipeline check (simulation, not a validation)
{cohort_size} simulated women scored through the same matching and scoring as a VCF, outcomes drawn from the model:
OR per SD recovered {metrics['pipeline_check_or_per_sd']:.3f} (the model implies
{metrics['pipeline_check_expected_or_per_sd']:.3f}), AUROC of the score alone {metrics['pipeline_check_score_auroc']:.3f},
observed risk {metrics['pipeline_check_observed_risk']:.4f} against predicted {metrics['pipeline_check_predicted_risk']:.4f}
({int(metrics['pipeline_check_events'])} events); z mean {metrics['pipeline_check_z_mean']:+.3f}, SD
{metrics['pipeline_check_z_sd']:.3f}.

Operating points at NICE CG164's 10-year risk bands (moderate from 3%, high from 8%; simulation):

| threshold | flagged | sensitivity | PPV |
|---|---|---|---|
{operating}

By age band (simulation; sex: the model is for women only):

| age | predicted | observed | AUROC |
|---|---|---|---|
{subgroups}

## Limitations
Not validated on real outcomes here: absolute risks are as good as the registry figures, the published effect sizes
and the multiplicative (no interaction) form. Allele frequencies are those of the scoring file's population (European
ancestry); percentiles and risks do not transfer to other ancestries. Family history enters as a relative risk, not
through a pedigree (a genetic model) as BOADICEA does; it partly overlaps with the polygenic score, which this
form ignores.

## Monitoring plan
Each release is checked against the registry at every integer age of the valid range (within 5%) and for smoothness
in score, age and relatives (tests). In use, where outcomes are followed, observed incidence against predicted by age
band and by tenth of predicted risk, yearly; a new registry table, effect size or score version means a new package.

## Change log
- {version}: multiplicative hazard model calibrated to registry figures, competing mortality, published effect sizes,
  number of affected relatives, valid for {' or '.join(p.valid_sexes)} people aged {low:g}-{high:g}, interval from
  the published CIs and the unmeasured part of the score.
- breast-pgs000004 1.1.0 and earlier: XGBoost on score, age, sex and family history (yes/no), trained on a simulated
  cohort; still loadable and selectable.

## Transparency attributes (ONC HTI-1; also in GetModelInfo)
| attribute | value |
|---|---|
{attributes}

## Sources
{sources}
"""
