"""The definitions behind clinpred's own FHIR codes, as FHIR R4 conformance resources.

ExportFhir codes what SNOMED CT and LOINC do not provide for certain in code systems under
`FHIR_BASE`; this module publishes them: one CodeSystem per system, the alert band's ValueSet and
its extension's StructureDefinition, and the NamingSystem of the model-package identifier, as one
Bundle (type collection). Print it with

    python -m clinpred.services.deterioration.fhir_definitions > clinpred-fhir-definitions.json

and load it into a terminology server or an implementation guide; the tests check that every code
an export uses is defined here with the same display.
"""

from __future__ import annotations

import json
from typing import Any, Final

from fhir.resources.R4B.bundle import Bundle as FhirBundle

from clinpred.pilots.deterioration.pews import ITEMS as PEWS_ITEMS
from clinpred.services.deterioration.fhir import (
    ALERT_BAND_EXTENSION,
    ALERT_BAND_SYSTEM,
    ALERT_BAND_VALUE_SET,
    BAND_DISPLAY,
    FHIR_BASE,
    METHOD_SYSTEM,
    MODEL_SHA256_SYSTEM,
    OBSERVATION_SYSTEM,
    OUTCOME_CODE,
    OUTCOME_DISPLAY,
    OUTCOME_SYSTEM,
    PEWS_CODE,
    PEWS_DISPLAY,
    PEWS_ITEM_DISPLAY,
    PEWS_SYSTEM,
    RESPIRATORY_EFFORT_LEVELS,
    RESPIRATORY_EFFORT_SYSTEM,
    VITAL_SIGNS,
    XHTML,
    pews_item_code,
    pews_item_display,
)

# The version of these definitions; it changes whenever a code is added or its meaning changes.
DEFINITIONS_VERSION: Final = "1.0.0"
DATE: Final = "2026-12-03"
PUBLISHER: Final = "clinpred"
# The model packages this release ships; a package of another name is coded the same way.
MODEL_NAMES: Final = ("home-deterioration",)

Concept = tuple[str, str, str]  # code, display, definition
OBSERVATION_DEFINITIONS: Final = {
    "capillary-refill-time": "Capillary refill time in seconds (Bedside PEWS: 4 points from 3 s).",
    "respiratory-effort": "Work of breathing as in the Bedside PEWS, coded by level (CodeSystem respiratory-effort).",
}


def _text(summary: str) -> dict[str, Any]:
    return {"status": "generated", "div": f'<div xmlns="{XHTML}"><p>{summary}</p></div>'}


def _code_system(url: str, name: str, title: str, description: str, concepts: list[Concept]) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": url.rsplit("/", 1)[1],
        "text": _text(f"{title}: {', '.join(code for code, _, _ in concepts)}."),
        "url": url,
        "version": DEFINITIONS_VERSION,
        "name": name,
        "title": title,
        "status": "active",
        "experimental": False,
        "date": DATE,
        "publisher": PUBLISHER,
        "description": description,
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": [{"code": code, "display": display, "definition": definition} for code, display, definition in concepts],
    }


def code_systems() -> list[dict[str, Any]]:
    pews_items: list[Concept] = [
        (
            pews_item_code(item),
            pews_item_display(item),
            f"Points (0, 1, 2 or 4) of the Bedside PEWS item {PEWS_ITEM_DISPLAY[item].lower()}.",
        )
        for item in PEWS_ITEMS
    ]
    return [
        _code_system(
            OUTCOME_SYSTEM,
            "ClinpredDeteriorationOutcome",
            "clinpred deterioration outcomes",
            "Outcomes the deterioration models predict.",
            [
                (
                    OUTCOME_CODE,
                    OUTCOME_DISPLAY,
                    "Any of an unplanned hospital admission, a transfer to paediatric intensive care, or sepsis, of a"
                    " child with cancer monitored at home, within the prediction's period.",
                )
            ],
        ),
        _code_system(
            METHOD_SYSTEM,
            "ClinpredMethod",
            "clinpred assessment methods",
            "How a clinpred score was made: the Bedside PEWS, or a clinpred model named by its package name.",
            [
                (PEWS_CODE, PEWS_DISPLAY, "Bedside PEWS as in Parshuram et al., Crit Care 2009;13:R135, Table 1."),
                *(
                    (name, f"clinpred model {name}", f"The clinpred model package {name}; its version is in the Device.")
                    for name in MODEL_NAMES
                ),
            ],
        ),
        _code_system(
            PEWS_SYSTEM,
            "ClinpredBedsidePews",
            "Bedside PEWS and its items",
            "The Bedside Paediatric Early Warning Score (total 0-26) and its seven items.",
            [(PEWS_CODE, PEWS_DISPLAY, "Sum of the points of the seven items, 0 to 26."), *pews_items],
        ),
        _code_system(
            OBSERVATION_SYSTEM,
            "ClinpredObservation",
            "clinpred observations without a LOINC code here",
            "Bedside observations a home-monitoring app records that ExportFhir codes without LOINC.",
            [
                (code, display, OBSERVATION_DEFINITIONS[code])
                for spec in VITAL_SIGNS.values()
                for system, code, display in spec.codings
                if system == OBSERVATION_SYSTEM
            ],
        ),
        _code_system(
            RESPIRATORY_EFFORT_SYSTEM,
            "ClinpredRespiratoryEffort",
            "Respiratory effort levels",
            "The four levels of the Bedside PEWS respiratory effort item.",
            [
                (code, display, f"{display} (Bedside PEWS level {level}).")
                for level, (code, display) in enumerate(RESPIRATORY_EFFORT_LEVELS)
            ],
        ),
        _code_system(
            ALERT_BAND_SYSTEM,
            "ClinpredAlertBand",
            "clinpred alert bands",
            "The alert band of a score: thresholds on the probability chosen for the alert burden a home-care team can"
            " carry, stated in each model's card; they say nothing of likelihood (see HL7 risk-probability for that).",
            [
                ("low", BAND_DISPLAY["low"], "Probability below the model's medium threshold."),
                ("medium", BAND_DISPLAY["medium"], "Probability at or above the medium threshold and below the high one."),
                ("high", BAND_DISPLAY["high"], "Probability at or above the model's high threshold."),
            ],
        ),
    ]


def alert_band_value_set() -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "id": "alert-band",
        "text": _text("Every clinpred alert band."),
        "url": ALERT_BAND_VALUE_SET,
        "version": DEFINITIONS_VERSION,
        "name": "ClinpredAlertBand",
        "status": "active",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": "The alert bands of clinpred scores.",
        "compose": {"include": [{"system": ALERT_BAND_SYSTEM}]},
    }


def alert_band_extension() -> dict[str, Any]:
    return {
        "resourceType": "StructureDefinition",
        "id": "alert-band",
        "text": _text("Extension: the clinpred alert band of a RiskAssessment prediction."),
        "url": ALERT_BAND_EXTENSION,
        "version": DEFINITIONS_VERSION,
        "name": "ClinpredAlertBand",
        "status": "active",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": "The service's alert band of the prediction, beside (never instead of) its probability.",
        "fhirVersion": "4.0.1",
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": "RiskAssessment.prediction"}],
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {
            "element": [
                {"id": "Extension", "path": "Extension", "min": 0, "max": "1"},
                {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
                {"id": "Extension.url", "path": "Extension.url", "fixedUri": ALERT_BAND_EXTENSION},
                {
                    "id": "Extension.value[x]",
                    "path": "Extension.value[x]",
                    "min": 1,
                    "type": [{"code": "CodeableConcept"}],
                    "binding": {"strength": "required", "valueSet": ALERT_BAND_VALUE_SET},
                },
            ]
        },
    }


def model_sha256_naming_system() -> dict[str, Any]:
    return {
        "resourceType": "NamingSystem",
        "id": "model-package-sha256",
        "text": _text("Identifier system: the SHA-256 of a clinpred model package (lowercase hex)."),
        "name": "ClinpredModelPackageSha256",
        "status": "active",
        "kind": "identifier",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": "A clinpred model package's SHA-256, 64 lowercase hexadecimal digits, as the service reports it.",
        "uniqueId": [{"type": "uri", "value": MODEL_SHA256_SYSTEM, "preferred": True}],
    }


def definitions_bundle() -> dict[str, Any]:
    """Every definition as one Bundle (type collection), checked against the R4B models."""
    resources = [*code_systems(), alert_band_value_set(), alert_band_extension(), model_sha256_naming_system()]
    bundle = {
        "resourceType": "Bundle",
        "id": "clinpred-definitions",
        "type": "collection",
        "entry": [
            {"fullUrl": resource.get("url", f"{FHIR_BASE}/{resource['resourceType']}/{resource['id']}"), "resource": resource}
            for resource in resources
        ],
    }
    checked: dict[str, Any] = FhirBundle.model_validate(bundle).model_dump(mode="json", by_alias=True, exclude_none=True)
    return checked


if __name__ == "__main__":
    print(json.dumps(definitions_bundle(), indent=2, ensure_ascii=False))
