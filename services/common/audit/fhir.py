"""An audit record as a FHIR R4 AuditEvent, shaped as IHE Basic Audit Log Patterns (BALP) RESTful activity.

BALP (https://profiles.ihe.net/ITI/BALP/) audits FHIR REST interactions; a gRPC call maps onto
it as: type `rest`; subtype the REST interaction the method amounts to (read, search-type,
create, update, or operation for a computation that stores nothing) plus the gRPC method
itself; action C/R/U/E; agents the client (DICOM 110153 Source Role ID, the requestor, its
identifier system naming the tenant) and the server (110152 Destination Role ID); the patient
entity (Person / Patient) carries only the pseudonym; the request's SHA-256 is the data
entity, the caller's x-request-id the BALP transaction entity.

Validated with fhir.resources' R4B AuditEvent (R4's technical correction; AuditEvent is
unchanged from R4), as the deterioration codec validates its RiskAssessment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent

from clinpred.services.common.audit.records import AuditRecord, instant_text

AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
BALP_ENTITY_TYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
GRPC_METHOD_SYSTEM = "urn:clinpred:grpc-method"
SERVICE_SYSTEM = "urn:clinpred:service"
REQUEST_DIGEST_SYSTEM = "urn:clinpred:request-sha256"


@dataclass(frozen=True)
class Interaction:
    code: str  # http://hl7.org/fhir/restful-interaction
    action: str  # C R U D E


READ = Interaction("read", "R")
SEARCH = Interaction("search-type", "E")  # BALP records a search (query) as an Execute
CREATE = Interaction("create", "C")
UPDATE = Interaction("update", "U")
OPERATION = Interaction("operation", "E")  # computes an answer, stores nothing

INTERACTIONS = {
    # tumour
    "Classify": OPERATION,
    "ClassifyBatch": OPERATION,
    "ClassifyStream": OPERATION,
    "GetModelInfo": READ,
    # deterioration
    "RegisterPatient": UPDATE,  # creates or updates: an upsert is an update in FHIR (update-as-create)
    "RecordObservations": CREATE,
    "GetLatestRisk": READ,
    "ListRiskHistory": SEARCH,
    "WatchRisk": SEARCH,
    "ScoreObservations": OPERATION,
    "ExportFhir": READ,
    # genomics
    "ListScores": SEARCH,
    "AssessVcf": OPERATION,
    "AssessVcfUpload": OPERATION,
    "GetScoreLayout": READ,
    "ScoreEncrypted": OPERATION,
    "RegisterEvaluationKeys": CREATE,  # the server keeps the caller's public keys until they expire
}

# As HTTP would answer (google.rpc code mapping): a 4xx is the caller's failure, a 5xx the server's.
CLIENT_FAILURES = frozenset(
    {
        "CANCELLED",
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
    }
)


def interaction_of(method: str) -> Interaction:
    """The REST interaction a gRPC method ("/pkg.Service/Method" or "Method") amounts to."""
    name = method.rsplit("/", 1)[-1]
    if name in INTERACTIONS:
        return INTERACTIONS[name]
    if name.startswith("Get"):
        return READ
    if name.startswith(("List", "Watch", "Search")):
        return SEARCH
    return OPERATION


def outcome_code(status: str) -> str:
    """FHIR audit-event-outcome: 0 success, 4 minor failure (the caller's), 8 serious failure (the server's)."""
    if status == "OK":
        return "0"
    return "4" if status in CLIENT_FAILURES else "8"


def tenant_system(tenant: str, kind: str) -> str:
    return f"urn:clinpred:tenant:{quote(tenant, safe='')}:{kind}"


def audit_event(record: AuditRecord) -> dict[str, Any]:
    """The record as a validated FHIR R4 AuditEvent (JSON-ready dict)."""
    entry = record.entry
    interaction = interaction_of(entry.method)
    service_identifier = {"system": SERVICE_SYSTEM, "value": entry.service}
    entities: list[dict[str, Any]] = []
    if entry.patient_pseudonym:
        entities.append(
            {
                "what": {
                    "type": "Patient",
                    "identifier": {"system": tenant_system(entry.tenant, "patient-pseudonym"), "value": entry.patient_pseudonym},
                },
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    if entry.request_id:
        entities.append(
            {
                "what": {"identifier": {"value": entry.request_id}},
                "type": {"system": BALP_ENTITY_TYPE, "code": "XrequestId"},
            }
        )
    details = [{"type": "request-sha256", "valueString": entry.request_digest}]
    if entry.model:
        details.append({"type": "model", "valueString": entry.model})
    role = ("24", "Query") if interaction is SEARCH else ("4", "Domain Resource")
    entities.append(
        {
            "what": {"identifier": {"system": REQUEST_DIGEST_SYSTEM, "value": entry.request_digest}},
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": role[0], "display": role[1]},
            "detail": details,
        }
    )
    resource = {
        "resourceType": "AuditEvent",
        "id": f"{record.writer_id}-{record.sequence}",
        "type": {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [
            {"system": RESTFUL_INTERACTION, "code": interaction.code, "display": interaction.code},
            {"system": GRPC_METHOD_SYSTEM, "code": entry.method, "display": f"gRPC {entry.service} {entry.method}"},
        ],
        "action": interaction.action,
        "recorded": instant_text(record.recorded_at),
        "outcome": outcome_code(entry.outcome),
        "outcomeDesc": f"gRPC status {entry.outcome}",
        "agent": [
            {
                "type": {"coding": [{"system": DICOM, "code": "110153", "display": "Source Role ID"}]},
                "who": {"identifier": {"system": tenant_system(entry.tenant, "client"), "value": entry.client}},
                "requestor": True,
            },
            {
                "type": {"coding": [{"system": DICOM, "code": "110152", "display": "Destination Role ID"}]},
                "who": {"identifier": service_identifier, "display": entry.service},
                "requestor": False,
            },
        ],
        "source": {
            "observer": {"identifier": service_identifier, "display": entry.service},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": entities,
    }
    return FhirAuditEvent.model_validate(resource).model_dump(mode="json", by_alias=True, exclude_none=True)
