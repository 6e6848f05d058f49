"""Published figures a cancer's risk model is calibrated to (`CalibrationTargets`), each with its source.

Breast cancer's are built in (REFERENCES: SEER DevCan, NCI PDQ, Collaborative Group 2001, Mavaddat 2019);
another cancer's come as a JSON file of the same fields (`clinpred train genomics --calibration FILE`).
Ranges in the sources (e.g. 1.45-1.55% at 40) are taken at their midpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clinpred.pilots.common.errors import FailedPrecondition

# 10-year probability of invasive breast cancer for a woman free of it, accounting for competing causes
# of death: US SEER, NCI DevCan (American Cancer Society Surveillance Research 2011, cases 2005-2007).
REGISTRY_AGES = (40.0, 50.0, 60.0, 70.0)
REGISTRY_TEN_YEAR_RISK = (0.0150, 0.0239, 0.03495, 0.03915)
REGISTRY_SOURCE = "US SEER, NCI DevCan 10-year probability (ACS Surveillance Research 2011), range midpoints"

# Chance of dying from any cause in the next 10 years, women, per 1,000, by 5-year band
# (Schwartz, Woloshin, Welch; NCI PDQ Table 4); a band's age is its midpoint.
MORTALITY_BAND_AGES = (42.0, 47.0, 52.0, 57.0, 62.0, 67.0, 72.0, 77.0)
MORTALITY_TEN_YEAR_PER_1000 = (21.0, 33.0, 51.0, 81.0, 120.0, 180.0, 270.0, 410.0)
MORTALITY_SOURCE = "Schwartz, Woloshin, Welch; NCI PDQ Table 4 (women), Gompertz fit"

# Collaborative Group on Hormonal Factors in Breast Cancer, Lancet 2001;358:1389: relative risk against no
# affected first-degree relative, with 99% CIs; 7.3% of controls had one or more affected relatives.
FAMILY_RELATIVE_RISKS = (1.80, 2.93, 3.90)
FAMILY_RR_99_CI = ((1.69, 1.91), (2.36, 3.64), (2.03, 7.49))
FAMILY_HISTORY_PREVALENCE = 0.073
FAMILY_SOURCE = "Collaborative Group on Hormonal Factors in Breast Cancer, Lancet 2001;358:1389"
# The split of the 7.3% among 1, 2 and 3+ relatives is not in the source: an assumption that relatives are
# affected independently, i.e. a Poisson count with P(>= 1) = 7.3% (it understates familial clustering).
FAMILY_MIX_ASSUMPTION = "Poisson count of affected relatives with P(>= 1) = 0.073 (assumption: independent relatives)"

# PRS313 (PGS000004): odds ratio per SD 1.61 (95% CI 1.57-1.65) in the validation set (Mavaddat et al.,
# Am J Hum Genet 2019); the validation population were women of European ancestry aged about 40-70.
OR_PER_SD = 1.61
OR_PER_SD_95_CI = (1.57, 1.65)
OR_SOURCE = "Mavaddat et al., Am J Hum Genet 2019 (PRS313 validation, women of European ancestry)"

VALID_AGES = (40.0, 70.0)
VALID_SEXES = ("female",)
VALIDITY_REASON = (
    "the registry table is calibrated at 40, 50, 60 and 70 and the horizon reaches 80, where the mortality table"
    " ends; PRS313 was validated in women"
)


def family_history_mix(prevalence: float = FAMILY_HISTORY_PREVALENCE) -> tuple[float, float, float, float]:
    """Population shares with 0, 1, 2 and 3+ affected first-degree relatives (see FAMILY_MIX_ASSUMPTION)."""
    mean = -np.log1p(-prevalence)
    one = mean * np.exp(-mean)
    two = mean**2 / 2 * np.exp(-mean)
    return (1.0 - prevalence, float(one), float(two), float(prevalence - one - two))


@dataclass(frozen=True)
class CalibrationTargets:
    """One cancer's published figures: registry risk by age, competing mortality, effect sizes, validity."""

    cancer: str
    horizon_years: float
    registry_ages: tuple[float, ...]
    registry_risks: tuple[float, ...]  # over the horizon, competing mortality accounted for
    mortality_band_ages: tuple[float, ...]
    mortality_per_1000: tuple[float, ...]  # death from any cause over 10 years
    or_per_sd: float
    or_per_sd_95_ci: tuple[float, float]
    family_relative_risks: tuple[float, ...]  # 1, 2, 3+ affected first-degree relatives
    family_rr_99_ci: tuple[tuple[float, float], ...]
    family_history_mix: tuple[float, ...]  # shares with 0, 1, 2, 3+ affected relatives
    valid_ages: tuple[float, float]
    valid_sexes: tuple[str, ...]
    sources: dict[str, str]

    def registry_risk(self, age: float | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The registry's risk, interpolated linearly between its ages."""
        return np.asarray(np.interp(age, self.registry_ages, self.registry_risks), dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CalibrationTargets:
        try:
            return cls(
                str(obj["cancer"]), float(obj["horizon_years"]), _floats(obj["registry_ages"]),
                _floats(obj["registry_risks"]), _floats(obj["mortality_band_ages"]), _floats(obj["mortality_per_1000"]),
                float(obj["or_per_sd"]), (float(obj["or_per_sd_95_ci"][0]), float(obj["or_per_sd_95_ci"][1])),
                _floats(obj["family_relative_risks"]),
                tuple((float(low), float(high)) for low, high in obj["family_rr_99_ci"]),
                _floats(obj["family_history_mix"]), (float(obj["valid_ages"][0]), float(obj["valid_ages"][1])),
                tuple(str(s) for s in obj["valid_sexes"]), {str(k): str(v) for k, v in obj["sources"].items()},
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise FailedPrecondition(f"calibration targets are malformed: {exc}") from None

    @classmethod
    def read(cls, path: Path | str) -> CalibrationTargets:
        import json

        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise FailedPrecondition(f"calibration targets {path} cannot be read: {exc}") from None


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


BREAST = CalibrationTargets(
    cancer="breast",
    horizon_years=10.0,
    registry_ages=REGISTRY_AGES,
    registry_risks=REGISTRY_TEN_YEAR_RISK,
    mortality_band_ages=MORTALITY_BAND_AGES,
    mortality_per_1000=MORTALITY_TEN_YEAR_PER_1000,
    or_per_sd=OR_PER_SD,
    or_per_sd_95_ci=OR_PER_SD_95_CI,
    family_relative_risks=FAMILY_RELATIVE_RISKS,
    family_rr_99_ci=FAMILY_RR_99_CI,
    family_history_mix=family_history_mix(),
    valid_ages=VALID_AGES,
    valid_sexes=VALID_SEXES,
    sources={
        "registry_risks": REGISTRY_SOURCE,
        "competing_mortality": MORTALITY_SOURCE,
        "family_relative_risks": FAMILY_SOURCE,
        "family_history_mix": FAMILY_MIX_ASSUMPTION,
        "or_per_sd": OR_SOURCE,
        "valid_ages": VALIDITY_REASON,
    },
)


def targets_for(cancer: str) -> CalibrationTargets:
    """The built-in targets of a cancer (breast only); others need their own published figures."""
    if cancer == BREAST.cancer:
        return BREAST
    raise FailedPrecondition(
        f"no built-in registry figures for {cancer} cancer (only breast): give its published figures"
        " with --calibration FILE (a JSON document of CalibrationTargets' fields)"
    )
