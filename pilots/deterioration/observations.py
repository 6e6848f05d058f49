"""The observation schema a hospital or a telemonitoring app provides, and the one table of limits.

Observations are WIDE: one row per observation set (what a parent records at
one moment at home, or a clinic visit with its labs), one nullable column per
signal. Tables (CSV or Parquet):

observations (observations.parquet)
    observation_id      string, unique across the file
    patient_id          string
    observed_at         timestamp, UTC (naive timestamps are read as UTC)
    heart_rate          /min
    respiratory_rate    /min
    temperature_c       degrees Celsius
    spo2                % (peripheral oxygen saturation)
    systolic_bp         mmHg
    capillary_refill_s  seconds
    respiratory_effort  0 normal, 1 mild, 2 moderate, 3 severe increase or any apnoea
    oxygen_flow_l_min   L/min of supplemental oxygen, 0 = room air
    avpu                A (alert), V (voice), P (pain), U (unresponsive)
    weight_kg           kg
    neutrophils_g_l     absolute neutrophil count, 10^9/L (= G/L; 0.5 G/L = 500/uL)
    crp_mg_l            C-reactive protein, mg/L
    haemoglobin_g_l     g/L
    platelets_g_l       10^9/L
    Every signal column is optional and nullable (missing = not measured).

patients (patients.csv)
    patient_id, birth_date (date), diagnosis_group (one of DIAGNOSIS_GROUPS),
    treatment_intensity (low | medium | high; "high" = more intensive than
    ALL maintenance, as in the SPOG 2003 rule), central_line (true/false);
    optional sex, monitoring_start, monitoring_end.

events (events.csv)
    patient_id, event_time (UTC), event_type (one of EVENT_TYPES).

chemotherapy (chemotherapy.csv, optional)
    patient_id, administered_at (UTC): one row per chemotherapy day.

`SIGNALS` below is the single source of truth for names, units and valid
limits: the loaders, the validators and the transport's codec all read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, Literal

SignalKind = Literal["vital", "lab", "anthropometric"]


@dataclass(frozen=True)
class SignalSpec:
    """One observation column: `valid_min`/`valid_max` bound what is physiologically possible."""

    name: str
    unit: str
    description: str
    kind: SignalKind
    valid_min: float
    valid_max: float


SIGNALS: Final[Mapping[str, SignalSpec]] = MappingProxyType(
    {
        s.name: s
        for s in (
            SignalSpec("heart_rate", "/min", "heart rate", "vital", 20, 300),
            SignalSpec("respiratory_rate", "/min", "respiratory rate", "vital", 4, 120),
            SignalSpec("temperature_c", "Cel", "body temperature", "vital", 30, 44),
            SignalSpec("spo2", "%", "peripheral oxygen saturation", "vital", 30, 100),
            SignalSpec("systolic_bp", "mm[Hg]", "systolic blood pressure", "vital", 30, 250),
            SignalSpec("capillary_refill_s", "s", "capillary refill time", "vital", 0, 15),
            SignalSpec(
                "respiratory_effort",
                "{score}",
                "respiratory effort: 0 normal, 1 mild, 2 moderate, 3 severe increase or apnoea",
                "vital",
                0,
                3,
            ),
            SignalSpec("oxygen_flow_l_min", "L/min", "supplemental oxygen flow, 0 = room air", "vital", 0, 30),
            SignalSpec("avpu", "{score}", "consciousness: A=0, V=1, P=2, U=3", "vital", 0, 3),
            SignalSpec("weight_kg", "kg", "body weight", "anthropometric", 0.3, 250),
            SignalSpec("neutrophils_g_l", "10*9/L", "absolute neutrophil count", "lab", 0, 100),
            SignalSpec("crp_mg_l", "mg/L", "C-reactive protein", "lab", 0, 600),
            SignalSpec("haemoglobin_g_l", "g/L", "haemoglobin", "lab", 25, 250),
            SignalSpec("platelets_g_l", "10*9/L", "platelet count", "lab", 0, 2000),
        )
    }
)
SIGNAL_NAMES: Final = tuple(SIGNALS)
_SIGNAL_SET: Final = frozenset(SIGNAL_NAMES)
_NO_VALUES: Final[Mapping[str, None]] = MappingProxyType(dict.fromkeys(SIGNAL_NAMES))
NUMERIC_SIGNALS: Final = tuple(name for name in SIGNALS if name != "avpu")

AVPU_LEVELS: Final = ("A", "V", "P", "U")
DIAGNOSIS_GROUPS: Final = ("all", "aml", "lymphoma", "cns_tumour", "solid_tumour")
TREATMENT_INTENSITIES: Final = ("low", "medium", "high")
EVENT_TYPES: Final = ("unplanned_admission", "picu_transfer", "sepsis")

OBSERVATION_KEY_COLUMNS: Final = ("observation_id", "patient_id", "observed_at")
PATIENT_COLUMNS: Final = ("patient_id", "birth_date", "diagnosis_group", "treatment_intensity", "central_line")
EVENT_COLUMNS: Final = ("patient_id", "event_time", "event_type")
CHEMOTHERAPY_COLUMNS: Final = ("patient_id", "administered_at")


@dataclass(frozen=True)
class Observation:
    """One observation set. `observed_at` must be timezone-aware (UTC or any offset)."""

    observation_id: str
    observed_at: datetime
    heart_rate: float | None = None
    respiratory_rate: float | None = None
    temperature_c: float | None = None
    spo2: float | None = None
    systolic_bp: float | None = None
    capillary_refill_s: float | None = None
    respiratory_effort: float | None = None
    oxygen_flow_l_min: float | None = None
    avpu: str | None = None
    weight_kg: float | None = None
    neutrophils_g_l: float | None = None
    crp_mg_l: float | None = None
    haemoglobin_g_l: float | None = None
    platelets_g_l: float | None = None

    @classmethod
    def stored(cls, observation_id: str, observed_at: datetime, values: Mapping[str, Any]) -> Observation:
        """An observation as the store rebuilds it from a row, hundreds per score: its fields filled in
        directly, a few times faster than a frozen dataclass's `__init__` (one `object.__setattr__` each)."""
        if not _SIGNAL_SET.issuperset(values):
            raise TypeError("a stored observation names a signal this release does not know")
        observation = object.__new__(cls)
        fields = observation.__dict__
        fields.update(_NO_VALUES)
        fields.update(values)
        fields["observation_id"] = observation_id
        fields["observed_at"] = observed_at
        return observation


@dataclass(frozen=True)
class PatientInfo:
    patient_id: str
    birth_date: date
    diagnosis_group: str
    treatment_intensity: str
    central_line: bool
    sex: str | None = None


@dataclass(frozen=True)
class PatientHistory:
    """Everything known about one patient up to now: the input of online scoring."""

    patient: PatientInfo
    observations: tuple[Observation, ...] = ()
    chemotherapy_at: tuple[datetime, ...] = field(default_factory=tuple)


def latest_measurements(
    observations: Iterable[Observation], signals: Iterable[str], at: datetime, max_age: timedelta
) -> dict[str, Observation]:
    """For each of `signals`, the newest observation set that measured it at or before `at` and at most
    `max_age` before it (the first of equally new ones); signals measured by none are left out."""
    wanted = tuple(signals)
    latest: dict[str, Observation] = {}
    for obs in observations:
        if obs.observed_at > at or at - obs.observed_at > max_age:
            continue
        for name in wanted:
            if getattr(obs, name) is None:
                continue
            current = latest.get(name)
            if current is None or obs.observed_at > current.observed_at:
                latest[name] = obs
    return latest
