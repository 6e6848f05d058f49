"""The deterioration codec's limits on hostile input: Timestamp's range, identifiers, tokens, and short violations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from clinpred.pilots.common.errors import InvalidInput, ViolationCollector
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as pb
from clinpred.services.common.codec import check_text, decode_counter_token, decode_timestamp
from clinpred.services.deterioration.codec import DeteriorationCodec

NOW = datetime.now(UTC).replace(microsecond=0)
SECRET = "SECRET-4711"


@pytest.mark.parametrize(
    ("seconds", "nanos", "valid"),
    [
        (-62_135_596_800, 0, True),
        (253_402_300_799, 999_999_999, True),
        (-62_135_596_801, 0, False),
        (253_402_300_800, 0, False),
        (0, -1, False),
        (0, 1_000_000_000, False),
        (-(2**63), 0, False),
    ],
)
def test_timestamps_decode_only_within_the_range_timestamp_defines(seconds: int, nanos: int, valid: bool) -> None:
    violations = ViolationCollector()
    decoded = decode_timestamp(Timestamp(seconds=seconds, nanos=nanos), "when", violations)
    assert (decoded is not None) is valid and bool(violations) is not valid
    if decoded is not None:
        assert decoded.tzinfo is not None


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("", None),
        ("0", 0),
        ("17", 17),
        (str(2**63 - 1), 2**63 - 1),
        ("²", "bad"),
        ("١٢", "bad"),
        (str(2**63), "bad"),
        ("9" * 4300, "bad"),
        ("-1", "bad"),
        ("+1", "bad"),
        (" 1", "bad"),
    ],
)
def test_counter_tokens_are_ascii_decimal_within_int64(token: str, expected: int | str | None) -> None:
    violations = ViolationCollector()
    decoded = decode_counter_token(token, "page_token", violations)
    if expected == "bad":
        assert decoded is None and [v.field for v in violations.violations] == ["page_token"]
        assert "19 decimal digits" in violations.violations[0].description
    else:
        assert decoded == expected and not violations


@pytest.mark.parametrize(
    ("text", "passes"),
    [
        ("child_17", True),
        ("MRN:12345", True),
        ("Station Süd", True),
        ("a\x00b", False),
        ("\u202e", False),
        ("\u200b", False),
        ("a\u2028b", False),
        ("x" * 13, False),
        ("", True),
    ],
)
def test_identifier_like_text_has_a_length_and_no_control_characters(text: str, passes: bool) -> None:
    violations = ViolationCollector()
    assert check_text(text, "ward", violations, max_length=12) is passes
    assert all(text not in v.description for v in violations.violations if text)


def test_a_required_text_must_not_be_blank() -> None:
    violations = ViolationCollector()
    assert not check_text("  ", "patient_id", violations, max_length=10, required=True)
    assert violations.violations[0].description == "is required"


def test_many_bad_observations_give_short_violations_that_echo_nothing() -> None:
    codec = DeteriorationCodec(max_batch_size=500, max_page_size=100)
    batch = [
        pb.Observation(
            observation_id=f"{SECRET}-{index}\x00",
            observed_at=Timestamp(seconds=253_402_300_800)
            if index % 2
            else Timestamp(seconds=int((NOW + timedelta(days=1)).timestamp())),
            heart_rate=float("nan"),
            spo2=4711.0,
            temperature_c=98.6,
            avpu=SECRET,
        )
        for index in range(200)
    ]
    with pytest.raises(InvalidInput) as caught:
        codec.decode_record(pb.RecordObservationsRequest(patient_id="p-1", observations=batch))
    violations = caught.value.violations
    fields = {v.field for v in violations}
    assert {"observations[199].observed_at", "observations[198].observed_at", "observations[0].observation_id"} <= fields
    # Items left out for their time keep their own index: the heart rate of item 198 is named as such.
    assert "observations[198].heart_rate" in fields and "observations[199].heart_rate" not in fields
    for violation in violations:
        assert len(violation.description) <= 120, violation
        assert SECRET not in violation.description and "4711" not in violation.description and "98.6" not in violation.description
    assert SECRET not in caught.value.message and len(caught.value.message) <= 200
