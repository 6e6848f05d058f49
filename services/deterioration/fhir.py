"""A stored score as HL7 FHIR R4 JSON: a RiskAssessment, and the Bedside PEWS as an Observation.

Resources are validated with fhir.resources' R4B models: R4B is FHIR R4's
technical correction, with RiskAssessment and Observation unchanged from R4.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.riskassessment import RiskAssessment

from clinpred.pilots.deterioration.pews import ITEMS as PEWS_ITEMS
from clinpred.pilots.deterioration.store import ScoreRecord
from clinpred.pilots.deterioration.stored_score import instant_text

OUTCOME = "deterioration at home: unplanned admission, PICU transfer or sepsis"
# http://terminology.hl7.org/CodeSystem/risk-probability has no "medium": it says "moderate".
QUALITATIVE_RISK = {"low": "low", "medium": "moderate", "high": "high"}
UCUM = "http://unitsofmeasure.org"


def _score_quantity(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "score", "system": UCUM, "code": "{score}"}


def pews_observation(record: ScoreRecord) -> dict[str, Any]:
    pews = record.score.pews
    points = pews.items()
    resource = {
        "resourceType": "Observation",
        "id": f"pews-{record.patient_id}-{record.version}",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "survey",
                    }
                ]
            }
        ],
        "code": {"text": "Bedside Paediatric Early Warning Score (Parshuram 2009)"},
        "subject": {"reference": f"Patient/{record.patient_id}"},
        "effectiveDateTime": instant_text(record.score.scored_at),
        "valueQuantity": _score_quantity(pews.total),
        "component": [{"code": {"text": item}, "valueQuantity": _score_quantity(points[item])} for item in PEWS_ITEMS],
    }
    if pews.missing_items:
        resource["note"] = [{"text": "not measured, scored 0: " + ", ".join(pews.missing_items)}]
    return Observation.model_validate(resource).model_dump(mode="json", by_alias=True, exclude_none=True)


def risk_assessment(record: ScoreRecord) -> dict[str, Any]:
    score = record.score
    model = score.model
    scored_at = instant_text(score.scored_at)
    until = score.scored_at + timedelta(hours=score.horizon_hours)
    reasons = "; ".join(r.text for r in score.explanation.top_reasons)
    resource = {
        "resourceType": "RiskAssessment",
        "id": f"deterioration-{record.patient_id}-{record.version}",
        "status": "final",
        "subject": {"reference": f"Patient/{record.patient_id}"},
        "occurrenceDateTime": scored_at,
        "method": {
            "coding": [{"system": "urn:clinpred:model", "code": f"{model.name}:{model.version}"}],
            "text": f"clinpred {model.name} {model.version} (package sha256 {model.sha256})",
        },
        "basis": [{"reference": f"Observation/pews-{record.patient_id}-{record.version}"}],
        "prediction": [
            {
                "outcome": {"text": OUTCOME},
                "probabilityDecimal": score.probability,
                "qualitativeRisk": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/risk-probability",
                            "code": QUALITATIVE_RISK[score.band],
                        }
                    ]
                },
                "whenPeriod": {"start": scored_at, "end": instant_text(until)},
                "rationale": reasons,
            }
        ],
        "note": [{"text": score.confidence.statement}],
    }
    return RiskAssessment.model_validate(resource).model_dump(mode="json", by_alias=True, exclude_none=True)
