"""Synthetic cohorts of children with cancer monitored at home, with deterioration events.

Every number below is either taken from /work/shared/clinical/REFERENCES.md or
from the cited literature, or is an explicit ASSUMPTION; ASSUMPTIONS.md beside
this file lists them in one place.

Patients
    Age 0-18 years, skewed to early childhood and adolescence like the
    incidence of childhood cancer. Diagnosis groups (ALL 30 %, AML 6 %,
    lymphoma 12 %, CNS tumours 20 %, other solid tumours 32 %) approximate the
    ICCC-3 distribution in high-income countries (Steliarova-Foucher et al.,
    Lancet Oncol 2017;18:719). Treatment intensity "high" means more intensive
    than ALL maintenance, as in the SPOG 2003 FN rule (Ammann et al., J Clin
    Oncol 2010). Central line in 85 % (ASSUMPTION: most children on
    chemotherapy have a port or tunnelled catheter).

Physiology
    Heart and respiratory rates are drawn around the child's age-specific
    Fleming median (Lancet 2011) with the published spread, a per-child
    offset, a per-day offset and measurement noise. Fever raises heart rate by
    10 /min per degree C and respiratory rate by 4 % of the age median per
    degree C (ASSUMPTION of the order reported by Thompson et al., Arch Dis
    Child 2009;94:361). Systolic BP
    median ~ 90 + 2 x age mmHg capped at 120 (APLS formula, ASSUMPTION for
    infants: 80). SpO2 97-99 %, capillary refill ~1.5 s, temperature ~36.7 C.

Blood counts
    Neutrophils fall to a nadir about 10 days after each chemotherapy cycle
    and recover by day ~21; platelets about day 13; haemoglobin drifts down.
    Nadir depth depends on intensity (high: ANC nadir ~0.1-0.4 x10^9/L).
    CRP rises from ~12 h after the onset of a bacterial infection.

Illness episodes and events (hazards per day; ASSUMPTIONS anchored as said)
    - Bacterial infection: 0.0012/day, x10 while neutropenic (ANC < 0.5),
      x1.3 with a central line. Together with benign febrile illnesses this
      gives about 0.8 febrile episodes per 30 neutropenic days, the published
      rate of 0.76 (Ahmed & Flynn, UpToDate; Castagnola et al., Clin Infect
      Dis 2007;45:1296).
    - Benign (mostly viral) illness: 0.015/day; febrile in 75 %.
    - Unexplained admission without physiological warning (bleeding,
      vomiting, social): 0.0005/day.
    Fever with neutropenia leads to admission with probability 0.95 (standard
    practice admits every FN episode); a bacterial infection without FN 0.5,
    a benign illness 0.06. Sepsis follows 30 % of bacterial and 3 % of benign
    admissions (adverse events in 20-29 % of FN episodes: Ammann 2010,
    Thangthong et al., APJCP 2020); PICU transfer follows 35 % of sepsis and
    2 % of other admissions. Neutropenia covers about 14 % of days. Resulting
    rates, measured over seeds and checked by the tests: 0.3-0.8 unplanned
    admissions per 100 patient-days (about 0.45), sepsis 8-30 % and PICU
    transfer 2-12 % of admissions.

Drift before events
    An episode's physiology drifts from onset to admission over
    6 h + Gamma(2, 10 h) (mean 26 h; ASSUMPTION, not from a published home
    monitoring series): temperature
    early (square root of progress), heart and respiratory rate linearly,
    lower SpO2 when respiratory, and late (progress cubed) hypotension,
    prolonged capillary refill and altered consciousness when septic. Benign
    episodes drift similarly, then recover, which is what makes fever alone a
    poor predictor. Labels are never read by the observation generator: it
    sees only the physiology of the episode in progress.

Measurements
    Parents record observation sets at irregular times while awake
    (07-22 h UTC), 1-3.5 sets per day per family, up to 4x as often when the
    child is unwell. Each item is missing at a realistic rate (an oximeter
    in 85 % of homes, a BP cuff in 35 %, respiratory rate counted in 55 % of
    sets). Labs come from clinic visits (twice weekly on high intensity,
    weekly on medium, every two weeks on low), which also record clinic vitals.
    No observation is recorded in hospital.

Scenario options (`SimulationConfig`; ASSUMPTIONS.md, "Scenarios") undo the
three assumptions that favour the model: PEWS items drifting as early as
temperature, measurement frequency that does not rise with illness, and
antipyretics blunting fever. Each leaves courses, events and (except the
second) measurement times unchanged for the same seed.

Determinism: patient i is generated from `SeedSequence(seed).spawn(n)[i]`, so a
cohort is identical for the same seed and size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from tqdm.auto import tqdm

from clinpred.pilots.deterioration.cohort import Cohort, read_cohort, write_cohort
from clinpred.pilots.deterioration.features import EPOCH
from clinpred.pilots.deterioration.observations import AVPU_LEVELS, DIAGNOSIS_GROUPS, SIGNAL_NAMES
from clinpred.pilots.deterioration.reference_ranges import fleming_centile, fleming_spread

__all__ = ["Cohort", "SimulationConfig", "read_cohort", "simulate_cohort", "write_cohort"]

FloatArray = npt.NDArray[np.float64]
HOURS_PER_YEAR: Final = 365.25 * 24.0

DIAGNOSIS_PROBABILITIES: Final = (0.30, 0.06, 0.12, 0.20, 0.32)
# Probability of each intensity (low, medium, high) by diagnosis group.
INTENSITY_BY_DIAGNOSIS: Final = {
    "all": (0.5, 0.0, 0.5),
    "aml": (0.0, 0.0, 1.0),
    "lymphoma": (0.0, 0.2, 0.8),
    "cns_tumour": (0.2, 0.7, 0.1),
    "solid_tumour": (0.0, 0.6, 0.4),
}
INTENSITIES: Final = ("low", "medium", "high")


@dataclass(frozen=True)
class SimulationConfig:
    """Rates and probabilities of the simulator; defaults are the documented assumptions."""

    mean_follow_up_days: float = 90.0
    bacterial_rate_per_day: float = 0.0012
    neutropenic_infection_multiplier: float = 10.0
    central_line_infection_multiplier: float = 1.3
    benign_illness_rate_per_day: float = 0.015
    unexplained_admission_rate_per_day: float = 0.0005
    p_admit_febrile_neutropenia: float = 0.95
    p_admit_bacterial_other: float = 0.5
    p_admit_benign: float = 0.06
    p_sepsis_bacterial: float = 0.3
    p_sepsis_benign: float = 0.03
    p_picu_sepsis: float = 0.35
    p_picu_other: float = 0.02
    central_line_fraction: float = 0.85
    oximeter_fraction: float = 0.85
    bp_cuff_fraction: float = 0.35
    home_oxygen_fraction: float = 0.02
    measurement_sets_per_day: tuple[float, float] = (1.0, 3.5)
    intensity_cycle_days: dict[str, float] = field(default_factory=lambda: {"low": 7.0, "medium": 21.0, "high": 21.0})
    lab_interval_days: dict[str, float] = field(default_factory=lambda: {"low": 14.0, "medium": 7.0, "high": 3.5})
    # Scenario options that test the simulator's own assumptions (ASSUMPTIONS.md, "Scenarios").
    # True: hypotension, capillary refill and consciousness drift as early as temperature (square root
    # of progress) instead of only at the end (progress cubed).
    pews_items_drift_early: bool = False
    # False: families measure as often when the child is unwell as when well (no 4x rise).
    measurement_rises_with_illness: bool = True
    # Share of febrile measurement sets taken after an antipyretic, which lowers the fever (and the
    # tachycardia it drives) by `antipyretic_effect_c`.
    antipyretic_fraction: float = 0.0
    antipyretic_effect_c: float = 1.0


@dataclass
class _Episode:
    onset: float
    rise_hours: float
    fall_hours: float  # 0 when the episode ends in an admission (no home data afterwards)
    temp_rise: float
    hr_fraction: float
    rr_fraction: float
    spo2_drop: float
    sbp_fraction: float
    crt_rise: float
    effort: float
    avpu: int
    crp_peak: float


@dataclass
class _PatientTables:
    patient: dict[str, object]
    obs_hours: FloatArray
    obs_values: dict[str, npt.NDArray[np.float64]]
    avpu: list[str | None]
    events: list[tuple[float, str]]
    chemo_hours: FloatArray


def _rounded(values: FloatArray, decimals: int = 0) -> FloatArray:
    return np.asarray(np.round(values, decimals), dtype=np.float64)


def _bump(days: FloatArray, centre: float, width: float) -> FloatArray:
    return np.exp(-(((days - centre) / width) ** 2))


def _age_sample(rng: np.random.Generator) -> float:
    # Incidence of childhood cancer peaks at 1-4 years and rises again in adolescence.
    component = rng.choice(3, p=(0.45, 0.2, 0.35))
    low, high = ((0.02, 5.0), (5.0, 10.0), (10.0, 17.99))[component]
    return float(rng.uniform(low, high))


def _expected_weight_kg(age_years: float) -> float:
    # APLS weight formulas (ASSUMPTION: adequate for a plausibility scale, capped at 70 kg).
    if age_years < 1:
        return 0.5 * age_years * 12 + 4
    if age_years < 6:
        return 2 * age_years + 8
    return min(3 * age_years + 7, 70.0)


class _Patient:
    """Generates one patient; all randomness comes from its own generator."""

    def __init__(self, index: int, rng: np.random.Generator, config: SimulationConfig) -> None:
        self.rng = rng
        self.config = config
        self.patient_id = f"P{index:06d}"
        self.index = index
        self.age0 = _age_sample(rng)
        self.diagnosis = str(DIAGNOSIS_GROUPS[rng.choice(5, p=DIAGNOSIS_PROBABILITIES)])
        self.intensity = str(INTENSITIES[rng.choice(3, p=INTENSITY_BY_DIAGNOSIS[self.diagnosis])])
        self.central_line = bool(rng.random() < config.central_line_fraction)
        self.sex = "female" if rng.random() < 0.45 else "male"
        follow_days = config.mean_follow_up_days * rng.uniform(0.7, 1.3)
        self.start = float(rng.uniform(0, 365 * 24))
        self.end = self.start + follow_days * 24
        self.birth = self.start - self.age0 * HOURS_PER_YEAR
        # Birth at midnight so birth_date is exact.
        self.birth = float(np.floor(self.birth / 24) * 24)
        cycle = config.intensity_cycle_days[self.intensity] * 24
        first = np.floor((self.start - rng.uniform(0, cycle)) / 24) * 24 + 9 + rng.uniform(0, 3)
        self.chemo = first + cycle * np.arange(int((self.end - first) / cycle) + 1)
        nadir = {"high": (0.03, 0.12), "medium": (0.12, 0.35), "low": (0.4, 0.7)}[self.intensity]
        self.anc_base = float(np.exp(rng.normal(np.log(3.0), 0.3)))
        self.anc_nadir = float(rng.uniform(*nadir))
        plt_nadir = {"high": (0.08, 0.3), "medium": (0.3, 0.6), "low": (0.7, 0.9)}[self.intensity]
        self.plt_base = float(np.exp(rng.normal(np.log(250.0), 0.25)))
        self.plt_nadir = float(rng.uniform(*plt_nadir))
        self.hb_base = float(rng.normal(110.0, 10.0))
        self.hb_drop = float(rng.uniform(*{"high": (15, 30), "medium": (5, 15), "low": (0, 5)}[self.intensity]))
        self.crp_base = float(np.exp(rng.normal(np.log(3.0), 0.5)))
        self.hr_offset = float(rng.normal(0, 0.5))
        self.rr_offset = float(rng.normal(0, 0.5))
        self.temp_base = float(36.7 + rng.normal(0, 0.15))
        self.spo2_base = float(min(99.5, 98.0 + rng.normal(0, 0.7)))
        self.sbp_offset = float(rng.normal(0, 6))
        self.weight_factor = float(np.exp(rng.normal(0, 0.12)))
        self.sets_per_day = float(rng.uniform(*config.measurement_sets_per_day))
        self.has_oximeter = bool(rng.random() < config.oximeter_fraction)
        self.has_bp_cuff = bool(rng.random() < config.bp_cuff_fraction)
        self.home_oxygen = float(rng.uniform(0.5, 2.0)) if rng.random() < config.home_oxygen_fraction else 0.0
        # A stream of its own (spawning leaves `rng` untouched), so that turning antipyretics on
        # changes nothing else in the cohort.
        seed_sequence = rng.bit_generator.seed_seq
        assert isinstance(seed_sequence, np.random.SeedSequence)
        self._antipyretic_rng = np.random.default_rng(seed_sequence.spawn(1)[0])
        self.episodes: list[_Episode] = []
        self.stays: list[tuple[float, float]] = []
        self.events: list[tuple[float, str]] = []

    def days_since_chemo(self, hours: FloatArray) -> FloatArray:
        last = np.searchsorted(self.chemo, hours, side="right") - 1
        since = np.where(last >= 0, hours - self.chemo[np.clip(last, 0, None)], np.inf)
        return since / 24.0

    def neutrophils(self, hours: FloatArray) -> FloatArray:
        return self.anc_base * self.anc_nadir ** _bump(self.days_since_chemo(hours), 10.0, 5.0)

    def simulate_course(self) -> None:
        cfg, rng = self.config, self.rng
        grid = np.arange(self.start, self.end, 1.0)
        neutropenic = 1.0 / (1.0 + np.exp((self.neutrophils(grid) - 0.5) / 0.1))
        line = cfg.central_line_infection_multiplier if self.central_line else 1.0
        hazards = np.stack(
            [
                cfg.bacterial_rate_per_day / 24 * line * (1 + (cfg.neutropenic_infection_multiplier - 1) * neutropenic),
                np.full(grid.shape, cfg.benign_illness_rate_per_day / 24),
                np.full(grid.shape, cfg.unexplained_admission_rate_per_day / 24),
            ]
        )
        hits = rng.random(hazards.shape) < hazards
        kinds, cells = np.nonzero(hits)
        onsets = grid[cells] + rng.random(cells.shape)
        order = np.argsort(onsets)
        busy_until = -np.inf
        for kind, onset in zip(kinds[order], onsets[order], strict=True):
            if onset < busy_until:
                continue
            busy_until = self._start_episode(int(kind), float(onset))

    def _admit(self, at: float, sepsis: bool, picu: bool) -> float:
        rng = self.rng
        self.events.append((at, "unplanned_admission"))
        if sepsis:
            self.events.append((at + rng.uniform(0, 6), "sepsis"))
        if picu:
            self.events.append((at + rng.uniform(2, 36), "picu_transfer"))
        discharge = at + 24 * (2 + rng.gamma(2.0, 1.5)) + (72.0 if picu else 0.0)
        self.stays.append((at, discharge))
        return discharge

    def _start_episode(self, kind: int, onset: float) -> float:
        cfg, rng = self.config, self.rng
        if kind == 2:
            return self._admit(onset, sepsis=False, picu=rng.random() < cfg.p_picu_other)
        bacterial = kind == 0
        neutropenic = bool(self.neutrophils(np.array([onset]))[0] < 0.5)
        febrile = bool(rng.random() < (0.9 if bacterial else 0.75))
        if febrile and neutropenic:
            p_admit = cfg.p_admit_febrile_neutropenia
        else:
            p_admit = cfg.p_admit_bacterial_other if bacterial else cfg.p_admit_benign
        admitted = bool(rng.random() < p_admit)
        sepsis = admitted and bool(rng.random() < (cfg.p_sepsis_bacterial if bacterial else cfg.p_sepsis_benign))
        picu = admitted and bool(rng.random() < (cfg.p_picu_sepsis if sepsis else cfg.p_picu_other))
        severity = float(rng.uniform(0.6, 1.4)) + (0.4 if sepsis else 0.0)
        respiratory = bool(rng.random() < (0.4 if bacterial else 0.3))
        rise = 6.0 + float(rng.gamma(2.0, 10.0))
        episode = _Episode(
            onset=onset,
            rise_hours=rise,
            fall_hours=0.0 if admitted else rise * float(rng.uniform(1.0, 2.0)),
            temp_rise=float(rng.uniform(1.1, 2.5)) if febrile else float(rng.uniform(0.0, 0.4)),
            hr_fraction=severity * (0.30 if sepsis else 0.12 if bacterial else 0.05),
            rr_fraction=severity * ((0.3 if respiratory else 0.0) + (0.25 if sepsis else 0.0)),
            spo2_drop=severity * (float(rng.uniform(2, 7)) if respiratory else float(rng.uniform(0, 1))),
            sbp_fraction=float(rng.uniform(0.15, 0.35)) if sepsis else float(rng.uniform(0, 0.08)) * bacterial,
            crt_rise=float(rng.uniform(1.5, 3.0)) if sepsis else float(rng.uniform(0, 0.8)) * bacterial,
            effort=severity * (2.2 if respiratory else 1.2 if sepsis else 0.3),
            avpu=(2 if severity > 1.6 else 1) if sepsis and severity > 1.1 else 0,
            crp_peak=severity * (float(rng.uniform(60, 220)) if bacterial else float(rng.uniform(5, 40))),
        )
        self.episodes.append(episode)
        if admitted:
            return self._admit(onset + rise, sepsis, picu)
        return onset + rise + episode.fall_hours

    def _progress(self, hours: FloatArray) -> tuple[FloatArray, list[int]]:
        """Illness progress in [0, 1] at each time and the index of the episode in effect (-1: none)."""
        progress = np.zeros(hours.shape)
        which = np.full(hours.shape, -1, dtype=np.int64)
        for i, ep in enumerate(self.episodes):
            since = hours - ep.onset
            rising = (since >= 0) & (since <= ep.rise_hours)
            value = np.where(rising, np.clip(since, 0, None) / ep.rise_hours, 0.0)
            falling = np.zeros(hours.shape, dtype=bool)
            if ep.fall_hours > 0:  # admitted episodes have no home data after admission
                falling = (since > ep.rise_hours) & (since <= ep.rise_hours + ep.fall_hours)
                value = np.where(falling, 1.0 - (since - ep.rise_hours) / ep.fall_hours, value)
            active = rising | falling
            progress = np.where(active, value, progress)
            which = np.where(active, i, which)
        return progress, [int(v) for v in which]

    def _in_hospital(self, hours: FloatArray) -> npt.NDArray[np.bool_]:
        inside = np.zeros(hours.shape, dtype=bool)
        for admit, discharge in self.stays:
            inside |= (hours >= admit) & (hours < discharge)
        return inside

    def measurement_times(self) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """Home and clinic times (sorted) and a flag that is True for clinic visits."""
        rng = self.rng
        waking_hours = 15.0
        peak_rate = self.sets_per_day / waking_hours * 4.0  # thinning envelope: 4x when unwell
        n_candidates = rng.poisson(peak_rate * (self.end - self.start))
        home = np.sort(rng.uniform(self.start, self.end, n_candidates))
        hour_of_day = np.mod(home, 24.0)
        progress, _ = self._progress(home)
        if not self.config.measurement_rises_with_illness:
            progress = np.zeros(home.shape)
        keep = (hour_of_day >= 7) & (hour_of_day < 22) & (rng.random(home.shape) < (1 + 3 * progress) / 4)
        home = home[keep]
        interval = self.config.lab_interval_days[self.intensity] * 24
        first_visit = np.floor(self.start / 24) * 24 + 24 * rng.uniform(0, interval / 24)
        visits = np.arange(first_visit, self.end, interval)
        visits = np.floor(visits / 24) * 24 + 8 + rng.uniform(0, 6, visits.shape) + 24 * rng.integers(-1, 2, visits.shape)
        visits = visits[(visits >= self.start) & (visits < self.end)]
        times = np.concatenate([home, visits])
        clinic = np.concatenate([np.zeros(home.shape, bool), np.ones(visits.shape, bool)])
        keep_all = ~self._in_hospital(times)
        order = np.argsort(times[keep_all], kind="stable")
        return times[keep_all][order], clinic[keep_all][order]

    def observe(self) -> _PatientTables:
        rng = self.rng
        hours, clinic = self.measurement_times()
        n = hours.shape[0]
        age = (hours - self.birth) / HOURS_PER_YEAR
        progress, which = self._progress(hours)
        late = np.sqrt(progress) if self.config.pews_items_drift_early else progress**3
        eps = self.episodes

        def per_episode(attr: str) -> FloatArray:
            return np.array([getattr(eps[w], attr) if w >= 0 else 0.0 for w in which], dtype=np.float64)

        temp_rise = per_episode("temp_rise") * np.sqrt(progress) * rng.uniform(0.85, 1.0, n)
        if self.config.antipyretic_fraction > 0:
            treated = self._antipyretic_rng.random(n) < self.config.antipyretic_fraction
            temp_rise = np.where(treated, np.clip(temp_rise - self.config.antipyretic_effect_c, 0.0, None), temp_rise)
        day = np.floor(hours / 24).astype(np.int64)
        day_index = day - day.min() if n else day
        day_noise = rng.normal(0, 0.3, (int(day_index.max()) + 1 if n else 1, 2))

        hr_median = fleming_centile("heart_rate", 50, age)
        hr_lo, hr_hi = fleming_spread("heart_rate", age)
        hr_z = self.hr_offset + day_noise[day_index, 0] + rng.normal(0, 0.35, n)
        heart_rate = hr_median + np.where(hr_z >= 0, hr_hi, hr_lo) * hr_z
        heart_rate += 10.0 * temp_rise + per_episode("hr_fraction") * hr_median * progress

        rr_median = fleming_centile("respiratory_rate", 50, age)
        rr_lo, rr_hi = fleming_spread("respiratory_rate", age)
        rr_z = self.rr_offset + day_noise[day_index, 1] + rng.normal(0, 0.5, n)
        respiratory_rate = rr_median + np.where(rr_z >= 0, rr_hi, rr_lo) * rr_z
        respiratory_rate += rr_median * (0.04 * temp_rise + per_episode("rr_fraction") * progress)

        temperature = self.temp_base + rng.normal(0, 0.2, n) + temp_rise
        spo2 = np.minimum(100.0, self.spo2_base + rng.normal(0, 0.8, n)) - per_episode("spo2_drop") * progress
        sbp_median = np.where(age < 1, 80.0, np.minimum(90 + 2 * age, 120.0))
        sbp = (sbp_median + self.sbp_offset + rng.normal(0, 6, n)) * (1 - per_episode("sbp_fraction") * late)
        crt = 1.5 + rng.normal(0, 0.3, n) + per_episode("crt_rise") * late
        effort = np.clip(np.round(per_episode("effort") * progress + rng.normal(0, 0.25, n)), 0, 3) + 0.0
        avpu_level = np.where(late > 0.85, per_episode("avpu"), np.minimum(per_episode("avpu"), (late > 0.6) * 1.0))
        oxygen = np.full(n, self.home_oxygen)
        weight = np.array([_expected_weight_kg(a) for a in age]) * self.weight_factor
        since_onset = np.array([hours[k] - eps[w].onset if w >= 0 else np.inf for k, w in enumerate(which)])
        crp = self.crp_base + per_episode("crp_peak") * (1 / (1 + np.exp(-(since_onset - 18) / 6)))
        days_since = self.days_since_chemo(hours)
        anc = self.neutrophils(hours) * np.exp(rng.normal(0, 0.1, n))
        platelets = self.plt_base * self.plt_nadir ** _bump(days_since, 13.0, 4.0) * np.exp(rng.normal(0, 0.08, n))
        haemoglobin = self.hb_base - self.hb_drop * _bump(days_since, 14.0, 6.0) + rng.normal(0, 3, n)

        values: dict[str, FloatArray] = {
            "heart_rate": np.round(np.clip(heart_rate, 40, 250)),
            "respiratory_rate": np.round(np.clip(respiratory_rate, 8, 100)),
            "temperature_c": _rounded(np.clip(temperature, 34.5, 42.0), 1),
            "spo2": np.round(np.clip(spo2, 70, 100)),
            "systolic_bp": _rounded(np.clip(sbp, 40, 200)),
            "capillary_refill_s": np.clip(np.round(crt * 2) / 2, 0.5, 8),
            "respiratory_effort": effort,
            "oxygen_flow_l_min": _rounded(oxygen, 1),
            "avpu": avpu_level.astype(np.float64),
            "weight_kg": _rounded(weight, 1),
            "neutrophils_g_l": _rounded(anc, 2),
            "crp_mg_l": np.round(crp),
            "haemoglobin_g_l": np.round(haemoglobin),
            "platelets_g_l": np.round(platelets),
        }
        home_p = {
            "heart_rate": 0.95 if self.has_oximeter else 0.5,
            "respiratory_rate": 0.55,
            "temperature_c": 0.95,
            "spo2": 0.92 if self.has_oximeter else 0.0,
            "systolic_bp": 0.6 if self.has_bp_cuff else 0.0,
            "capillary_refill_s": 0.3,
            "respiratory_effort": 0.5,
            "oxygen_flow_l_min": 1.0 if self.home_oxygen > 0 else 0.15,
            "avpu": 0.4,
            "weight_kg": 0.05,
        }
        clinic_p = {
            "heart_rate": 0.98,
            "respiratory_rate": 0.9,
            "temperature_c": 0.98,
            "spo2": 0.95,
            "systolic_bp": 0.95,
            "capillary_refill_s": 0.5,
            "respiratory_effort": 0.8,
            "oxygen_flow_l_min": 0.0,
            "avpu": 0.9,
            "weight_kg": 0.9,
            "neutrophils_g_l": 0.97,
            "crp_mg_l": 0.7,
            "haemoglobin_g_l": 0.97,
            "platelets_g_l": 0.97,
        }
        for name in values:
            p = np.where(clinic, clinic_p[name], home_p.get(name, 0.0))
            values[name] = np.where(rng.random(n) < p, values[name], np.nan)
        avpu = [None if np.isnan(v) else AVPU_LEVELS[int(v)] for v in values.pop("avpu")]
        patient = {
            "patient_id": self.patient_id,
            "birth_date": pd.Timestamp(EPOCH) + pd.Timedelta(hours=self.birth),
            "sex": self.sex,
            "diagnosis_group": self.diagnosis,
            "treatment_intensity": self.intensity,
            "central_line": self.central_line,
            "monitoring_start": pd.Timestamp(EPOCH) + pd.Timedelta(seconds=round(self.start * 3600)),
            "monitoring_end": pd.Timestamp(EPOCH) + pd.Timedelta(seconds=round(self.end * 3600)),
        }
        events = sorted(e for e in self.events if e[0] < self.end)
        chemo = self.chemo[(self.chemo < self.end)]
        return _PatientTables(patient, hours, values, avpu, events, chemo)


def _timestamps(hours: FloatArray) -> pd.Series:
    seconds = np.round(hours * 3600.0).astype(np.int64)
    return pd.Series(pd.Timestamp(EPOCH) + pd.to_timedelta(seconds, unit="s")).astype("datetime64[ns, UTC]")


def simulate_cohort(
    n_patients: int,
    *,
    seed: int = 0,
    config: SimulationConfig | None = None,
    progress: bool = True,
) -> Cohort:
    """Simulates `n_patients` children (about `config.mean_follow_up_days` each) deterministically by `seed`."""
    config = config or SimulationConfig()
    streams = np.random.SeedSequence(seed).spawn(n_patients)
    tables: list[_PatientTables] = []
    for index in tqdm(range(n_patients), desc="simulating patients", unit="patient", disable=not progress):
        patient = _Patient(index, np.random.default_rng(streams[index]), config)
        patient.simulate_course()
        tables.append(patient.observe())

    counts = [t.obs_hours.shape[0] for t in tables]
    patient_ids = np.repeat([t.patient["patient_id"] for t in tables], counts)
    within = np.concatenate([np.arange(c) for c in counts]) if counts else np.array([], dtype=np.int64)
    obs_columns: dict[str, object] = {
        "observation_id": pd.array([f"{p}-{k:05d}" for p, k in zip(patient_ids, within, strict=True)], dtype="string"),
        "patient_id": pd.array(patient_ids, dtype="string"),
        "observed_at": _timestamps(np.concatenate([t.obs_hours for t in tables])).to_numpy(),
    }
    for name in SIGNAL_NAMES:
        if name == "avpu":
            obs_columns[name] = pd.array([a for t in tables for a in t.avpu], dtype="string")
        else:
            obs_columns[name] = np.concatenate([t.obs_values[name] for t in tables])
    observations = pd.DataFrame(obs_columns)
    observations["observed_at"] = observations["observed_at"].astype("datetime64[ns, UTC]")

    patients = pd.DataFrame([t.patient for t in tables])
    patients["patient_id"] = patients["patient_id"].astype("string")
    patients["birth_date"] = pd.to_datetime(patients["birth_date"]).dt.tz_convert("UTC").dt.normalize()
    event_rows = [(t.patient["patient_id"], h, kind) for t in tables for h, kind in t.events]
    events = pd.DataFrame(
        {
            "patient_id": pd.array([str(r[0]) for r in event_rows], dtype="string"),
            "event_time": _timestamps(np.array([r[1] for r in event_rows], dtype=np.float64)).to_numpy(),
            "event_type": [r[2] for r in event_rows],
        }
    )
    events["event_time"] = events["event_time"].astype("datetime64[ns, UTC]")
    chemo_counts = [t.chemo_hours.shape[0] for t in tables]
    chemotherapy = pd.DataFrame(
        {
            "patient_id": pd.array(
                [str(v) for v in np.repeat([str(t.patient["patient_id"]) for t in tables], chemo_counts)], dtype="string"
            ),
            "administered_at": _timestamps(np.concatenate([t.chemo_hours for t in tables])).to_numpy(),
        }
    )
    chemotherapy["administered_at"] = chemotherapy["administered_at"].astype("datetime64[ns, UTC]")
    return Cohort(observations=observations, patients=patients, events=events, chemotherapy=chemotherapy)
