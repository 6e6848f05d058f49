"""`clinpred train|simulate deterioration` and `clinpred call deterioration ...`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from clinpred.cli.options import TlsOption, client_tls, print_message
from clinpred.cli.services import register_models
from clinpred.cli.settings import CliSettings

call_app = typer.Typer(help="Call the deterioration service.", no_args_is_help=True)
DEFAULT_TARGET = "127.0.0.1:50052"
Target = Annotated[str, typer.Option(help="host:port of the service.")]
PatientId = Annotated[str, typer.Option(help="The patient's pseudonymous id.")]


def train(
    data: Annotated[Path | None, typer.Option(help="observations.parquet (or .csv); default: a simulated cohort.")] = None,
    outcomes: Annotated[Path | None, typer.Option(help="events.csv: patient_id, event_time, event_type.")] = None,
    patients: Annotated[Path | None, typer.Option(help="patients.csv (default: beside --data).")] = None,
    chemotherapy: Annotated[Path | None, typer.Option(help="chemotherapy.csv (default: beside --data, if there).")] = None,
    horizon_hours: Annotated[int, typer.Option(help="Predict deterioration within this many hours.")] = 24,
    version: Annotated[str | None, typer.Option(help="Package version (default: next minor).")] = None,
    register: Annotated[bool, typer.Option(help="Register the package in the BentoML model store.")] = True,
    simulated_patients: Annotated[
        int, typer.Option(min=50, help="Without --data: children in the simulated cohort (1200 builds the reference).")
    ] = 1200,
    seed: Annotated[int, typer.Option(help="Without --data: simulator and training seed.")] = 0,
) -> None:
    """Train the deterioration model (LightGBM on windowed features), split by patient, against PEWS."""
    from clinpred.pilots.deterioration.cohort import load_chemotherapy, load_events, load_observations, load_patients
    from clinpred.pilots.deterioration.training import build_reference_package, train_deterioration

    settings = CliSettings()
    if data is None:
        report = build_reference_package(
            settings.models_root, n_patients=simulated_patients, seed=seed, version=version,
            horizon_hours=horizon_hours, progress=True,
        )
    else:
        if outcomes is None:
            raise typer.BadParameter("--outcomes events.csv is required with --data")
        folder = data.parent
        patients = patients or folder / "patients.csv"
        chemo = chemotherapy or (folder / "chemotherapy.csv" if (folder / "chemotherapy.csv").exists() else None)
        report = train_deterioration(
            load_observations(data),
            load_patients(patients),
            load_events(outcomes),
            chemotherapy=load_chemotherapy(chemo) if chemo else None,
            models_root=settings.models_root,
            version=version,
            horizon_hours=horizon_hours,
            progress=True,
        )
    package, metrics = report.package, report.metrics
    typer.echo(f"model package {package.path} (sha256 {package.identity.sha256})")
    from clinpred.services.common.codec import encode_metrics

    headline = {k: v for k, v in encode_metrics(metrics).items() if k.startswith(("test.", "conformal_test."))}
    typer.echo(json.dumps(headline, indent=2, sort_keys=True))
    if register:
        register_models(settings, "deterioration")


def simulate(
    patients: Annotated[int, typer.Option(help="Number of children.")] = 100,
    days: Annotated[float, typer.Option(help="Mean follow-up per child, days.")] = 90.0,
    out: Annotated[Path, typer.Option(help="Folder for observations.parquet, patients.csv, events.csv.")] = Path("cohort"),
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same cohort.")] = 0,
) -> None:
    """Simulate a paediatric oncology telemonitoring cohort in the schema a hospital would provide."""
    from clinpred.pilots.deterioration.cohort import write_cohort
    from clinpred.pilots.deterioration.simulator import SimulationConfig, simulate_cohort

    cohort = simulate_cohort(patients, seed=seed, config=SimulationConfig(mean_follow_up_days=days), progress=True)
    written = write_cohort(cohort, out)
    typer.echo(f"{cohort.patient_days:.0f} patient-days, {len(cohort.events)} events")
    for table, path in written.items():
        typer.echo(f"  {table}: {path}")


def _client(target: str, tls_dir: Path | None) -> Any:
    from clinpred.services.deterioration.client import DeteriorationClient

    return DeteriorationClient(target, tls=client_tls(tls_dir))


def _read_json(source: Path) -> Any:
    return json.loads(sys.stdin.read() if str(source) == "-" else source.read_text())


@call_app.command("register")
def register_patient(
    patient: Annotated[Path, typer.Option(help="JSON Patient (see the proto); - reads standard input.")],
    target: Target = DEFAULT_TARGET,
    tls_dir: TlsOption = None,
) -> None:
    """Create or update a patient."""
    with _client(target, tls_dir) as client:
        print_message(client.register_patient(_read_json(patient)))


@call_app.command("record")
def record(
    patient_id: PatientId,
    observations: Annotated[Path, typer.Option(help="JSON list of Observations; - reads standard input.")],
    target: Target = DEFAULT_TARGET,
    tls_dir: TlsOption = None,
) -> None:
    """Record a batch of observations; prints the updated risk."""
    with _client(target, tls_dir) as client:
        print_message(client.record(patient_id, _read_json(observations)))


@call_app.command("latest")
def latest(
    patient_id: PatientId,
    known_version: Annotated[int, typer.Option(help="The version you already have.")] = 0,
    target: Target = DEFAULT_TARGET,
    tls_dir: TlsOption = None,
) -> None:
    """The latest risk, or "unchanged" when --known-version is still the latest."""
    with _client(target, tls_dir) as client:
        print_message(client.latest(patient_id, known_version))


@call_app.command("history")
def history(
    patient_id: PatientId,
    page_size: Annotated[int, typer.Option(help="Scores per page.")] = 20,
    page_token: Annotated[str, typer.Option(help="next_page_token of the previous page.")] = "",
    target: Target = DEFAULT_TARGET,
    tls_dir: TlsOption = None,
) -> None:
    """Earlier scores, newest first."""
    with _client(target, tls_dir) as client:
        print_message(client.history(patient_id, page_size, page_token))


@call_app.command("watch")
def watch(
    ward: Annotated[str, typer.Option(help="Watch this ward.")] = "",
    team: Annotated[str, typer.Option(help="Or this team.")] = "",
    target: Target = DEFAULT_TARGET,
    tls_dir: TlsOption = None,
) -> None:
    """Print new scores and alerts of a ward or team as they come (Ctrl-C stops)."""
    with _client(target, tls_dir) as client:
        for event in client.watch(ward=ward, team=team):
            score = event.score
            flag = "ALERT " if event.alert else ""
            typer.echo(f"{flag}{score.patient_id} v{score.version} p={score.probability:.4f} band={pb_band_name(score.band)}")


@call_app.command("fhir")
def fhir(patient_id: PatientId, target: Target = DEFAULT_TARGET, tls_dir: TlsOption = None) -> None:
    """The latest score as FHIR R4 JSON (RiskAssessment, then the PEWS Observation)."""
    with _client(target, tls_dir) as client:
        answer = client.export_fhir(patient_id)
    typer.echo(json.dumps([json.loads(answer.risk_assessment_json), json.loads(answer.pews_observation_json)], indent=2))


@call_app.command("info")
def info(target: Target = DEFAULT_TARGET, tls_dir: TlsOption = None) -> None:
    """The serving model: identity, horizon, features, held-out metrics beside PEWS."""
    with _client(target, tls_dir) as client:
        print_message(client.model_info())


@call_app.command("example")
def example(target: Target = DEFAULT_TARGET, tls_dir: TlsOption = None) -> None:
    """Register a demo patient, record a feverish evening at home, and poll the risk."""
    from clinpred.services.deterioration.client import observation

    now = datetime.now(UTC).replace(microsecond=0)
    patient = {
        "patientId": "demo-0001",
        "birthDate": "2019-05-01",
        "sex": "female",
        "diagnosisGroup": "all",
        "treatmentIntensity": "high",
        "centralLine": True,
        "ward": "oncology-home",
        "team": "team-a",
        "chemotherapyAt": [(now - timedelta(days=8)).isoformat().replace("+00:00", "Z")],
    }
    readings: list[tuple[int, dict[str, Any]]] = [
        (6, {"heart_rate": 112, "respiratory_rate": 24, "temperature_c": 37.2, "spo2": 98}),
        (3, {"heart_rate": 128, "respiratory_rate": 28, "temperature_c": 38.4, "spo2": 96, "avpu": "A"}),
        (1, {"heart_rate": 146, "respiratory_rate": 34, "temperature_c": 39.1, "spo2": 93, "capillary_refill_s": 3}),
    ]
    with _client(target, tls_dir) as client:
        client.register_patient(patient)
        batch = [
            observation(f"demo-{int((now - timedelta(hours=h)).timestamp())}", now - timedelta(hours=h), **values)
            for h, values in readings
        ]
        answer = client.record("demo-0001", batch)
        polled = client.latest("demo-0001", known_version=answer.score.version)
    score = answer.score
    typer.echo(f"stored {answer.stored}, already stored {answer.duplicates}")
    typer.echo(
        f"patient demo-0001: P(deterioration within {score.horizon_hours} h) = {score.probability:.4f}, "
        f"band {pb_band_name(score.band)}, PEWS {score.pews.total}, version {score.version}"
    )
    for reason in score.explanation.top_reasons:
        typer.echo(f"  - {reason.text}")
    for flag in score.quality_flags:
        typer.echo(f"  ! {flag.message}")
    typer.echo(f"polling with version {score.version}: {'unchanged' if polled.HasField('unchanged') else 'changed'}")
    typer.echo(f"model: {score.model.name} {score.model.version} sha256 {score.model.sha256}")


def pb_band_name(band: int) -> str:
    from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb

    return pb.RiskBand.Name(band).removeprefix("RISK_BAND_").lower()
