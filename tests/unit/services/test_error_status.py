"""Domain errors become rich gRPC statuses without echoing request values."""

from __future__ import annotations

from google.rpc import code_pb2, error_details_pb2

from clinpred.pilots.common.errors import FieldViolation, InvalidInput, NotFound, ViolationCollector
from clinpred.services.common.interceptors import ERROR_DOMAIN, status_of


def test_invalid_input_carries_every_field_violation() -> None:
    collector = ViolationCollector()
    collector.add("cases[0].features['mean_radius']", "impossible value: must be >= 0")
    collector.add("cases[1].features", "expected 30 features, got 29")
    try:
        collector.raise_if_any()
    except InvalidInput as error:
        status = status_of(error)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert "mean_radius" in status.message and "1 more" in status.message
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == [
        "cases[0].features['mean_radius']",
        "cases[1].features",
    ]
    info = error_details_pb2.ErrorInfo()
    assert status.details[1].Unpack(info)
    assert info.domain == ERROR_DOMAIN and info.reason == "ERROR_REASON_INVALID_INPUT"


def test_other_domain_errors_map_to_their_own_code() -> None:
    status = status_of(NotFound("patient not found"))
    assert status.code == code_pb2.NOT_FOUND
    assert len(status.details) == 1  # ErrorInfo only, no BadRequest


def test_an_empty_collector_raises_nothing() -> None:
    ViolationCollector().raise_if_any()
    assert InvalidInput.of([FieldViolation("a", "b")]).message == "a: b"
