"""Absolute risk of a first cancer over a horizon from published parameters: the multiplicative hazard model.

The form risk tools with a polygenic score share (BOADICEA/CanRisk, Tyrer-Cuzick/IBIS):

    hazard(t) = baseline_incidence(t) x exp(beta x z) x RR_family(relatives)

with death from all other causes `competing_mortality(t)` as a competing risk.
The absolute risk of a person aged `a` is the probability of a diagnosis in
[a, a + horizon) while alive, integrated in steps of `step_years`
(hazards piecewise log-linear between yearly knots, evaluated at each step's
midpoint; within a step both hazards are constant, so the step's share of
events is exact: lambda / (lambda + mu) x (1 - exp(-(lambda + mu) dt))).

`RiskParameters` is a typed, versioned JSON document (risk_parameters.json
in the model package, so the package's SHA-256 covers it, published by
GetModelInfo), and `absolute_risk` is a pure function of it: the service and
a client holding a decrypted score compute the same answer from the same
document, with no model runtime.

The score's effect. The published odds ratio per SD (PRS313: 1.61, 95% CI
1.57-1.65, Mavaddat et al. 2019) is for the full score S = S_m + S_u, the
matched part plus the variants this pipeline cannot use (strand-ambiguous
ones, excluded as pgsc_calc does). The variants are nearly independent, so
E[S | S_m] = S_m (the unmatched part centred at its mean) and, in units of
the full score's SD, E[Z | z_m] = z_m x sd(S_m) / sd(S) = z_m x sqrt(f) with
f = Var(S_m) / Var(S), the matched-variance fraction. The log hazard ratio per
SD of the matched score is therefore beta x sqrt(f): the effect shrinks with
the square root of the share of variance matched, on the OR's log scale. What
is not measured for this person (unmatched variants, and genotypes that were
missing and mean-imputed) is a normal residual of variance 1 - f_person in
full-score SD units: it carries no expected effect (the point estimate is at
the conditional mean of the log hazard) but widens the interval.

The interval: `interval_draws` draws (fixed seed, so server and client agree)
of log OR per SD ~ N(ln 1.61, se from its 95% CI), of each family-history
log RR ~ N(ln RR, se from its 99% CI) and of the unmeasured score residual;
each draw renormalises the relative hazard so that its population mean equals
the point model's (the registry calibration holds for every draw, so only the
spread of risk across people is uncertain, not the registry's level); the
interval is the draws' 2.5% and 97.5% quantiles of absolute risk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from clinpred.pilots.common.errors import FailedPrecondition, ModelPackageError
from clinpred.pilots.genomics.package_format import ScoreDistribution
from clinpred.pilots.genomics.scoring import VariantContribution

FORMAT = "clinpred.genomics.risk-parameters"
FORMAT_VERSION = 1
Z_975 = 1.959963984540054
Z_995 = 2.5758293035489004
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RiskParameters:
    """Everything `absolute_risk` needs; see the module docstring for the model."""

    cancer: str
    pgs_id: str
    horizon_years: float
    step_years: float
    ages: tuple[float, ...]  # yearly knots of the two hazards
    baseline_incidence: tuple[float, ...]  # per person-year: z = 0 on the full score, no affected relative
    competing_mortality: tuple[float, ...]  # per person-year, death from any cause
    log_or_per_sd: float  # beta, full score
    log_or_per_sd_se: float
    matched_variance_fraction: float  # f = Var(matched score) / Var(full score) of the reference
    family_relative_risks: tuple[float, ...]  # 1, 2, 3+ affected first-degree relatives
    family_log_rr_se: tuple[float, ...]
    family_history_mix: tuple[float, ...]  # population shares with 0, 1, 2, 3+ affected relatives
    reference: ScoreDistribution  # of the matched score: z and percentile
    valid_ages: tuple[float, float]
    valid_sexes: tuple[str, ...]
    interval_level: float
    interval_draws: int
    interval_seed: int
    sources: dict[str, str]

    @property
    def effective_log_hr_per_sd(self) -> float:
        """beta x sqrt(f): the log hazard ratio per SD of the score as matched."""
        return self.log_or_per_sd * float(np.sqrt(self.matched_variance_fraction))

    def family_relative_risk(self, relatives: int) -> float:
        return 1.0 if relatives <= 0 else self.family_relative_risks[min(relatives, len(self.family_relative_risks)) - 1]

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["reference"] = self.reference.to_json()
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **body}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RiskParameters:
        if obj.get("format") != FORMAT or obj.get("format_version") != FORMAT_VERSION:
            raise ModelPackageError(f"risk parameters are not {FORMAT} version {FORMAT_VERSION}")
        try:
            return cls(
                cancer=str(obj["cancer"]), pgs_id=str(obj["pgs_id"]), horizon_years=float(obj["horizon_years"]),
                step_years=float(obj["step_years"]), ages=_floats(obj["ages"]),
                baseline_incidence=_floats(obj["baseline_incidence"]),
                competing_mortality=_floats(obj["competing_mortality"]), log_or_per_sd=float(obj["log_or_per_sd"]),
                log_or_per_sd_se=float(obj["log_or_per_sd_se"]),
                matched_variance_fraction=float(obj["matched_variance_fraction"]),
                family_relative_risks=_floats(obj["family_relative_risks"]),
                family_log_rr_se=_floats(obj["family_log_rr_se"]), family_history_mix=_floats(obj["family_history_mix"]),
                reference=ScoreDistribution.from_json(obj["reference"]),
                valid_ages=(float(obj["valid_ages"][0]), float(obj["valid_ages"][1])),
                valid_sexes=tuple(str(s) for s in obj["valid_sexes"]), interval_level=float(obj["interval_level"]),
                interval_draws=int(obj["interval_draws"]), interval_seed=int(obj["interval_seed"]),
                sources={str(k): str(v) for k, v in obj["sources"].items()},
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelPackageError(f"risk parameters are malformed: {exc}") from None


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def check_valid(parameters: RiskParameters, age: float, sex: str) -> None:
    """FAILED_PRECONDITION outside the ages and sexes the model is valid for: never a borrowed answer."""
    low, high = parameters.valid_ages
    if sex not in parameters.valid_sexes:
        raise FailedPrecondition(
            f"the {parameters.cancer} cancer model is valid for sex {' or '.join(parameters.valid_sexes)} only, not {sex}"
        )
    if not low <= age <= high:
        raise FailedPrecondition(
            f"the {parameters.cancer} cancer model is valid for ages {low:g} to {high:g} only (age given: {age:g})"
        )


def _step_hazards(parameters: RiskParameters, age: float, incidence: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
    """Baseline incidence and competing mortality at the midpoints of the horizon's steps."""
    steps = round(parameters.horizon_years / parameters.step_years)
    midpoints = age + (np.arange(steps) + 0.5) * parameters.step_years
    knots = np.asarray(parameters.ages)
    log_incidence = np.log(np.asarray(parameters.baseline_incidence) if incidence is None else incidence)
    baseline = np.exp(np.interp(midpoints, knots, log_incidence))
    mortality = np.exp(np.interp(midpoints, knots, np.log(np.asarray(parameters.competing_mortality))))
    return baseline, mortality


def risk_of_relative_hazards(
    parameters: RiskParameters, age: float, relative_hazard: FloatArray, incidence: FloatArray | None = None
) -> FloatArray:
    """Absolute risk over the horizon for each relative hazard (vectorised), competing mortality included."""
    baseline, mortality = _step_hazards(parameters, age, incidence)
    dt = parameters.step_years
    cancer = np.asarray(relative_hazard, dtype=np.float64)[..., None] * baseline
    total = cancer + mortality
    step_hazard = total * dt
    survival_before = np.exp(-(np.cumsum(step_hazard, axis=-1) - step_hazard))
    return np.asarray(np.sum(survival_before * cancer / total * -np.expm1(-step_hazard), axis=-1), dtype=np.float64)


def relative_hazard(parameters: RiskParameters, z: float | FloatArray, relatives: int) -> FloatArray:
    """exp(beta sqrt(f) z) x RR_family: the point model's hazard ratio against z = 0, no affected relative."""
    return np.asarray(
        np.exp(parameters.effective_log_hr_per_sd * np.asarray(z, dtype=np.float64))
        * parameters.family_relative_risk(relatives),
        dtype=np.float64,
    )


def absolute_risk(parameters: RiskParameters, z: float | FloatArray, age: float, relatives: int) -> FloatArray:
    """The point estimate: probability of a first diagnosis within the horizon (no validity check; see check_valid)."""
    return risk_of_relative_hazards(parameters, age, relative_hazard(parameters, z, relatives))


def population_average_risk(parameters: RiskParameters, age: float, incidence: FloatArray | None = None) -> float:
    """Mean risk at `age` over the full score's N(0, 1) and the family-history mix (Gauss-Hermite, 40 nodes)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    weights = weights / weights.sum()
    rr = np.array([1.0, *parameters.family_relative_risks])
    hazards = np.exp(parameters.log_or_per_sd * nodes)[None, :] * rr[:, None]
    risks = risk_of_relative_hazards(parameters, age, hazards, incidence)
    return float(np.asarray(parameters.family_history_mix) @ risks @ weights)


def unmeasured_variance_fraction(parameters: RiskParameters, *, variants_matched: int, imputed_variance: float) -> float:
    """1 - f_person: the share of the full score's variance not measured for this person.

    The reference's matched variants carry f of the variance; a person matched on fewer
    loses a proportional share of it (their variances are not known one by one here),
    and the mean-imputed genotypes lose exactly their 2 p (1 - p) w^2.
    """
    reference = parameters.reference
    matched_share = min(1.0, variants_matched / reference.variants_matched) if reference.variants_matched else 1.0
    measured = parameters.matched_variance_fraction * matched_share * (1.0 - imputed_variance / reference.sd**2)
    return float(min(1.0, max(0.0, 1.0 - measured)))


def imputed_score_variance(contributions: Iterable[VariantContribution]) -> float:
    """Score variance of the mean-imputed genotypes: sum of 2 p (1 - p) w^2, each imputed dosage being 2 p."""
    total = 0.0
    for c in contributions:
        if c.imputed:
            p = min(max(c.dosage / 2.0, 0.0), 1.0)
            total += 2.0 * p * (1.0 - p) * c.effect_weight**2
    return total


def risk_interval(
    parameters: RiskParameters, z: float, age: float, relatives: int, unmeasured_variance_fraction: float
) -> tuple[float, float]:
    """The `interval_level` interval of absolute risk by simulation (see the module docstring)."""
    rng = np.random.default_rng(parameters.interval_seed)
    draws = rng.standard_normal((parameters.interval_draws, 2 + len(parameters.family_relative_risks)))
    beta = parameters.log_or_per_sd + parameters.log_or_per_sd_se * draws[:, 0]
    published_log_rr = np.log(np.asarray(parameters.family_relative_risks))
    log_rr = published_log_rr[None, :] + np.asarray(parameters.family_log_rr_se) * draws[:, 2:]
    residual = np.sqrt(max(unmeasured_variance_fraction, 0.0)) * draws[:, 1]
    mix = np.asarray(parameters.family_history_mix)
    # The population mean of exp(beta Z) x RR is exp(beta^2 / 2) x sum(mix x RR) for Z ~ N(0, 1).
    point_mean = np.exp(parameters.log_or_per_sd**2 / 2) * (mix[0] + mix[1:] @ np.asarray(parameters.family_relative_risks))
    draw_mean = np.exp(beta**2 / 2) * (mix[0] + np.exp(log_rr) @ mix[1:])
    person_log_rr = log_rr[:, min(relatives, log_rr.shape[1]) - 1] if relatives > 0 else np.zeros(len(beta))
    shrink = float(np.sqrt(parameters.matched_variance_fraction))
    hazards = np.exp(beta * (shrink * z + residual) + person_log_rr) * point_mean / draw_mean
    risks = risk_of_relative_hazards(parameters, age, hazards)
    tail = (1.0 - parameters.interval_level) / 2
    low, high = np.quantile(risks, [tail, 1.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class RiskAnswer:
    """What the parameters say of one person's score: the same on the server and on a client."""

    z_score: float
    percentile: float
    absolute_risk: float
    risk_interval: tuple[float, float]
    interval_level: float
    population_average_risk: float
    relative_risk: float
    odds_ratio_per_sd: float  # of the score as matched
    unmeasured_variance_fraction: float
    score_effect_note: str
    horizon_years: float


def assess_score(
    parameters: RiskParameters, score_sum: float, age: float, sex: str, relatives: int, *,
    variants_matched: int | None = None, imputed_variance: float = 0.0,
) -> RiskAnswer:
    """Validity check, z, percentile, point risk, interval and population average of one score sum."""
    check_valid(parameters, age, sex)
    z = float(parameters.reference.standardise(score_sum))
    matched = parameters.reference.variants_matched if variants_matched is None else variants_matched
    risk = float(absolute_risk(parameters, z, age, relatives))
    unmeasured = unmeasured_variance_fraction(parameters, variants_matched=matched, imputed_variance=imputed_variance)
    average = population_average_risk(parameters, age)
    return RiskAnswer(
        z_score=z,
        percentile=parameters.reference.percentile(score_sum),
        absolute_risk=risk,
        risk_interval=risk_interval(parameters, z, age, relatives, unmeasured),
        interval_level=parameters.interval_level,
        population_average_risk=average,
        relative_risk=risk / average,
        odds_ratio_per_sd=float(np.exp(parameters.effective_log_hr_per_sd)),
        unmeasured_variance_fraction=unmeasured,
        score_effect_note=score_effect_note(parameters, unmeasured),
        horizon_years=parameters.horizon_years,
    )


def score_effect_note(parameters: RiskParameters, unmeasured: float) -> str:
    """What an answer says about the score's effect as used (the shrinkage rule above)."""
    published = float(np.exp(parameters.log_or_per_sd))
    used = float(np.exp(parameters.effective_log_hr_per_sd))
    return (
        f"OR per SD {used:.3f} for the score as matched: the published {published:.2f} for the full score, shrunk on"
        f" the log scale by sqrt({parameters.matched_variance_fraction:.3f}), the share of the score's variance in the"
        f" matched variants; {unmeasured:.1%} of its variance is not measured for this person and widens the interval"
    )


def cumulative_baseline_hazard(parameters: RiskParameters, age: float) -> float:
    """Baseline incidence summed over the horizon from `age` (z = 0, no relative; mortality not counted)."""
    baseline, _ = _step_hazards(parameters, age)
    return float(baseline.sum() * parameters.step_years)


# Fitting the parameters from registry figures (training side; pure numpy and SciPy).


def gompertz_mortality(band_ages: FloatArray, ten_year_death: FloatArray, ages: FloatArray, horizon: float = 10.0) -> FloatArray:
    """Yearly all-cause mortality mu(t) = exp(c + g t) whose 10-year death probability from each band's age fits the table.

    The cumulative hazard from a over 10 years is exp(c + g a) (exp(10 g) - 1) / g, so
    log(-log(1 - q10)) is linear in a with slope g: a least-squares line gives g and c.
    """
    y = np.log(-np.log1p(-ten_year_death))
    g, intercept = np.polyfit(band_ages, y, 1)
    c = intercept - np.log(np.expm1(horizon * g) / g)
    return np.asarray(np.exp(c + g * ages), dtype=np.float64)


def calibrate_incidence(
    parameters: RiskParameters, target_ages: FloatArray, target_risks: FloatArray, smoothness: float = 30.0
) -> FloatArray:
    """Baseline incidence at the knots whose population-average risk matches the targets (log scale, least squares).

    A second-difference penalty on log incidence keeps it smooth between the
    registry's ages and extends it past the last target age (to age + horizon).
    """
    from scipy.optimize import least_squares

    knots = np.asarray(parameters.ages)

    def residuals(log_incidence: FloatArray) -> FloatArray:
        incidence = np.exp(log_incidence)
        fitted = np.array([population_average_risk(parameters, float(a), incidence) for a in target_ages])
        return np.concatenate([np.log(fitted) - np.log(target_risks), np.sqrt(smoothness) * np.diff(log_incidence, 2)])

    start = np.full(len(knots), np.log(float(np.mean(target_risks)) / parameters.horizon_years))
    fit = least_squares(residuals, start, method="lm")
    return np.asarray(np.exp(fit.x), dtype=np.float64)
