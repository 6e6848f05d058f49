"""ExportFhir's Bundle: valid FHIR R4 for an independent validator (FHIR.js) and for fhir.resources,
and meaning what it says: HL7 codes only where their definitions hold, unmeasured PEWS items absent
rather than 0 points, and every reference resolving inside the Bundle."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import given
from hypothesis import strategies as st

from clinpred.pilots.common.conformal import ConformalSet
from clinpred.pilots.common.explanation import Explanation, Reason
from clinpred.pilots.common.model_package import ModelIdentity
from clinpred.pilots.deterioration.observations import Observation
from clinpred.pilots.deterioration.pews import ITEM_SIGNALS, bedside_pews
from clinpred.pilots.deterioration.pews import ITEMS as PEWS_ITEMS
from clinpred.pilots.deterioration.predictor import RISK_BANDS, RiskBand
from clinpred.pilots.deterioration.requests import FhirExport
from clinpred.pilots.deterioration.store import ScoreRecord
from clinpred.pilots.deterioration.stored_score import StoredScore
from clinpred.services.deterioration.fhir import (
    ALERT_BAND_EXTENSION,
    DATA_ABSENT_REASON,
    FHIR_BASE,
    LOINC,
    MODEL_SHA256_SYSTEM,
    PEWS_SYSTEM,
    RISK_PROBABILITY,
    fhir_bundle,
)
from clinpred.services.deterioration.fhir_definitions import definitions_bundle
from tests.fhir_js import fhir_js_answers

SCORED_AT = datetime(2026, 11, 1, 19, 10, tzinfo=UTC)
AGE_YEARS = 7.5
MODEL = ModelIdentity("home-deterioration", "1.0.0", "c0" * 32)
CONFORMAL_STATEMENT = "with 90% coverage the outcome is in {deterioration}"
PATIENT_ID = "MRN:child-17"
# Every PEWS input, and temperature, measured.
FULL_SET = {
    "heart_rate": 146.0,
    "respiratory_rate": 34.0,
    "temperature_c": 39.1,
    "spo2": 93.0,
    "systolic_bp": 96.0,
    "capillary_refill_s": 3.0,
    "respiratory_effort": 2.0,
    "oxygen_flow_l_min": 0.0,
}
# What the home app records most evenings: no blood pressure, refill, effort or oxygen.
HOME_SET = {"heart_rate": 118.0, "respiratory_rate": 26.0, "temperature_c": 37.4, "spo2": 98.0}
LOINC_CODES = {
    "heart_rate": {"8867-4"},
    "respiratory_rate": {"9279-1"},
    "temperature_c": {"8310-5"},
    "spo2": {"2708-6", "59408-5"},
    "systolic_bp": {"8480-6"},
    "oxygen_flow_l_min": {"3151-8"},
}


def export(
    probability: float,
    band: RiskBand,
    measured: dict[str, float],
    *,
    tenant: str = "st-olav",
    hours_before: dict[str, float] | None = None,
) -> FhirExport:
    """A stored score whose PEWS was scored from `measured`, with one observation set per signal."""
    pews = bedside_pews(
        AGE_YEARS,
        heart_rate=measured.get("heart_rate"),
        systolic_bp=measured.get("systolic_bp"),
        respiratory_rate=measured.get("respiratory_rate"),
        capillary_refill_s=measured.get("capillary_refill_s"),
        respiratory_effort=measured.get("respiratory_effort"),
        spo2=measured.get("spo2"),
        oxygen_flow_l_min=measured.get("oxygen_flow_l_min"),
    )
    reason = Reason(
        "temperature_c_max_24h", 39.1, "Cel", "raises", 1.2, "highest body temperature in 24 h: 39.1 °C raises the risk"
    )
    score = StoredScore(
        probability=probability,
        horizon_hours=24.0,
        band=band,
        band_thresholds=(0.00403, 0.0105),
        pews=pews,
        confidence=ConformalSet(("deterioration",), 0.9, "class-conditional", CONFORMAL_STATEMENT),
        verified_coverage=0.9,
        explanation=Explanation("deterioration", "log-odds", -6.0, -2.8, (), (reason,), "TreeSHAP"),
        data_quality=(),
        model=MODEL,
        scored_at=SCORED_AT,
        previous_band=None,
    )
    offsets = hours_before or {}
    measurements = {
        signal: Observation(f"app-{signal}", SCORED_AT - timedelta(hours=offsets.get(signal, 1.0)), **{signal: value})
        for signal, value in measured.items()
    }
    return FhirExport(tenant, ScoreRecord(PATIENT_ID, 3, 11, "oncology-home", "team-a", score), measurements)


CASES = {
    "every item measured, high band": export(0.0590, "high", FULL_SET),
    "home set, medium band": export(0.0061, "medium", HOME_SET),
    "home set, low band": export(0.0012, "low", HOME_SET),
    "only a heart rate, low band": export(0.0009, "low", {"heart_rate": 100.0}),
    "more likely than not": export(0.62, "high", FULL_SET),
}


def entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle["entry"]]


def of_type(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [resource for resource in entries(bundle) if resource["resourceType"] == resource_type]


def pews_observation(bundle: dict[str, Any]) -> dict[str, Any]:
    (pews,) = [r for r in of_type(bundle, "Observation") if r["code"]["coding"][0]["code"] == "bedside-pews"]
    return pews


def vital_signs(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in of_type(bundle, "Observation") if r["code"]["coding"][0]["code"] != "bedside-pews"]


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def by_url(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["fullUrl"]: entry["resource"] for entry in bundle["entry"]}


def test_every_export_is_valid_fhir_r4_for_fhir_js_and_for_the_python_models() -> None:
    bundles = [fhir_bundle(case).bundle for case in CASES.values()]
    for name, answer in zip(CASES, fhir_js_answers(bundles), strict=True):
        problems = [m for m in answer["messages"] if m["severity"] in ("error", "fatal")]
        assert answer["valid"] and not problems, (name, problems)
        # FHIR.js ships no LOINC, nor the example value sets Observation.code and Device.type are bound
        # to: for those alone it warns that a code is "not found"; any other warning is a real one.
        unavailable = {m["location"] for m in answer["messages"] if m["message"].endswith("could not be found.")}
        warnings = [m for m in answer["messages"] if m["severity"] == "warning"]
        assert all(m["location"] in unavailable and "not found in value set" in m["message"] for m in warnings), (name, warnings)
    for bundle in bundles:
        parsed = Bundle.model_validate(json.loads(json.dumps(bundle)))
        assert parsed.type == "collection" and len(parsed.entry) == len(bundle["entry"])


def test_fhir_js_refuses_what_r4_does_not_allow() -> None:
    """The validator is no rubber stamp: the same Bundle with one thing wrong in each copy fails."""
    bundle = fhir_bundle(CASES["every item measured, high band"]).bundle
    broken = []
    for damage in ("misspelt element", "probability as text", "unknown status", "component without code"):
        copy = json.loads(json.dumps(bundle))
        assessment, pews = copy["entry"][0]["resource"], copy["entry"][1]["resource"]
        if damage == "misspelt element":
            assessment["occurenceDateTime"] = assessment.pop("occurrenceDateTime")
        elif damage == "probability as text":
            assessment["prediction"][0]["probabilityDecimal"] = "5.9%"
        elif damage == "unknown status":
            pews["status"] = "done"
        else:
            del pews["component"][0]["code"]
        broken.append(copy)
    assert [answer["valid"] for answer in fhir_js_answers(broken)] == [False] * 4


def test_measured_items_carry_value_and_points_and_unmeasured_ones_a_data_absent_reason() -> None:
    for case in CASES.values():
        bundle = fhir_bundle(case).bundle
        pews = pews_observation(bundle)
        record_pews = case.record.score.pews
        components = pews["component"]
        items = {c["code"]["coding"][0]["code"]: c for c in components if c["code"]["coding"][0]["system"] == PEWS_SYSTEM}
        for item in PEWS_ITEMS:
            component = items[item.replace("_", "-")]
            if item in record_pews.missing_items:
                assert component["dataAbsentReason"]["coding"][0] == {
                    "system": DATA_ABSENT_REASON,
                    "code": "not-performed",
                    "display": "Not Performed",
                }
                assert "valueQuantity" not in component  # never 0 points for what nobody measured
            else:
                assert component["valueQuantity"]["value"] == record_pews.items()[item]
        measured_values = [c for c in components if c not in items.values()]
        measured = [item for item in PEWS_ITEMS if item not in record_pews.missing_items]
        assert len(measured_values) == len(measured)
        for item, component in zip(measured, measured_values, strict=True):
            signal = ITEM_SIGNALS[item]
            value = case.measurements[signal]
            if signal in LOINC_CODES:
                assert {c["code"] for c in component["code"]["coding"]} == LOINC_CODES[signal]
                assert component["valueQuantity"]["value"] == getattr(value, signal)
        assert pews["valueQuantity"]["value"] == record_pews.total


def test_the_home_set_scores_three_items_and_says_which_four_were_not_measured() -> None:
    bundle = fhir_bundle(CASES["home set, medium band"]).bundle
    pews = pews_observation(bundle)
    absent = [c["code"]["coding"][0]["code"] for c in pews["component"] if "dataAbsentReason" in c]
    assert absent == ["systolic-bp", "capillary-refill", "respiratory-effort", "oxygen-therapy"]
    assert "from 3 of 7 items measured" in pews["text"]["div"]
    assert (
        "Not measured: systolic blood pressure, capillary refill time, respiratory effort, oxygen therapy." in pews["text"]["div"]
    )


@pytest.mark.parametrize("band", RISK_BANDS)
@pytest.mark.parametrize("probability", [0.0, 0.0012, 0.059, 0.3, 0.5, 0.5000001, 0.9, 1.0])
def test_qualitative_risk_is_high_only_when_more_likely_than_not(probability: float, band: RiskBand) -> None:
    bundle = fhir_bundle(export(probability, band, HOME_SET)).bundle
    (assessment,) = of_type(bundle, "RiskAssessment")
    (prediction,) = assessment["prediction"]
    assert prediction["probabilityDecimal"] == probability
    if probability > 0.5:
        assert prediction["qualitativeRisk"]["coding"] == [
            {"system": RISK_PROBABILITY, "code": "high", "display": "High likelihood"}
        ]
    else:
        assert "qualitativeRisk" not in prediction
    # The service's band travels in its own extension, whatever the probability.
    (extension,) = prediction["extension"]
    assert extension["url"] == ALERT_BAND_EXTENSION
    assert extension["valueCodeableConcept"]["coding"][0]["code"] == band
    assert extension["valueCodeableConcept"]["coding"][0]["system"] == f"{FHIR_BASE}/CodeSystem/alert-band"


@given(st.floats(min_value=0.0, max_value=1.0), st.sampled_from(RISK_BANDS))
def test_no_probability_below_one_half_is_ever_high(probability: float, band: RiskBand) -> None:
    (assessment,) = of_type(fhir_bundle(export(probability, band, {"heart_rate": 100.0})).bundle, "RiskAssessment")
    codes = [c["code"] for c in assessment["prediction"][0].get("qualitativeRisk", {}).get("coding", [])]
    assert codes == (["high"] if probability > 0.5 else [])


def test_no_note_contradicts_the_probability() -> None:
    for case in CASES.values():
        text = json.dumps(fhir_bundle(case).bundle)
        assert CONFORMAL_STATEMENT not in text and "coverage" not in text
        assert all("note" not in resource for resource in entries(fhir_bundle(case).bundle))


def test_every_reference_resolves_inside_the_bundle() -> None:
    for case in CASES.values():
        bundle = fhir_bundle(case).bundle
        resolved = by_url(bundle)
        found = list(references(bundle))
        assert found and all(reference in resolved for reference in found)
        assert len(resolved) == len(bundle["entry"])  # one entry per fullUrl
        (assessment,) = of_type(bundle, "RiskAssessment")
        device = resolved[assessment["performer"]["reference"]]
        assert device["resourceType"] == "Device"
        basis = [resolved[b["reference"]] for b in assessment["basis"]]
        assert basis[0] is pews_observation(bundle)
        assert basis[1:] == vital_signs(bundle)
        derived = [resolved[d["reference"]] for d in pews_observation(bundle).get("derivedFrom", [])]
        # Each measured PEWS item comes from one vital-sign Observation; temperature is no PEWS item.
        measured = [item for item in PEWS_ITEMS if item not in case.record.score.pews.missing_items]
        assert len(derived) == len(measured)
        assert all(d["code"]["coding"][0]["code"] != "8310-5" for d in derived)


def test_vital_signs_are_exported_with_loinc_codes_category_and_the_time_they_were_measured() -> None:
    case = export(0.0059, "medium", FULL_SET, hours_before={"heart_rate": 0.0, "spo2": 5.5})
    vitals = vital_signs(fhir_bundle(case).bundle)
    assert len(vitals) == len(FULL_SET)
    for signal, resource in zip(case.measurements, vitals, strict=True):
        observed = case.measurements[signal]
        assert resource["effectiveDateTime"] == observed.observed_at.isoformat().replace("+00:00", "Z")
        assert resource["text"]["status"] == "generated"
        if signal in LOINC_CODES:
            assert {c["code"] for c in resource["code"]["coding"]} == LOINC_CODES[signal]
            assert all(c["system"] == LOINC for c in resource["code"]["coding"])
            assert resource["valueQuantity"]["value"] == getattr(observed, signal)
            assert resource["valueQuantity"]["system"] == "http://unitsofmeasure.org"
        category = resource["category"][0]["coding"][0]["code"]
        expected = {"capillary_refill_s": "exam", "respiratory_effort": "exam", "oxygen_flow_l_min": "therapy"}
        assert category == expected.get(signal, "vital-signs")
    effort = next(r for s, r in zip(case.measurements, vitals, strict=True) if s == "respiratory_effort")
    assert effort["valueCodeableConcept"]["coding"][0]["code"] == "moderate"


def test_the_model_is_a_device_with_name_version_and_sha256() -> None:
    bundle = fhir_bundle(CASES["home set, low band"]).bundle
    (device,) = of_type(bundle, "Device")
    assert device["deviceName"] == [{"name": "home-deterioration", "type": "model-name"}]
    assert device["version"] == [{"value": "1.0.0"}]
    assert device["identifier"] == [{"system": MODEL_SHA256_SYSTEM, "value": MODEL.sha256}]
    (assessment,) = of_type(bundle, "RiskAssessment")
    assert assessment["method"]["coding"][0]["code"] == "home-deterioration"
    outcome = assessment["prediction"][0]["outcome"]
    assert outcome["coding"][0]["system"] == f"{FHIR_BASE}/CodeSystem/deterioration-outcome"
    assert "PICU transfer" in outcome["text"] and "sepsis" in outcome["text"]


def test_every_resource_has_a_narrative_and_only_the_subject_names_the_patient() -> None:
    for case in CASES.values():
        bundle = fhir_bundle(case).bundle
        for resource in entries(bundle):
            assert resource["text"]["status"] == "generated"
            assert resource["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
            assert resource["text"]["div"].endswith("</div>")
            assert PATIENT_ID not in json.dumps({k: v for k, v in resource.items() if k != "subject"})
            if "subject" in resource:
                assert resource["subject"] == {"identifier": {"system": "urn:clinpred:patient-id", "value": PATIENT_ID}}
        assert PATIENT_ID not in bundle["id"] + "".join(entry["fullUrl"] for entry in bundle["entry"])


def test_ids_are_stable_and_differ_across_tenants() -> None:
    here = fhir_bundle(CASES["home set, low band"]).bundle
    again = fhir_bundle(CASES["home set, low band"]).bundle
    elsewhere = fhir_bundle(export(0.0012, "low", HOME_SET, tenant="haukeland")).bundle
    assert here == again
    ours = {entry["fullUrl"] for entry in here["entry"]}
    theirs = {entry["fullUrl"] for entry in elsewhere["entry"]}
    (device,) = of_type(here, "Device")
    # Only the model is the same Device for both hospitals.
    assert ours & theirs == {next(u for u, r in by_url(here).items() if r is device)}


def test_a_source_whose_value_differs_from_the_scored_one_is_not_linked() -> None:
    case = CASES["home set, medium band"]
    changed = dict(case.measurements)
    changed["heart_rate"] = replace(changed["heart_rate"], heart_rate=121.0)
    bundle = fhir_bundle(replace(case, measurements=changed)).bundle
    pews = pews_observation(bundle)
    resolved = by_url(bundle)
    derived_codes = {resolved[d["reference"]]["code"]["coding"][0]["code"] for d in pews["derivedFrom"]}
    assert "8867-4" not in derived_codes and "9279-1" in derived_codes
    heart = next(c for c in pews["component"] if c["code"]["coding"][0]["code"] == "8867-4")
    assert heart["valueQuantity"]["value"] == 118.0  # the value the score used


def test_an_early_score_without_item_values_shows_points_and_an_unknown_value() -> None:
    case = CASES["home set, low band"]
    pews = replace(case.record.score.pews, values=())
    record = replace(case.record, score=replace(case.record.score, pews=pews))
    bundle = fhir_bundle(replace(case, record=record, measurements={})).bundle
    components = pews_observation(bundle)["component"]
    heart = [c for c in components if c["code"]["coding"][0]["code"] in ("8867-4", "heart-rate")]
    assert heart[0]["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assert heart[1]["valueQuantity"]["value"] == pews.heart_rate
    assert math.isclose(of_type(bundle, "RiskAssessment")[0]["prediction"][0]["probabilityDecimal"], 0.0012)


def codings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "system" in node and "code" in node and "display" in node:
            yield node
        for value in node.values():
            yield from codings(value)
    elif isinstance(node, list):
        for value in node:
            yield from codings(value)


def test_our_codes_are_defined_in_published_code_systems_that_validate() -> None:
    definitions = definitions_bundle()
    (answer,) = fhir_js_answers([definitions])
    assert answer["valid"] and not [m for m in answer["messages"] if m["severity"] != "info"], answer
    resources = entries(definitions)
    defined = {
        (resource["url"], concept["code"]): concept["display"]
        for resource in resources
        if resource["resourceType"] == "CodeSystem"
        for concept in resource["concept"]
    }
    assert all(resource.get("url", FHIR_BASE).startswith(FHIR_BASE) for resource in resources)
    used = [
        coding
        for case in [*CASES.values(), export(0.3, "medium", FULL_SET)]
        for coding in codings(fhir_bundle(case).bundle)
        if coding["system"].startswith(FHIR_BASE)
    ]
    assert {coding["system"] for coding in used} == {r["url"] for r in resources if r["resourceType"] == "CodeSystem"}
    for coding in used:
        assert defined[(coding["system"], coding["code"])] == coding["display"], coding
    (extension,) = [r for r in resources if r["resourceType"] == "StructureDefinition"]
    assert extension["url"] == ALERT_BAND_EXTENSION
    (naming,) = [r for r in resources if r["resourceType"] == "NamingSystem"]
    assert naming["uniqueId"][0]["value"] == MODEL_SHA256_SYSTEM
