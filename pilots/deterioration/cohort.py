"""A cohort's tables on disk: writing them, and loading a hospital's own files with clear errors.

The schema is described in `observations` (module docstring). Loaders accept
CSV or Parquet, coerce types, and raise `InvalidInput` listing every problem
as a `FieldViolation` whose field is `<table>.<column>` and whose description
gives the reason and, for ranges, the allowed range; never a patient's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from clinpred.pilots.common.errors import FieldViolation, InvalidInput, ViolationCollector
from clinpred.pilots.deterioration.observations import (
    AVPU_LEVELS,
    CHEMOTHERAPY_COLUMNS,
    DIAGNOSIS_GROUPS,
    EVENT_COLUMNS,
    EVENT_TYPES,
    NUMERIC_SIGNALS,
    OBSERVATION_KEY_COLUMNS,
    PATIENT_COLUMNS,
    SIGNAL_NAMES,
    SIGNALS,
    TREATMENT_INTENSITIES,
    Observation,
    PatientHistory,
    PatientInfo,
)

OBSERVATIONS_FILE: Final = "observations.parquet"
PATIENTS_FILE: Final = "patients.csv"
EVENTS_FILE: Final = "events.csv"
CHEMOTHERAPY_FILE: Final = "chemotherapy.csv"


@dataclass(frozen=True)
class Cohort:
    """Four tables; see `observations` for columns and units."""

    observations: pd.DataFrame
    patients: pd.DataFrame
    events: pd.DataFrame
    chemotherapy: pd.DataFrame

    @property
    def patient_days(self) -> float:
        """Days of home monitoring, from each patient's first to last observation."""
        spans = self.observations.groupby("patient_id")["observed_at"].agg(["min", "max"])
        return float(((spans["max"] - spans["min"]).dt.total_seconds() / 86400.0).sum())


def write_cohort(cohort: Cohort, out_dir: Path | str) -> dict[str, Path]:
    """Writes observations.parquet, patients.csv, events.csv and chemotherapy.csv; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "observations": out / OBSERVATIONS_FILE,
        "patients": out / PATIENTS_FILE,
        "events": out / EVENTS_FILE,
        "chemotherapy": out / CHEMOTHERAPY_FILE,
    }
    cohort.observations.to_parquet(paths["observations"], index=False)
    patients = cohort.patients.copy()
    patients["birth_date"] = pd.to_datetime(patients["birth_date"]).dt.strftime("%Y-%m-%d")
    patients.to_csv(paths["patients"], index=False)
    _with_iso_times(cohort.events, "event_time").to_csv(paths["events"], index=False)
    _with_iso_times(cohort.chemotherapy, "administered_at").to_csv(paths["chemotherapy"], index=False)
    return paths


def read_cohort(directory: Path | str) -> Cohort:
    """Reads a folder written by `write_cohort` or laid out the same way by a hospital."""
    folder = Path(directory)
    chemotherapy_path = folder / CHEMOTHERAPY_FILE
    return Cohort(
        observations=load_observations(_first_existing(folder, "observations")),
        patients=load_patients(_first_existing(folder, "patients")),
        events=load_events(_first_existing(folder, "events")),
        chemotherapy=load_chemotherapy(chemotherapy_path) if chemotherapy_path.exists() else empty_chemotherapy(),
    )


def _first_existing(folder: Path, stem: str) -> Path:
    for suffix in (".parquet", ".csv"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.exists():
            return candidate
    raise InvalidInput.of([FieldViolation(stem, f"no {stem}.parquet or {stem}.csv in the cohort folder")])


def _read_table(source: Path | str | pd.DataFrame) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source.copy()
    path = Path(source)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"patient_id": "string", "observation_id": "string"})


def _with_iso_times(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    out = frame.copy()
    out[column] = pd.to_datetime(out[column], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def _utc_column(frame: pd.DataFrame, table: str, column: str, problems: ViolationCollector) -> None:
    try:
        parsed = pd.to_datetime(frame[column], utc=True, errors="coerce", format="mixed")
    except (TypeError, ValueError):
        problems.add(f"{table}.{column}", "is not a timestamp column")
        return
    bad = int(parsed.isna().sum() - frame[column].isna().sum())
    if bad:
        problems.add(f"{table}.{column}", f"{bad} value(s) are not timestamps (ISO 8601, UTC expected)")
    if parsed.isna().any():
        problems.add(f"{table}.{column}", "is required in every row")
    frame[column] = parsed.astype("datetime64[ns, UTC]")


def _required(frame: pd.DataFrame, table: str, columns: tuple[str, ...], problems: ViolationCollector) -> bool:
    missing = [c for c in columns if c not in frame.columns]
    for column in missing:
        problems.add(f"{table}.{column}", "required column is missing")
    return not missing


def _id_column(frame: pd.DataFrame, table: str, column: str, problems: ViolationCollector) -> None:
    if frame[column].isna().any():
        problems.add(f"{table}.{column}", "is required in every row")
    frame[column] = frame[column].astype("string")


def load_observations(source: Path | str | pd.DataFrame) -> pd.DataFrame:
    """Loads and checks an observations table (Parquet, CSV or a DataFrame); sorted by patient and time."""
    frame = _read_table(source)
    problems = ViolationCollector()
    table = "observations"
    if not _required(frame, table, OBSERVATION_KEY_COLUMNS, problems):
        problems.raise_if_any()
    unknown = [c for c in frame.columns if c not in OBSERVATION_KEY_COLUMNS and c not in SIGNAL_NAMES]
    for column in unknown:
        problems.add(f"{table}.{column}", "unknown column (see the observation schema)")
    if not any(c in frame.columns for c in SIGNAL_NAMES):
        problems.add(table, "has no signal column")
    _id_column(frame, table, "observation_id", problems)
    _id_column(frame, table, "patient_id", problems)
    duplicated = int(frame["observation_id"].duplicated().sum())
    if duplicated:
        problems.add(f"{table}.observation_id", f"{duplicated} duplicate id(s); ids must be unique")
    _utc_column(frame, table, "observed_at", problems)
    for name in NUMERIC_SIGNALS:
        if name not in frame.columns:
            frame[name] = np.nan
            continue
        values = pd.to_numeric(frame[name], errors="coerce")
        not_numeric = int(values.isna().sum() - frame[name].isna().sum())
        if not_numeric:
            problems.add(f"{table}.{name}", f"{not_numeric} value(s) are not numbers")
        spec = SIGNALS[name]
        outside = int(((values < spec.valid_min) | (values > spec.valid_max)).sum())
        if outside:
            problems.add(
                f"{table}.{name}",
                f"{outside} value(s) outside the valid range {spec.valid_min:g}-{spec.valid_max:g} {spec.unit}",
            )
        frame[name] = values.astype(np.float64)
    if "avpu" in frame.columns:
        levels = frame["avpu"].astype("string").str.strip().str.upper()
        wrong = int((levels.notna() & ~levels.isin(AVPU_LEVELS)).sum())
        if wrong:
            problems.add(f"{table}.avpu", f"{wrong} value(s) are not one of A, V, P, U")
        frame["avpu"] = levels
    else:
        frame["avpu"] = pd.array([pd.NA] * len(frame), dtype="string")
    problems.raise_if_any()
    columns = [*OBSERVATION_KEY_COLUMNS, *SIGNAL_NAMES]
    return frame[columns].sort_values(["patient_id", "observed_at"], kind="stable").reset_index(drop=True)


def load_patients(source: Path | str | pd.DataFrame) -> pd.DataFrame:
    """Loads and checks a patients table; birth_date becomes a UTC midnight timestamp."""
    frame = _read_table(source)
    problems = ViolationCollector()
    table = "patients"
    if not _required(frame, table, PATIENT_COLUMNS, problems):
        problems.raise_if_any()
    _id_column(frame, table, "patient_id", problems)
    if frame["patient_id"].duplicated().any():
        problems.add(f"{table}.patient_id", "duplicate patient id(s)")
    _utc_column(frame, table, "birth_date", problems)
    for column, allowed in (("diagnosis_group", DIAGNOSIS_GROUPS), ("treatment_intensity", TREATMENT_INTENSITIES)):
        values = frame[column].astype("string").str.strip().str.lower()
        wrong = int((~values.isin(allowed)).sum())
        if wrong:
            problems.add(f"{table}.{column}", f"{wrong} value(s) not one of {', '.join(allowed)}")
        frame[column] = values
    central = frame["central_line"].map(
        lambda v: {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(str(v).strip().lower())
    )
    if central.isna().any():
        problems.add(f"{table}.central_line", "must be true or false in every row")
    frame["central_line"] = central.fillna(False).astype(bool)
    problems.raise_if_any()
    return frame.reset_index(drop=True)


def load_events(source: Path | str | pd.DataFrame) -> pd.DataFrame:
    frame = _read_table(source)
    problems = ViolationCollector()
    table = "events"
    if not _required(frame, table, EVENT_COLUMNS, problems):
        problems.raise_if_any()
    _id_column(frame, table, "patient_id", problems)
    _utc_column(frame, table, "event_time", problems)
    types = frame["event_type"].astype("string").str.strip().str.lower()
    wrong = int((~types.isin(EVENT_TYPES)).sum())
    if wrong:
        problems.add(f"{table}.event_type", f"{wrong} value(s) not one of {', '.join(EVENT_TYPES)}")
    frame["event_type"] = types
    problems.raise_if_any()
    return frame[list(EVENT_COLUMNS)].sort_values(["patient_id", "event_time"], kind="stable").reset_index(drop=True)


def load_chemotherapy(source: Path | str | pd.DataFrame) -> pd.DataFrame:
    frame = _read_table(source)
    problems = ViolationCollector()
    table = "chemotherapy"
    if not _required(frame, table, CHEMOTHERAPY_COLUMNS, problems):
        problems.raise_if_any()
    _id_column(frame, table, "patient_id", problems)
    _utc_column(frame, table, "administered_at", problems)
    problems.raise_if_any()
    columns = list(CHEMOTHERAPY_COLUMNS)
    return frame[columns].sort_values(["patient_id", "administered_at"], kind="stable").reset_index(drop=True)


def empty_chemotherapy() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": pd.array([], dtype="string"),
            "administered_at": pd.Series([], dtype="datetime64[ns, UTC]"),
        }
    )


def check_references(observations: pd.DataFrame, patients: pd.DataFrame, events: pd.DataFrame) -> None:
    """Every observation and event must name a known patient; raises InvalidInput otherwise."""
    problems = ViolationCollector()
    known = set(patients["patient_id"].astype(str))
    for table, frame in (("observations", observations), ("events", events)):
        unknown = int((~frame["patient_id"].astype(str).isin(known)).sum())
        if unknown:
            problems.add(f"{table}.patient_id", f"{unknown} row(s) name a patient absent from the patients table")
    problems.raise_if_any()


def patient_history(
    observations: pd.DataFrame,
    patients: pd.DataFrame,
    patient_id: str,
    chemotherapy: pd.DataFrame | None = None,
    *,
    until: datetime | None = None,
) -> PatientHistory:
    """One patient's `PatientHistory` from loaded tables (observations after `until` left out)."""
    info = patients[patients["patient_id"].astype(str) == patient_id]
    if info.empty:
        raise InvalidInput.of([FieldViolation("patient_id", "unknown patient")])
    row = info.iloc[0]
    rows = observations[observations["patient_id"].astype(str) == patient_id].sort_values("observed_at")
    if until is not None:
        rows = rows[rows["observed_at"] <= pd.Timestamp(until)]
    columns = {name: rows[name].to_numpy(dtype=object) for name in SIGNAL_NAMES if name in rows.columns}
    ids = rows["observation_id"].astype(str).to_numpy()
    times = [t.to_pydatetime() for t in pd.to_datetime(rows["observed_at"], utc=True)]
    history_rows = []
    for k in range(len(rows)):
        values: dict[str, Any] = {}
        for name, column in columns.items():
            value = column[k]
            if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
                continue
            values[name] = str(value) if name == "avpu" else float(value)
        history_rows.append(Observation(observation_id=str(ids[k]), observed_at=times[k], **values))
    chemo: tuple[datetime, ...] = ()
    if chemotherapy is not None:
        given = chemotherapy[chemotherapy["patient_id"].astype(str) == patient_id]["administered_at"]
        chemo = tuple(t.to_pydatetime() for t in pd.to_datetime(given, utc=True).sort_values())
        if until is not None:
            chemo = tuple(t for t in chemo if t <= until)
    birth = pd.Timestamp(row["birth_date"])
    patient = PatientInfo(
        patient_id=patient_id,
        birth_date=date(birth.year, birth.month, birth.day),
        diagnosis_group=str(row["diagnosis_group"]),
        treatment_intensity=str(row["treatment_intensity"]),
        central_line=bool(row["central_line"]),
        sex=None if "sex" not in row.index or pd.isna(row["sex"]) else str(row["sex"]),
    )
    return PatientHistory(patient, tuple(history_rows), chemo)
