"""`clinpred train|simulate deterioration` and `clinpred call deterioration ...`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clinpred.cli.options import (
    InsecureOption,
    JsonOption,
    SealedOption,
    TargetOption,
    TimeoutOption,
    TlsOption,
    client_tls,
    default_target,
    input_file,
    parse_message,
    print_json,
    print_message,
    print_metrics,
    print_training_result,
    read_json,
)
from clinpred.cli.services import register_models
from clinpred.pilots.common.errors import FieldViolation, InvalidInput

if TYPE_CHECKING:
    from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
    from clinpred.services.deterioration.client import DeteriorationClient

call_app = typer.Typer(help="Call the deterioration service.", no_args_is_help=True)
DEFAULT_TARGET = default_target("deterioration")
DEFAULT_TIMEOUT = 10.0
PatientId = Annotated[str, typer.Option(help="The patient's pseudonymous id.")]
PatientFile = Annotated[
    Path, input_file("--patient", "JSON Patient, proto3 JSON of clinpred.deterioration.v1.Patient; - reads standard input.")
]
ObservationsFile = Annotated[
    Path,
    input_file(
        "--observations",
        "JSON list of Observations, proto3 JSON of clinpred.deterioration.v1.Observation; - reads standard input.",
    ),
]


def train(
    data: Annotated[Path | None, typer.Option(help="observations.parquet (or .csv); default: a simulated cohort.")] = None,
    outcomes: Annotated[Path | None, typer.Option(help="events.csv: patient_id, event_time, event_type.")] = None,
    patients: Annotated[Path | None, typer.Option(help="patients.csv (default: beside --data).")] = None,
    chemotherapy: Annotated[Path | None, typer.Option(help="chemotherapy.csv (default: beside --data, if there).")] = None,
    horizon_hours: Annotated[int, typer.Option(help="Predict deterioration within this many hours.")] = 24,
    version: Annotated[
        str | None, typer.Option("--package-version", help="Version of the new package (default: the next minor).")
    ] = None,
    register: Annotated[bool, typer.Option(help="Register the package in the BentoML model store.")] = True,
    simulated_patients: Annotated[
        int, typer.Option(min=50, help="Without --data: children in the simulated cohort (1200 builds the reference).")
    ] = 1200,
    scenario_patients: Annotated[
        int,
        typer.Option(
            min=0,
            help="Without --data: also test the simulator's assumptions on cohorts of this many children "
            "(0: skip; 1200 builds the reference).",
        ),
    ] = 0,
    seed: Annotated[int, typer.Option(help="Without --data: simulator and training seed.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Train the deterioration model (LightGBM on windowed features), split by patient, against PEWS and the FN pathway.

    Progress goes to standard error. --json: {"package": {"pilot", "name", "version", "sha256", "path"},
    "metrics": {NAME: NUMBER} (the test., headline. and conformal_test. figures), "registered": BOOL}.
    """
    from clinpred.cli.settings import CliSettings
    from clinpred.pilots.deterioration.cohort import load_chemotherapy, load_events, load_observations, load_patients
    from clinpred.pilots.deterioration.training import build_reference_package, train_deterioration

    settings = CliSettings()
    if data is None:
        report = build_reference_package(
            settings.models_root, n_patients=simulated_patients, seed=seed, version=version,
            horizon_hours=horizon_hours, progress=True, scenario_patients=scenario_patients,
        )
    else:
        if outcomes is None:
            raise typer.BadParameter("--outcomes events.csv is required with --data", param_hint="--outcomes")
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
    from clinpred.services.common.codec import encode_metrics

    shown = ("test.", "headline.", "conformal_test.")
    headline = {k: v for k, v in encode_metrics(report.metrics).items() if k.startswith(shown)}
    if register:
        register_models(settings, "deterioration")
    print_training_result("deterioration", report.package, headline, register, as_json)


def simulate(
    patients: Annotated[int, typer.Option(help="Number of children.")] = 100,
    days: Annotated[float, typer.Option(help="Mean follow-up per child, days.")] = 90.0,
    out: Annotated[Path, typer.Option(help="Folder for observations.parquet, patients.csv, events.csv.")] = Path("cohort"),
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same cohort.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Simulate a paediatric oncology telemonitoring cohort in the schema a hospital would provide.

    --json: {"patients": N, "patient_days": NUMBER, "events": N, "files": {TABLE: PATH}}.
    """
    from clinpred.pilots.deterioration.cohort import write_cohort
    from clinpred.pilots.deterioration.simulator import SimulationConfig, simulate_cohort

    cohort = simulate_cohort(patients, seed=seed, config=SimulationConfig(mean_follow_up_days=days), progress=True)
    written = write_cohort(cohort, out)
    if as_json:
        print_json({
            "patients": patients, "patient_days": float(cohort.patient_days), "events": len(cohort.events),
            "files": {table: str(path) for table, path in written.items()},
        })
        return
    typer.echo(f"{cohort.patient_days:.0f} patient-days, {len(cohort.events)} events")
    for table, path in written.items():
        typer.echo(f"  {table}: {path}")


def _client(target: str, timeout: float, tls_dir: Path | None, insecure_development: bool, sealed: bool) -> DeteriorationClient:
    from clinpred.services.deterioration.client import DeteriorationClient

    return DeteriorationClient(target, timeout=timeout, tls=client_tls(tls_dir, insecure_development), sealed=sealed)


def _read_patient(source: Path) -> pb.Patient:
    from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb

    return parse_message(read_json(source, "--patient"), pb.Patient, "--patient")


def _read_observations(source: Path) -> list[pb.Observation]:
    from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb

    value = read_json(source, "--observations")
    if not isinstance(value, list):
        raise InvalidInput.of([FieldViolation("--observations", "must be a JSON list of Observation objects")])
    return [parse_message(item, pb.Observation, f"--observations[{i}]") for i, item in enumerate(value)]


def _timestamp(message: Any) -> str:
    return str(message.ToJsonString()) if message.seconds or message.nanos else "-"


def band_name(band: int) -> str:
    from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb

    return pb.RiskBand.Name(band).removeprefix("RISK_BAND_").lower()


def _print_score(score: pb.RiskScore) -> None:
    stored = f", version {score.version}" if score.version else " (not stored)"
    typer.echo(
        f"patient {score.patient_id}: P(deterioration within {score.horizon_hours} h) = {score.probability:.4f}, "
        f"band {band_name(score.band)}, PEWS {score.pews.total}{stored}, scored at {_timestamp(score.scored_at)}"
    )
    if score.confidence.statement:
        typer.echo(f"  {score.confidence.statement}")
    for reason in score.explanation.top_reasons:
        typer.echo(f"  - {reason.text}")
    for flag in score.quality_flags:
        typer.echo(f"  ! {flag.message}")
    typer.echo(f"model: {score.model.name} {score.model.version} sha256 {score.model.sha256}")


@call_app.command("register")
def register_patient(
    patient: PatientFile,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """Create or update a patient (RegisterPatient). --json: the RegisterPatientResponse."""
    from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb

    message = _read_patient(patient)
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        answer = client.register_patient(message)
    if as_json:
        print_message(pb.RegisterPatientResponse(patient=answer))
        return
    typer.echo(f"registered patient {answer.patient_id} (ward {answer.ward or '-'}, team {answer.team or '-'})")


@call_app.command("record")
def record(
    patient_id: PatientId,
    observations: ObservationsFile,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """Record a batch of observations and print the updated risk (RecordObservations).

    --json: the RecordObservationsResponse.
    """
    messages = _read_observations(observations)
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        answer = client.record(patient_id, messages)
    if as_json:
        print_message(answer)
        return
    typer.echo(f"stored {answer.stored}, already stored {answer.duplicates}")
    _print_score(answer.score)


@call_app.command("score")
def score(
    patient: PatientFile,
    observations: ObservationsFile,
    at: Annotated[
        str | None,
        typer.Option(help="Score as of this ISO 8601 time with a UTC offset, e.g. 2025-05-01T08:00:00Z (default: now)."),
    ] = None,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """Score a patient's observations without storing anything (ScoreObservations).

    --json: the ScoreObservationsResponse.
    """
    from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb

    when = _parse_time(at, "--at") if at is not None else None
    person, readings = _read_patient(patient), _read_observations(observations)
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        answer = client.score(person, readings, at=when)
    if as_json:
        print_message(pb.ScoreObservationsResponse(score=answer))
        return
    _print_score(answer)


def _parse_time(text: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("is not an ISO 8601 time, e.g. 2025-05-01T08:00:00Z", param_hint=option) from None
    if parsed.tzinfo is None:
        raise typer.BadParameter("needs a UTC offset, e.g. Z or +02:00", param_hint=option)
    return parsed


@call_app.command("latest")
def latest(
    patient_id: PatientId,
    known_version: Annotated[int, typer.Option(help="The version you already have.")] = 0,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """The latest risk, or "unchanged" when --known-version is still the latest (GetLatestRisk).

    --json: the GetLatestRiskResponse.
    """
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        answer = client.latest(patient_id, known_version)
    if as_json:
        print_message(answer)
    elif answer.HasField("unchanged"):
        typer.echo(f"unchanged: version {answer.unchanged.version} is still the latest")
    else:
        _print_score(answer.score)


@call_app.command("history")
def history(
    patient_id: PatientId,
    page_size: Annotated[int, typer.Option(help="Scores per page.")] = 20,
    page_token: Annotated[str, typer.Option(help="next_page_token of the previous page.")] = "",
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """Earlier scores, newest first, one line each (ListRiskHistory). --json: the ListRiskHistoryResponse."""
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        answer = client.history(patient_id, page_size, page_token)
    if as_json:
        print_message(answer)
        return
    typer.echo("version\tscored_at\tprobability\tband\tpews")
    for item in answer.scores:
        typer.echo(
            f"{item.version}\t{_timestamp(item.scored_at)}\t{item.probability:.4f}\t{band_name(item.band)}\t{item.pews.total}"
        )
    if answer.next_page_token:
        typer.echo(f"more: --page-token {answer.next_page_token}")


@call_app.command("watch")
def watch(
    ward: Annotated[str, typer.Option(help="Watch this ward.")] = "",
    team: Annotated[str, typer.Option(help="Or this team.")] = "",
    target: TargetOption = DEFAULT_TARGET,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """Print new scores and alerts of a ward or team as they come (WatchRisk; Ctrl-C stops).

    --json: one WatchRiskResponse per line (JSON Lines).
    """
    with _client(target, DEFAULT_TIMEOUT, tls_dir, insecure_development, sealed) as client:
        for event in client.watch(ward=ward, team=team):
            if as_json:
                print_message(event, one_line=True)
                continue
            item = event.score
            flag = "ALERT " if event.alert else ""
            typer.echo(f"{flag}{item.patient_id} v{item.version} p={item.probability:.4f} band={band_name(item.band)}")
            sys.stdout.flush()


@call_app.command("fhir")
def fhir(
    patient_id: PatientId,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """The latest score as one HL7 FHIR R4 Bundle: RiskAssessment, PEWS and vital-sign Observations, model Device (ExportFhir).

    Prints one line per resource of the Bundle. --json: the ExportFhirResponse, whose bundleJson holds
    the Bundle as JSON text (e.g. `... --json | jq -r .bundleJson`).
    """
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        answer = client.export_fhir(patient_id)
    if as_json:
        print_message(answer)
        return
    bundle = json.loads(answer.bundle_json)
    for entry in bundle.get("entry") or []:
        typer.echo(_bundle_line(entry.get("resource") or {}))


def _bundle_line(resource: dict[str, Any]) -> str:
    """One resource of an exported Bundle, in a line a person reads."""
    kind = resource.get("resourceType")
    head = f"{kind}/{resource.get('id')}"
    if kind == "RiskAssessment":
        prediction = (resource.get("prediction") or [{}])[0]
        probability = prediction.get("probabilityDecimal")
        shown = f"{probability:.4f}" if isinstance(probability, float) else str(probability)
        band = ((prediction.get("extension") or [{}])[0].get("valueCodeableConcept") or {}).get("coding") or [{}]
        qualitative = ((prediction.get("qualitativeRisk") or {}).get("coding") or [{}])[0].get("code")
        likelihood = f", HL7 {qualitative} likelihood" if qualitative else ""
        return (
            f"{head} ({resource.get('status')}, {resource.get('occurrenceDateTime')}): "
            f"{(prediction.get('outcome') or {}).get('text', 'outcome')}, probability {shown}, "
            f"{band[0].get('code', '-')} alert band{likelihood}"
        )
    if kind == "Observation":
        code = (resource.get("code") or {}).get("text", "Observation")
        quantity = resource.get("valueQuantity")
        if quantity is not None:
            value = f"{quantity.get('value')}"
            unit = quantity.get("unit")
            value += f" {unit}" if unit and unit != "points" else ""
        else:
            value = str((resource.get("valueCodeableConcept") or {}).get("text", "-"))
        return f"{head} ({resource.get('status')}, {resource.get('effectiveDateTime')}): {code} = {value}"
    if kind == "Device":
        name = ((resource.get("deviceName") or [{}])[0]).get("name")
        version = ((resource.get("version") or [{}])[0]).get("value")
        sha256 = ((resource.get("identifier") or [{}])[0]).get("value")
        return f"{head}: model {name} {version}, package sha256 {sha256}"
    return head


@call_app.command("info")
def info(
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """The serving model: identity, horizon, features, held-out metrics beside PEWS (GetModelInfo).

    --json: the GetModelInfoResponse.
    """
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        answer = client.model_info()
    if as_json:
        print_message(answer)
        return
    typer.echo(f"model: {answer.model.name} {answer.model.version} sha256 {answer.model.sha256}")
    typer.echo(
        f"predicts deterioration within {answer.horizon_hours} h from {len(answer.signals)} signals "
        f"({len(answer.features)} model features); at most {answer.max_batch_size} observations per call"
    )
    typer.echo("signals: " + ", ".join(s.name + (f" ({s.unit})" if s.unit else "") for s in answer.signals))
    for c in answer.comparators:
        typer.echo(
            f"{c.name}: AUROC {c.auroc.value:.3f} ({c.auroc.ci_lower:.3f}-{c.auroc.ci_upper:.3f}), "
            f"AUPRC {c.auprc.value:.3f} ({c.auprc.ci_lower:.3f}-{c.auprc.ci_upper:.3f}) - {c.description}"
        )
    if answer.best_baseline:
        gain = answer.auroc_gain_over_best_baseline
        typer.echo(
            f"gain over the best baseline ({answer.best_baseline}): AUROC {gain.value:+.3f} "
            f"(95% CI {gain.ci_lower:+.3f} to {gain.ci_upper:+.3f})"
        )
    print_metrics(answer.metrics)


@call_app.command("example")
def example(
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """Register a demo patient, record a feverish evening at home, and poll the risk.

    --json: {"register": RegisterPatientResponse, "record": RecordObservationsResponse,
    "latest": GetLatestRiskResponse}, each as proto3 JSON.
    """
    from google.protobuf.json_format import MessageToDict

    from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
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
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        registered = client.register_patient(patient)
        batch = [
            observation(f"demo-{int((now - timedelta(hours=h)).timestamp())}", now - timedelta(hours=h), **values)
            for h, values in readings
        ]
        answer = client.record("demo-0001", batch)
        polled = client.latest("demo-0001", known_version=answer.score.version)
    if as_json:
        print_json({
            "register": MessageToDict(pb.RegisterPatientResponse(patient=registered)),
            "record": MessageToDict(answer),
            "latest": MessageToDict(polled),
        })
        return
    typer.echo(f"stored {answer.stored}, already stored {answer.duplicates}")
    _print_score(answer.score)
    typer.echo(
        f"polling with version {answer.score.version}: {'unchanged' if polled.HasField('unchanged') else 'changed'}"
    )
