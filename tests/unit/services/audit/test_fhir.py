"""audit_event(): a record as an IHE BALP-shaped FHIR R4 AuditEvent, validated with the R4B model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from clinpred.services.common.audit import AuditRecord, ChainHead
from clinpred.services.common.audit.chain import seal
from clinpred.services.common.audit.fhir import audit_event, interaction_of, outcome_code
from tests.unit.services.audit.sample_entries import MARKER_PATIENT_ID, sample_entry, sample_keys

KEYS = sample_keys()
WRITER = "c" * 32


def _record(**changes: Any) -> AuditRecord:
    head = ChainHead(WRITER, 6, "d" * 64)
    return seal(KEYS, sample_entry(KEYS, **changes), head, datetime(2026, 11, 1, 7, 30, 0, 5, tzinfo=UTC))


def _coding(entity: dict[str, Any]) -> tuple[str, str]:
    return entity["type"]["system"], entity["type"]["code"]


def test_a_read_is_a_balp_restful_read_with_client_server_patient_and_request() -> None:
    record = _record()
    event = audit_event(record)
    AuditEvent.model_validate(event)  # validates again from plain JSON
    assert event["resourceType"] == "AuditEvent" and event["id"] == f"{WRITER}-7"
    assert event["type"] == {
        "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
        "code": "rest",
        "display": "RESTful Operation",
    }
    assert event["subtype"][0]["system"] == "http://hl7.org/fhir/restful-interaction"
    assert event["subtype"][0]["code"] == "read"
    assert event["subtype"][1]["code"] == record.entry.method
    assert event["action"] == "R" and event["outcome"] == "0"
    assert event["recorded"] == "2026-11-01T07:30:00.000005Z"
    client, server = event["agent"]
    assert client["requestor"] is True and client["type"]["coding"][0]["code"] == "110153"
    assert client["who"]["identifier"] == {"system": "urn:clinpred:tenant:hospital-a:client", "value": "telemonitoring-app"}
    assert server["requestor"] is False and server["type"]["coding"][0]["code"] == "110152"
    assert event["source"]["observer"]["identifier"]["value"] == "deterioration"
    assert event["source"]["type"][0]["code"] == "4"
    patient, transaction, data = event["entity"]
    assert _coding(patient) == ("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1")
    assert patient["role"]["code"] == "1" and patient["what"]["type"] == "Patient"
    assert patient["what"]["identifier"]["value"] == record.entry.patient_pseudonym
    assert patient["what"]["identifier"]["system"] == "urn:clinpred:tenant:hospital-a:patient-pseudonym"
    assert _coding(transaction) == ("https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "XrequestId")
    assert transaction["what"]["identifier"]["value"] == "req-0001"
    assert data["what"]["identifier"]["value"] == record.entry.request_digest
    assert {d["type"]: d["valueString"] for d in data["detail"]} == {
        "request-sha256": record.entry.request_digest,
        "model": "deterioration:3",
    }


def test_no_patient_no_request_id_no_model_leaves_their_parts_out() -> None:
    event = audit_event(_record(patient_pseudonym="", request_id="", model=""))
    assert len(event["entity"]) == 1
    assert [d["type"] for d in event["entity"][0]["detail"]] == ["request-sha256"]


def test_the_raw_patient_id_never_appears() -> None:
    assert MARKER_PATIENT_ID not in json.dumps(audit_event(_record()))
    assert "MARKER" not in _record().to_json().decode()


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("OK", "0"),
        ("INVALID_ARGUMENT", "4"),
        ("NOT_FOUND", "4"),
        ("PERMISSION_DENIED", "4"),
        ("UNAUTHENTICATED", "4"),
        ("CANCELLED", "4"),
        ("INTERNAL", "8"),
        ("UNAVAILABLE", "8"),
        ("DEADLINE_EXCEEDED", "8"),
        ("UNKNOWN", "8"),
    ],
)
def test_outcome_is_success_minor_for_the_callers_failures_serious_for_the_servers(status: str, code: str) -> None:
    assert outcome_code(status) == code
    event = audit_event(_record(outcome=status))
    assert event["outcome"] == code and event["outcomeDesc"] == f"gRPC status {status}"


@pytest.mark.parametrize(
    ("method", "subtype", "action"),
    [
        ("/clinpred.deterioration.v1.DeteriorationService/RecordObservations", "create", "C"),
        ("/clinpred.deterioration.v1.DeteriorationService/RegisterPatient", "update", "U"),
        ("/clinpred.deterioration.v1.DeteriorationService/ListRiskHistory", "search-type", "E"),
        ("/clinpred.deterioration.v1.DeteriorationService/WatchRisk", "search-type", "E"),
        ("/clinpred.tumor.v1.TumorClassificationService/Classify", "operation", "E"),
        ("/clinpred.genomics.v1.GenomicRiskService/GetScoreLayout", "read", "R"),
        ("/clinpred.genomics.v1.GenomicRiskService/RegisterEvaluationKeys", "create", "C"),
        ("ExportFhir", "read", "R"),
        ("GetSomethingNew", "read", "R"),
        ("Frobnicate", "operation", "E"),
    ],
)
def test_each_method_maps_to_a_rest_interaction(method: str, subtype: str, action: str) -> None:
    assert interaction_of(method).code == subtype
    event = audit_event(_record(method=method))
    assert (event["subtype"][0]["code"], event["action"]) == (subtype, action)
    roles = {e["role"]["code"] for e in event["entity"] if e["type"]["code"] == "2"}
    assert roles == ({"24"} if subtype == "search-type" else {"4"})


def test_a_tenant_with_reserved_characters_stays_one_uri() -> None:
    event = audit_event(_record(tenant="st mary's/east"))
    assert event["agent"][0]["who"]["identifier"]["system"] == "urn:clinpred:tenant:st%20mary%27s%2Feast:client"


def test_the_model_refuses_what_audit_event_must_never_produce() -> None:
    event = audit_event(_record())
    without_source = {key: value for key, value in event.items() if key != "source"}
    with pytest.raises(ValueError, match="source"):
        AuditEvent.model_validate(without_source)
    with pytest.raises(ValueError, match="recorded"):
        AuditEvent.model_validate({**event, "recorded": "yesterday"})
