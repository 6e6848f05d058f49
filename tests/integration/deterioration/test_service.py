"""The deterioration service over gRPC, on an SQLite file and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.riskassessment import RiskAssessment
from prometheus_client import REGISTRY

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as pb_grpc
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.deterioration.client import observation
from clinpred.services.deterioration.service import deterioration_mount
from clinpred.services.deterioration.settings import DeteriorationSettings
from tests.fhir_js import fhir_js_answers
from tests.support import field_violations

Stub = pb_grpc.DeteriorationServiceStub
MAX_BATCH = 20
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
async def target(deterioration_package: ModelPackage, database_url: str) -> AsyncIterator[str]:
    settings = DeteriorationSettings(database_url=database_url, max_batch_size=MAX_BATCH, watch_poll_seconds=0.05)
    server, port = await start_inprocess_server(deterioration_mount(settings))
    yield f"127.0.0.1:{port}"
    await server.stop(grace=None)


@pytest.fixture
async def stub(target: str) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(target) as channel:
        yield Stub(channel)


def patient(patient_id: str, ward: str = "onc-a", **changes: Any) -> pb.Patient:
    fields: dict[str, Any] = {
        "patient_id": patient_id,
        "birth_date": "2018-03-14",
        "sex": "male",
        "diagnosis_group": "aml",
        "treatment_intensity": "high",
        "central_line": True,
        "ward": ward,
        "team": "team-1",
    }
    message = pb.Patient(**(fields | changes))
    message.chemotherapy_at.add().FromDatetime(NOW - timedelta(days=9))
    return message


def calm(index: int, hours_ago: float) -> pb.Observation:
    return observation(
        f"calm-{index}",
        NOW - timedelta(hours=hours_ago),
        heart_rate=100,
        respiratory_rate=22,
        temperature_c=36.8,
        spo2=98,
        systolic_bp=100,
    )


def septic(index: int, hours_ago: float) -> pb.Observation:
    return observation(
        f"septic-{index}",
        NOW - timedelta(hours=hours_ago),
        heart_rate=175,
        respiratory_rate=45,
        temperature_c=39.8,
        spo2=89,
        systolic_bp=72,
        capillary_refill_s=4,
        respiratory_effort=2,
        avpu="V",
        neutrophils_g_l=0.1,
        crp_mg_l=180,
    )


async def registered(stub: Stub, patient_id: str, ward: str = "onc-a") -> None:
    await stub.RegisterPatient(pb.RegisterPatientRequest(patient=patient(patient_id, ward)))


async def rejected(call: Any, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return field_violations(caught.value) if code == grpc.StatusCode.INVALID_ARGUMENT else {}


async def test_recording_answers_a_complete_score(stub: Stub, deterioration_package: ModelPackage) -> None:
    await registered(stub, "p-complete")
    batch = [calm(1, 30), calm(2, 20), calm(3, 10)]
    answer = await stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-complete", observations=batch))
    assert (answer.stored, answer.duplicates) == (3, 0)
    score = answer.score
    assert score.version == 1 and score.patient_id == "p-complete"
    assert 0.0 <= score.probability <= 1.0
    assert score.horizon_hours == 24
    assert score.band in (pb.RISK_BAND_LOW, pb.RISK_BAND_MEDIUM, pb.RISK_BAND_HIGH)
    assert score.scored_at.ToDatetime(tzinfo=UTC) == NOW - timedelta(hours=10)
    assert [item.item for item in score.pews.items] == [
        "heart_rate",
        "systolic_bp",
        "respiratory_rate",
        "capillary_refill",
        "respiratory_effort",
        "oxygen_saturation",
        "oxygen_therapy",
    ]
    assert score.pews.total == sum(item.points for item in score.pews.items)
    assert score.confidence.coverage == pytest.approx(0.9) and score.confidence.statement
    # The Venn-Abers interval on the probability (packages from 1.1.0).
    assert score.confidence.HasField("lower") and score.confidence.HasField("upper")
    assert 0.0 <= score.confidence.lower <= score.probability <= score.confidence.upper <= 1.0
    assert "Venn-Abers" in score.confidence.statement
    explanation = score.explanation
    total = explanation.base_value + sum(c.shap_value for c in explanation.contributions)
    assert total == pytest.approx(explanation.margin, abs=1e-4)
    assert len(explanation.top_reasons) == 3 and all(r.text for r in explanation.top_reasons)
    assert "missing_labs" in {f.code for f in score.quality_flags} or any("labs" in f.message for f in score.quality_flags)
    assert score.model.sha256 == deterioration_package.identity.sha256


async def test_a_retried_batch_stores_nothing_twice(stub: Stub) -> None:
    await registered(stub, "p-retry")
    request = pb.RecordObservationsRequest(patient_id="p-retry", observations=[calm(1, 5), calm(2, 4)])
    first = await stub.RecordObservations(request)
    again = await stub.RecordObservations(request)
    assert (again.stored, again.duplicates) == (0, 2)
    assert again.score == first.score
    history = await stub.ListRiskHistory(pb.ListRiskHistoryRequest(patient_id="p-retry"))
    assert [s.version for s in history.scores] == [1]


async def test_polling_is_cheap_when_nothing_changed(stub: Stub) -> None:
    await registered(stub, "p-poll")
    recorded = await stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-poll", observations=[calm(1, 8)]))
    polled = await stub.GetLatestRisk(pb.GetLatestRiskRequest(patient_id="p-poll", known_version=recorded.score.version))
    assert polled.WhichOneof("answer") == "unchanged" and polled.unchanged.version == 1
    assert polled.ByteSize() < 10
    await stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-poll", observations=[septic(1, 2)]))
    changed = await stub.GetLatestRisk(pb.GetLatestRiskRequest(patient_id="p-poll", known_version=1))
    assert changed.WhichOneof("answer") == "score" and changed.score.version == 2
    assert changed.score.probability > recorded.score.probability


async def test_history_pages_newest_first(stub: Stub) -> None:
    await registered(stub, "p-history")
    for i in range(5):
        await stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-history", observations=[calm(i, 20 - i)]))
    versions, token = [], ""
    while True:
        page = await stub.ListRiskHistory(pb.ListRiskHistoryRequest(patient_id="p-history", page_size=2, page_token=token))
        versions += [s.version for s in page.scores]
        token = page.next_page_token
        if not token:
            break
    assert versions == [5, 4, 3, 2, 1]


async def test_the_watch_stream_pushes_a_wards_scores_and_alerts(stub: Stub) -> None:
    await registered(stub, "p-watched", ward="onc-watch")
    await registered(stub, "p-elsewhere", ward="onc-other")
    stream = stub.WatchRisk(pb.WatchRiskRequest(ward="onc-watch", alert_band=pb.RISK_BAND_HIGH))
    received: list[pb.WatchRiskResponse] = []

    async def collect() -> None:
        async for event in stream:
            received.append(event)
            if len(received) == 2:
                return

    collector = asyncio.create_task(collect())
    await asyncio.sleep(0.3)  # the stream starts "from now"
    await stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-elsewhere", observations=[septic(1, 1)]))
    await stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-watched", observations=[calm(1, 6)]))
    await stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-watched", observations=[septic(1, 1)]))
    await asyncio.wait_for(collector, timeout=20)
    stream.cancel()
    assert [e.score.patient_id for e in received] == ["p-watched", "p-watched"]
    assert [e.score.version for e in received] == [1, 2]
    calm_event, septic_event = received
    assert septic_event.score.band == pb.RISK_BAND_HIGH
    assert septic_event.alert and septic_event.previous_band == calm_event.score.band
    assert not calm_event.alert or calm_event.score.band == pb.RISK_BAND_HIGH
    assert int(septic_event.resume_token) > int(calm_event.resume_token)


async def test_stateless_scoring_stores_nothing_and_agrees(stub: Stub) -> None:
    await registered(stub, "p-stateless")
    batch = [calm(1, 12), septic(2, 3)]
    stored = await stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-stateless", observations=batch))
    stateless = await stub.ScoreObservations(pb.ScoreObservationsRequest(patient=patient("someone-new"), observations=batch))
    assert stateless.score.probability == pytest.approx(stored.score.probability, rel=1e-9)
    await rejected(stub.GetLatestRisk(pb.GetLatestRiskRequest(patient_id="someone-new")), grpc.StatusCode.NOT_FOUND)


async def test_the_latest_score_exports_as_a_valid_fhir_bundle_of_what_was_measured(stub: Stub) -> None:
    await registered(stub, "p-fhir")
    late = observation("late-1", NOW - timedelta(hours=2), heart_rate=150, spo2=94, oxygen_flow_l_min=2)
    # calm-1 is older than the PEWS window (24 h before the score): none of its values count.
    batch = [calm(1, 30), calm(2, 10), late]
    recorded = await stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-fhir", observations=batch))
    exported = await stub.ExportFhir(pb.ExportFhirRequest(patient_id="p-fhir"))
    bundle = json.loads(exported.bundle_json)
    (answer,) = fhir_js_answers([bundle])
    assert answer["valid"] and not [m for m in answer["messages"] if m["severity"] in ("error", "fatal")], answer
    Bundle.model_validate(bundle)
    resources = {entry["fullUrl"]: entry["resource"] for entry in bundle["entry"]}
    assessment = RiskAssessment.model_validate(json.loads(exported.risk_assessment_json))
    pews = Observation.model_validate(json.loads(exported.pews_observation_json))
    assert [r["id"] for r in resources.values()][:2] == [assessment.id, pews.id]
    # The patient by identifier, and resource ids that are valid FHIR ids without the patient id in them.
    assert assessment.subject.reference is None
    assert (assessment.subject.identifier.system, assessment.subject.identifier.value) == ("urn:clinpred:patient-id", "p-fhir")
    assert pews.subject.identifier.value == "p-fhir"
    for resource in resources.values():
        assert re.fullmatch(r"[A-Za-z0-9\-\.]{1,64}", resource["id"]) and "p-fhir" not in resource["id"]
    assert float(assessment.prediction[0].probabilityDecimal) == pytest.approx(recorded.score.probability)
    device = resources[assessment.performer.reference]
    assert device["identifier"][0]["value"] == recorded.score.model.sha256
    assert float(pews.valueQuantity.value) == recorded.score.pews.total
    # The newest measurement of each vital sign within the window, at the time it was measured.
    vitals = [resources[b.reference] for b in assessment.basis[1:]]
    shown = {v["code"]["coding"][0]["code"]: (v["valueQuantity"]["value"], v["effectiveDateTime"]) for v in vitals}
    at_late, at_calm = (iso(NOW - timedelta(hours=hours)) for hours in (2, 10))
    assert shown == {
        "8867-4": (150, at_late),
        "2708-6": (94, at_late),
        "3151-8": (2, at_late),
        "9279-1": (22, at_calm),
        "8310-5": (36.8, at_calm),
        "8480-6": (100, at_calm),
    }
    derived = {resources[d.reference]["code"]["coding"][0]["code"] for d in pews.derivedFrom}
    assert derived == set(shown) - {"8310-5"}  # temperature is no PEWS item
    points = {item.item.replace("_", "-"): item.points for item in recorded.score.pews.items}
    for component in pews.component:
        code = component.code.coding[0].code
        if code in ("capillary-refill", "respiratory-effort"):
            assert component.dataAbsentReason.coding[0].code == "not-performed" and component.valueQuantity is None
        elif code in points:
            assert float(component.valueQuantity.value) == points[code]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_model_info_shows_the_model_beside_pews(stub: Stub) -> None:
    info = await stub.GetModelInfo(pb.GetModelInfoRequest())
    assert info.horizon_hours == 24
    assert info.metrics["test.auroc"] >= info.metrics["test.pews_auroc"] + 0.05
    assert {s.name for s in info.signals} >= {"heart_rate", "spo2", "temperature_c", "crp_mg_l"}
    assert len(info.features) > 20


async def test_model_info_carries_the_baselines_and_the_hti1_attributes(stub: Stub) -> None:
    info = await stub.GetModelInfo(pb.GetModelInfoRequest())
    comparators = {c.name: c for c in info.comparators}
    assert set(comparators) == {"model", "pews", "pathway", "logistic"}
    for comparator in comparators.values():
        assert comparator.description
        assert comparator.auroc.ci_lower <= comparator.auroc.value <= comparator.auroc.ci_upper
    # The flattened metrics say the same as the typed comparators.
    assert info.metrics["baselines.pews.auroc"] == pytest.approx(comparators["pews"].auroc.value)
    assert info.best_baseline in {"pews", "pathway", "logistic"}
    gain = info.auroc_gain_over_best_baseline
    assert gain.value == pytest.approx(comparators["model"].auroc.value - comparators[info.best_baseline].auroc.value)
    assert gain.ci_lower <= gain.value <= gain.ci_upper
    assert dict(info.alert_budget_per_100_children_per_day) == {"medium": 10.0, "high": 3.0}
    document = json.loads(info.transparency_json)
    assert document["model"] == {"name": info.model.name, "version": info.model.version}
    assert "170.315(b)(11)" in document["regulation"]
    assert document["attributes"]["intended_patient_population"]


@pytest.mark.parametrize(
    ("values", "field", "reason"),
    [
        ({"heart_rate": 0}, "observations[0].heart_rate", "valid range"),
        ({"heart_rate": 500}, "observations[0].heart_rate", "valid range"),
        ({"spo2": 101}, "observations[0].spo2", "valid range"),
        ({"temperature_c": 50}, "observations[0].temperature_c", "valid range"),
        ({"temperature_c": 98.6}, "observations[0].temperature_c", "Fahrenheit"),
        ({"weight_kg": 60}, "observations[0].weight_kg", "pounds"),
        ({"avpu": "X"}, "observations[0].avpu", "A, V, P, U"),
    ],
)
async def test_impossible_values_and_unit_mistakes_are_rejected(
    stub: Stub, values: dict[str, Any], field: str, reason: str
) -> None:
    await registered(stub, "p-bad")
    request = pb.RecordObservationsRequest(
        patient_id="p-bad", observations=[observation("bad-1", NOW - timedelta(hours=1), **values)]
    )
    violations = await rejected(stub.RecordObservations(request))
    assert reason in violations[field], violations
    value = re.escape(str(next(iter(values.values()))))
    assert not re.search(rf"(?<![\d.]){value}(?![\d.])", violations[field])  # the value itself is never echoed


async def test_a_rejected_batch_stores_nothing(stub: Stub) -> None:
    await registered(stub, "p-atomic")
    await stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-atomic", observations=[calm(1, 9)]))
    future = observation("future", NOW + timedelta(hours=3), heart_rate=110)
    before_birth = observation("ancient", datetime(2010, 1, 1, tzinfo=UTC), heart_rate=110)
    out_of_order = [calm(2, 2), calm(3, 5)]
    duplicated = [calm(4, 3), calm(4, 2)]
    cases = [
        ([calm(5, 4), future], "observations[1].observed_at", "future"),
        ([before_birth], "observations[0].observed_at", "birth"),
        (out_of_order, "observations[1].observed_at", "time order"),
        (duplicated, "observations[1].observation_id", "duplicate"),
        ([], "observations", "at least one"),
        ([calm(10 + i, 1) for i in range(MAX_BATCH + 1)], "observations", f"at most {MAX_BATCH}"),
    ]
    for batch, field, reason in cases:
        violations = await rejected(
            stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-atomic", observations=batch))
        )
        assert reason in violations.get(field, ""), (field, violations)
    history = await stub.ListRiskHistory(pb.ListRiskHistoryRequest(patient_id="p-atomic"))
    assert [s.version for s in history.scores] == [1]
    # Still serving.
    again = await stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-atomic", observations=[calm(20, 1)]))
    assert again.score.version == 2


async def test_unknown_patients_are_not_found(stub: Stub) -> None:
    request = pb.RecordObservationsRequest(patient_id="nobody", observations=[calm(1, 1)])
    await rejected(stub.RecordObservations(request), grpc.StatusCode.NOT_FOUND)
    await rejected(stub.ExportFhir(pb.ExportFhirRequest(patient_id="nobody")), grpc.StatusCode.NOT_FOUND)


async def test_invalid_patients_are_rejected_field_by_field(stub: Stub) -> None:
    bad = patient("p-invalid", diagnosis_group="flu")
    bad.birth_date = "14/03/2018"
    violations = await rejected(stub.RegisterPatient(pb.RegisterPatientRequest(patient=bad)))
    assert "ISO 8601" in violations["patient.birth_date"]
    bad.birth_date = "2018-03-14"
    violations = await rejected(stub.RegisterPatient(pb.RegisterPatientRequest(patient=bad)))
    assert "must be one of" in violations["patient.diagnosis_group"]
    watch_all = await rejected(anext(aiter(stub.WatchRisk(pb.WatchRiskRequest()))))
    assert "ward" in watch_all


STAGES = ("decode", "predict", "explain", "encode")


def stage_counts() -> dict[str, float]:
    return {
        name: REGISTRY.get_sample_value("clinpred_stage_duration_seconds_count", {"service": "deterioration", "stage": name})
        or 0.0
        for name in STAGES
    }


def added(before: dict[str, float]) -> dict[str, float]:
    after = stage_counts()
    return {name: after[name] - before[name] for name in STAGES}


async def test_each_stage_is_timed_once_per_call(stub: Stub) -> None:
    # The server records every stage before it answers, so the counts are final when the answer arrives.
    await registered(stub, "p-stages")
    request = pb.RecordObservationsRequest(patient_id="p-stages", observations=[calm(1, 3), calm(2, 2)])
    before = stage_counts()
    await stub.RecordObservations(request)
    assert added(before) == dict.fromkeys(STAGES, 1.0)
    # A retried batch reads the stored score: nothing is predicted or explained again.
    before = stage_counts()
    await stub.RecordObservations(request)
    assert added(before) == {"decode": 1.0, "predict": 0.0, "explain": 0.0, "encode": 1.0}
    before = stage_counts()
    await stub.GetLatestRisk(pb.GetLatestRiskRequest(patient_id="p-stages"))
    assert added(before) == {"decode": 1.0, "predict": 0.0, "explain": 0.0, "encode": 1.0}
    before = stage_counts()
    await stub.ScoreObservations(pb.ScoreObservationsRequest(patient=patient("p-stages"), observations=[calm(3, 1)]))
    assert added(before) == dict.fromkeys(STAGES, 1.0)
    # Rejected while decoding: nothing after it runs.
    before = stage_counts()
    await rejected(stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-stages")))
    assert added(before) == {"decode": 1.0, "predict": 0.0, "explain": 0.0, "encode": 0.0}


def _rewrite_payloads(url: str, patient_id: str, change: dict[str, Any]) -> None:
    """Changes a patient's stored score payloads behind the service's back (a row of another release)."""
    sql = "SELECT version, payload FROM risk_scores WHERE patient_id = {0}"
    update = "UPDATE risk_scores SET payload = {0} WHERE patient_id = {0} AND version = {0}"
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as lite:
            rows = lite.execute(sql.format("?"), (patient_id,)).fetchall()
            for version, payload in rows:
                lite.execute(update.format("?"), (json.dumps(json.loads(payload) | change), patient_id, version))
        return
    with psycopg.connect(url) as connection:
        rows = connection.execute(sql.format("%s"), (patient_id,)).fetchall()
        for version, payload in rows:
            connection.execute(update.format("%s"), (json.dumps(json.loads(payload) | change), patient_id, version))


async def test_a_score_stored_by_a_newer_release_is_refused_not_internal(stub: Stub, database_url: str) -> None:
    await registered(stub, "p-newer")
    await stub.RecordObservations(pb.RecordObservationsRequest(patient_id="p-newer", observations=[calm(1, 2)]))
    _rewrite_payloads(database_url, "p-newer", {"schema_version": 99})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetLatestRisk(pb.GetLatestRiskRequest(patient_id="p-newer"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "schema version 99" in (caught.value.details() or "")
