"""A stored deterioration score as one HL7 FHIR R4 Bundle (type collection).

The Bundle holds:
- the RiskAssessment: the probability of the model's outcome within its horizon, its performer the
  model's Device, its basis the Bedside PEWS Observation and the vital-sign Observations;
- the Bedside PEWS Observation: the total, and per item one component with the measured value and
  one with the points, or a `dataAbsentReason` for an item that was not measured (never 0 points),
  `derivedFrom` the vital-sign Observations;
- one Observation per vital sign, the newest measurement within the PEWS window before the score;
- the model as a Device: name, version, and its package's SHA-256 as an identifier.

What each code means, and why:
- `qualitativeRisk` uses http://terminology.hl7.org/CodeSystem/risk-probability, whose codes have
  definitions rather than thresholds; the only one a probability decides by itself is "high" ("more
  likely to occur than not"), so the export says "high" when the probability is above 0.5 and
  otherwise leaves `qualitativeRisk` out. The service's alert band (low / medium / high, thresholds
  chosen for an alert burden, not for likelihood) travels in an extension of its own value set.
- Vital signs carry the LOINC codes of the FHIR vital-signs profile (heart rate 8867-4, respiratory
  rate 9279-1, body temperature 8310-5, SpO2 2708-6 with 59408-5, systolic blood pressure 8480-6) and
  inhaled oxygen flow rate 3151-8. Capillary refill time, respiratory effort, the Bedside PEWS and its
  items, the composite outcome and the model have no code of SNOMED CT or LOINC that this service can
  vouch for, so they are coded in clinpred's own code systems under `FHIR_BASE`, each with text.
- The conformal label set is not exported: for a rare outcome it reads as "the outcome is in
  {deterioration}" beside a probability of a few percent, which says the opposite of the number.

No patient data beyond what FHIR needs: the patient is named by identifier (urn:clinpred:patient-id),
and ids and fullUrls are digests of tenant, patient id and version that do not show the patient id.
Every resource is checked with fhir.resources' R4B models (R4's technical correction: Bundle,
RiskAssessment, Observation and Device unchanged from R4) before it leaves.
"""

from __future__ import annotations

import hashlib
import html
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from fhir.resources.R4B.bundle import Bundle as FhirBundle

from clinpred.pilots.deterioration.observations import Observation
from clinpred.pilots.deterioration.pews import ITEM_SIGNALS
from clinpred.pilots.deterioration.pews import ITEMS as PEWS_ITEMS
from clinpred.pilots.deterioration.requests import FhirExport
from clinpred.pilots.deterioration.store import ScoreRecord
from clinpred.pilots.deterioration.stored_score import instant_text

# The one base of clinpred's canonical URLs (code systems, value sets, extensions, naming systems).
FHIR_BASE: Final = "https://clinpred.example/fhir"
OUTCOME_SYSTEM: Final = f"{FHIR_BASE}/CodeSystem/deterioration-outcome"
METHOD_SYSTEM: Final = f"{FHIR_BASE}/CodeSystem/method"
PEWS_SYSTEM: Final = f"{FHIR_BASE}/CodeSystem/bedside-pews"
OBSERVATION_SYSTEM: Final = f"{FHIR_BASE}/CodeSystem/observation"
RESPIRATORY_EFFORT_SYSTEM: Final = f"{FHIR_BASE}/CodeSystem/respiratory-effort"
ALERT_BAND_SYSTEM: Final = f"{FHIR_BASE}/CodeSystem/alert-band"
ALERT_BAND_VALUE_SET: Final = f"{FHIR_BASE}/ValueSet/alert-band"
ALERT_BAND_EXTENSION: Final = f"{FHIR_BASE}/StructureDefinition/alert-band"
MODEL_SHA256_SYSTEM: Final = f"{FHIR_BASE}/NamingSystem/model-package-sha256"

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
RISK_PROBABILITY: Final = "http://terminology.hl7.org/CodeSystem/risk-probability"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
XHTML: Final = "http://www.w3.org/1999/xhtml"
# The patient is named by identifier, not by a Patient/<id> reference: a FHIR id allows only
# [A-Za-z0-9.-]{1,64}, which hospital patient ids (e.g. "MRN:12345") need not fit.
PATIENT_ID_SYSTEM: Final = "urn:clinpred:patient-id"
# HL7 risk-probability "high": "The specified outcome is more likely to occur than not."
MORE_LIKELY_THAN_NOT: Final = 0.5

OUTCOME_CODE: Final = "deterioration"
OUTCOME_DISPLAY: Final = "Deterioration at home: unplanned admission, PICU transfer or sepsis"
PEWS_CODE: Final = "bedside-pews"
PEWS_DISPLAY: Final = "Bedside Paediatric Early Warning Score (Parshuram 2009)"
BAND_DISPLAY: Final = {"low": "Low alert band", "medium": "Medium alert band", "high": "High alert band"}
RESPIRATORY_EFFORT_LEVELS: Final = (
    ("normal", "Normal respiratory effort"),
    ("mild", "Mildly increased respiratory effort"),
    ("moderate", "Moderately increased respiratory effort"),
    ("severe", "Severely increased respiratory effort or any apnoea"),
)


@dataclass(frozen=True)
class VitalSign:
    """How one observation signal is exported: its codings, display, category and UCUM unit."""

    codings: tuple[tuple[str, str, str], ...]  # (system, code, display)
    text: str
    category: str
    unit: str
    unit_text: str


VITAL_SIGNS: Final[Mapping[str, VitalSign]] = {
    "heart_rate": VitalSign(((LOINC, "8867-4", "Heart rate"),), "Heart rate", "vital-signs", "/min", "beats/minute"),
    "respiratory_rate": VitalSign(
        ((LOINC, "9279-1", "Respiratory rate"),), "Respiratory rate", "vital-signs", "/min", "breaths/minute"
    ),
    "temperature_c": VitalSign(((LOINC, "8310-5", "Body temperature"),), "Body temperature", "vital-signs", "Cel", "°C"),
    "spo2": VitalSign(
        (
            (LOINC, "2708-6", "Oxygen saturation in Arterial blood"),
            (LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
        ),
        "Oxygen saturation (pulse oximetry)",
        "vital-signs",
        "%",
        "%",
    ),
    "systolic_bp": VitalSign(
        ((LOINC, "8480-6", "Systolic blood pressure"),), "Systolic blood pressure", "vital-signs", "mm[Hg]", "mmHg"
    ),
    "capillary_refill_s": VitalSign(
        ((OBSERVATION_SYSTEM, "capillary-refill-time", "Capillary refill time"),), "Capillary refill time", "exam", "s", "s"
    ),
    "respiratory_effort": VitalSign(
        ((OBSERVATION_SYSTEM, "respiratory-effort", "Respiratory effort"),), "Respiratory effort", "exam", "", ""
    ),
    "oxygen_flow_l_min": VitalSign(
        ((LOINC, "3151-8", "Inhaled oxygen flow rate"),), "Inhaled oxygen flow rate (0: room air)", "therapy", "L/min", "L/min"
    ),
}
PEWS_ITEM_DISPLAY: Final = {
    "heart_rate": "Heart rate",
    "systolic_bp": "Systolic blood pressure",
    "respiratory_rate": "Respiratory rate",
    "capillary_refill": "Capillary refill time",
    "respiratory_effort": "Respiratory effort",
    "oxygen_saturation": "Oxygen saturation",
    "oxygen_therapy": "Oxygen therapy",
}


def pews_item_code(item: str) -> str:
    return item.replace("_", "-")


def pews_item_display(item: str) -> str:
    return f"Bedside PEWS item: {PEWS_ITEM_DISPLAY[item]}"


def _digest(*key: object) -> str:
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def _resource_id(kind: str, record: ScoreRecord, tenant: str) -> str:
    """A FHIR id (`[A-Za-z0-9.-]{1,64}`) for the `kind` resource of a stored score, the same on every
    export of it, derived from tenant, patient id and version without showing the patient id (two
    hospitals' child-17 get different ids)."""
    return f"{kind}-{_digest(kind, tenant, record.patient_id, record.version)[:40]}"


def _vital_id(signal: str, observation: Observation, record: ScoreRecord, tenant: str) -> str:
    """One measurement's id: the same in every export that shows it."""
    return f"vital-{_digest('vital', tenant, record.patient_id, observation.observation_id, signal)[:40]}"


def _full_url(resource_id: str) -> str:
    # A urn:uuid fullUrl: references resolve inside the Bundle without a server base.
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{FHIR_BASE}/{resource_id}')}"


def _reference(resource_id: str, display: str | None = None) -> dict[str, Any]:
    reference: dict[str, Any] = {"reference": _full_url(resource_id)}
    if display:
        reference["display"] = display
    return reference


def _narrative(*lines: str) -> dict[str, Any]:
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{body}</div>'}


def _concept(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": text or display}


def _category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": OBSERVATION_CATEGORY, "code": code}]}]


def _quantity(value: float, unit: str, unit_text: str) -> dict[str, Any]:
    return {"value": value, "unit": unit_text, "system": UCUM, "code": unit}


def _points(value: int) -> dict[str, Any]:
    return _quantity(value, "{score}", "points")


def _subject(record: ScoreRecord) -> dict[str, Any]:
    return {"identifier": {"system": PATIENT_ID_SYSTEM, "value": record.patient_id}}


def _number(value: float) -> str:
    return f"{value:g}"


def _respiratory_effort(value: float) -> dict[str, Any]:
    code, display = RESPIRATORY_EFFORT_LEVELS[min(max(int(value), 0), len(RESPIRATORY_EFFORT_LEVELS) - 1)]
    return _concept(RESPIRATORY_EFFORT_SYSTEM, code, display)


def _measured_value(signal: str, value: float) -> dict[str, Any]:
    """The value[x] of a measurement: respiratory effort as a coded level, the rest as UCUM quantities."""
    if signal == "respiratory_effort":
        return {"valueCodeableConcept": _respiratory_effort(value)}
    spec = VITAL_SIGNS[signal]
    return {"valueQuantity": _quantity(value, spec.unit, spec.unit_text)}


def _shown(signal: str, value: float) -> str:
    if signal == "respiratory_effort":
        return _respiratory_effort(value)["text"]
    return f"{_number(value)} {VITAL_SIGNS[signal].unit_text}"


def _code(signal: str) -> dict[str, Any]:
    spec = VITAL_SIGNS[signal]
    return {"coding": [{"system": s, "code": c, "display": d} for s, c, d in spec.codings], "text": spec.text}


@dataclass(frozen=True)
class _Entry:
    resource_id: str
    resource: dict[str, Any]


def _vital_signs(export: FhirExport) -> dict[str, _Entry]:
    """One Observation per exported signal, keyed by signal."""
    record, tenant = export.record, export.tenant
    entries: dict[str, _Entry] = {}
    for signal, observation in export.measurements.items():
        if signal not in VITAL_SIGNS:
            continue
        value = float(getattr(observation, signal))
        resource_id = _vital_id(signal, observation, record, tenant)
        spec = VITAL_SIGNS[signal]
        effective = instant_text(observation.observed_at)
        entries[signal] = _Entry(
            resource_id,
            {
                "resourceType": "Observation",
                "id": resource_id,
                "text": _narrative(f"{spec.text}: {_shown(signal, value)}, measured {effective}."),
                "status": "final",
                "category": _category(spec.category),
                "code": _code(signal),
                "subject": _subject(record),
                "effectiveDateTime": effective,
                **_measured_value(signal, value),
            },
        )
    return entries


def _pews_components(record: ScoreRecord, sources: Mapping[str, _Entry]) -> list[dict[str, Any]]:
    pews = record.score.pews
    points = pews.items()
    components: list[dict[str, Any]] = []
    for item in PEWS_ITEMS:
        signal = ITEM_SIGNALS[item]
        value = pews.value_of(item)
        code = pews_item_code(item)
        if item in pews.missing_items:
            components.append(
                {
                    "code": _concept(PEWS_SYSTEM, code, pews_item_display(item)),
                    "dataAbsentReason": _concept(DATA_ABSENT_REASON, "not-performed", "Not Performed"),
                }
            )
            continue
        if value is None:
            # Scores of the first release kept an item's points but not the value they scored.
            components.append({"code": _code(signal), "dataAbsentReason": _concept(DATA_ABSENT_REASON, "unknown", "Unknown")})
        else:
            components.append({"code": _code(signal), **_measured_value(signal, value)})
        components.append(
            {
                "code": _concept(PEWS_SYSTEM, code, pews_item_display(item)),
                "valueQuantity": _points(points[item]),
            }
        )
    return components


def _pews_observation(record: ScoreRecord, tenant: str, vitals: Mapping[str, _Entry]) -> _Entry:
    pews = record.score.pews
    # Only measurements with the value the score used: a source that differs (a row changed since) is not one.
    sources = {
        item: vitals[ITEM_SIGNALS[item]]
        for item in PEWS_ITEMS
        if ITEM_SIGNALS[item] in vitals and _value_of(vitals[ITEM_SIGNALS[item]]) == pews.value_of(item)
    }
    measured = [item for item in PEWS_ITEMS if item not in pews.missing_items]
    missing = ", ".join(PEWS_ITEM_DISPLAY[item].lower() for item in pews.missing_items) or "none"
    resource_id = _resource_id("pews", record, tenant)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": resource_id,
        "text": _narrative(
            f"Bedside PEWS {pews.total} of 26 ({pews.age_band}), from {len(measured)} of 7 items measured.",
            f"Not measured: {missing}.",
        ),
        "status": "final",
        "category": _category("survey"),
        "code": _concept(PEWS_SYSTEM, PEWS_CODE, PEWS_DISPLAY),
        "subject": _subject(record),
        "effectiveDateTime": instant_text(record.score.scored_at),
        "valueQuantity": _points(pews.total),
        "method": _concept(METHOD_SYSTEM, PEWS_CODE, PEWS_DISPLAY, "Parshuram et al., Crit Care 2009;13:R135, Table 1"),
        "component": _pews_components(record, sources),
    }
    derived = [_reference(entry.resource_id) for entry in sources.values()]
    if derived:
        resource["derivedFrom"] = derived
    return _Entry(resource_id, resource)


def _value_of(entry: _Entry) -> float | None:
    quantity = entry.resource.get("valueQuantity")
    if quantity is not None:
        return float(quantity["value"])
    level = entry.resource["valueCodeableConcept"]["coding"][0]["code"]
    return float([code for code, _ in RESPIRATORY_EFFORT_LEVELS].index(level))


def _device(record: ScoreRecord) -> _Entry:
    model = record.score.model
    resource_id = f"model-{_digest('model', model.name, model.version, model.sha256)[:40]}"
    return _Entry(
        resource_id,
        {
            "resourceType": "Device",
            "id": resource_id,
            "text": _narrative(f"clinpred model {model.name} {model.version}, package SHA-256 {model.sha256}."),
            "identifier": [{"system": MODEL_SHA256_SYSTEM, "value": model.sha256}],
            "status": "active",
            "manufacturer": "clinpred",
            "deviceName": [{"name": model.name, "type": "model-name"}],
            "type": _concept(METHOD_SYSTEM, model.name, f"clinpred model {model.name}"),
            "version": [{"value": model.version}],
        },
    )


def qualitative_risk(probability: float) -> dict[str, Any] | None:
    """HL7's risk-probability code where its definition holds of the probability alone, else None."""
    if probability > MORE_LIKELY_THAN_NOT:
        return _concept(RISK_PROBABILITY, "high", "High likelihood")
    return None


def _alert_band(record: ScoreRecord) -> dict[str, Any]:
    score = record.score
    medium, high = score.band_thresholds
    rule = f"low below {_number(medium)}, medium from {_number(medium)}, high from {_number(high)}"
    return {
        "url": ALERT_BAND_EXTENSION,
        "valueCodeableConcept": _concept(
            ALERT_BAND_SYSTEM, score.band, BAND_DISPLAY[score.band], f"{score.band} alert band ({rule})"
        ),
    }


def _risk_assessment(record: ScoreRecord, tenant: str, pews: _Entry, vitals: Sequence[_Entry], device: _Entry) -> _Entry:
    score = record.score
    model = score.model
    scored_at = instant_text(score.scored_at)
    until = instant_text(score.scored_at + timedelta(hours=score.horizon_hours))
    hours = _number(score.horizon_hours)
    prediction: dict[str, Any] = {
        "extension": [_alert_band(record)],
        "outcome": _concept(OUTCOME_SYSTEM, OUTCOME_CODE, OUTCOME_DISPLAY),
        "probabilityDecimal": score.probability,
        "whenPeriod": {"start": scored_at, "end": until},
    }
    qualitative = qualitative_risk(score.probability)
    if qualitative is not None:
        prediction["qualitativeRisk"] = qualitative
    reasons = "; ".join(r.text for r in score.explanation.top_reasons)
    if reasons:
        prediction["rationale"] = reasons
    resource_id = _resource_id("deterioration", record, tenant)
    return _Entry(
        resource_id,
        {
            "resourceType": "RiskAssessment",
            "id": resource_id,
            "text": _narrative(
                f"Probability of deterioration at home (unplanned admission, PICU transfer or sepsis)"
                f" within {hours} h: {score.probability:.2%} ({score.band} alert band).",
                f"Scored {scored_at} by clinpred model {model.name} {model.version}; Bedside PEWS {score.pews.total}.",
            ),
            "status": "final",
            "method": _concept(
                METHOD_SYSTEM, model.name, f"clinpred model {model.name}", f"clinpred {model.name} {model.version}"
            ),
            "subject": _subject(record),
            "occurrenceDateTime": scored_at,
            "performer": _reference(device.resource_id, f"clinpred model {model.name} {model.version}"),
            "basis": [_reference(pews.resource_id), *(_reference(entry.resource_id) for entry in vitals)],
            "prediction": [prediction],
        },
    )


@dataclass(frozen=True)
class FhirDocuments:
    """The Bundle, and (for the deprecated response fields) its RiskAssessment and PEWS Observation."""

    bundle: dict[str, Any]
    risk_assessment: dict[str, Any]
    pews_observation: dict[str, Any]


def fhir_bundle(export: FhirExport) -> FhirDocuments:
    """The export as a Bundle of type collection, checked against the R4B models."""
    record, tenant = export.record, export.tenant
    vitals = _vital_signs(export)
    pews = _pews_observation(record, tenant, vitals)
    device = _device(record)
    assessment = _risk_assessment(record, tenant, pews, list(vitals.values()), device)
    entries = [assessment, pews, *vitals.values(), device]
    bundle = {
        "resourceType": "Bundle",
        "id": _resource_id("bundle", record, tenant),
        "type": "collection",
        "entry": [{"fullUrl": _full_url(entry.resource_id), "resource": entry.resource} for entry in entries],
    }
    checked = FhirBundle.model_validate(bundle).model_dump(mode="json", by_alias=True, exclude_none=True)
    resources = [entry["resource"] for entry in checked["entry"]]
    return FhirDocuments(checked, resources[0], resources[1])
