"""Proto <-> domain conversions every service shares, and request checks common to all."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

import numpy as np
from google.protobuf import unknown_fields
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from clinpred.pilots.common.conformal import ConformalSet
from clinpred.pilots.common.errors import ViolationCollector
from clinpred.pilots.common.explanation import Explanation
from clinpred.pilots.common.model_package import ModelIdentity
from clinpred.pilots.common.schema import FeatureSpec, RangeFlag
from clinpred.services.api.common.v1 import prediction_pb2 as common_pb2

_FLOAT32_MAX = 3.4028234663852886e38
# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
TIMESTAMP_MIN_SECONDS: Final = -62_135_596_800
TIMESTAMP_MAX_SECONDS: Final = 253_402_300_799
INT64_MAX: Final = 2**63 - 1
# Decimal digits of the largest int64: a longer counter token was never issued.
MAX_COUNTER_TOKEN_DIGITS: Final = len(str(INT64_MAX))
_DIRECTIONS = {"raises": common_pb2.DIRECTION_RAISES, "lowers": common_pb2.DIRECTION_LOWERS}


def check_unknown_fields(message: Message, path: str, violations: ViolationCollector) -> None:
    """Flags fields the schema does not know, anywhere in `message`.

    Unknown fields mean the caller speaks another version of the API; answering
    as if they were absent could be a silent wrong answer.
    """
    for field in unknown_fields.UnknownFieldSet(message):  # type: ignore[attr-defined]
        violations.add(path or "request", f"unknown field number {field.field_number}: not part of this API version")
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        child = f"{path}.{descriptor.name}" if path else descriptor.name
        if descriptor.message_type.GetOptions().map_entry:
            continue
        if descriptor.label == descriptor.LABEL_REPEATED:  # type: ignore[attr-defined]
            for index, item in enumerate(value):
                check_unknown_fields(item, f"{child}[{index}]", violations)
        else:
            check_unknown_fields(value, child, violations)


def check_feature_map(
    features: Mapping[str, float], specs: Sequence[FeatureSpec], path: str, violations: ViolationCollector
) -> list[float]:
    """Validates a name -> value map against a schema; returns values in schema order.

    Messages name the field and the allowed range, never the submitted value or an unknown name.
    """
    expected = {spec.name for spec in specs}
    check_map_keys(features, expected, f"{path}.features", "feature name; see GetModelInfo for the schema", violations)
    missing = [spec.name for spec in specs if spec.name not in features]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        violations.add(
            f"{path}.features",
            f"expected {len(specs)} features, got {len(features)}; missing: {shown}",
        )
    row = []
    for spec in specs:
        value = features.get(spec.name, math.nan)
        row.append(value)
        if spec.name not in features:
            continue
        field = f"{path}.features[{spec.name!r}]"
        if not math.isfinite(value):
            violations.add(field, "must be a finite number (NaN and infinity are not measurements)")
        elif abs(value) > _FLOAT32_MAX:
            # Models run in float32, where this value would become infinity and the answer a silent wrong one.
            violations.add(field, f"impossible value: its magnitude must be at most {_FLOAT32_MAX:.3g}")
        elif spec.valid_min is not None and value < spec.valid_min:
            violations.add(field, f"impossible value: must be >= {spec.valid_min:g} {spec.unit}".rstrip())
        elif spec.valid_max is not None and value > spec.valid_max:
            violations.add(field, f"impossible value: must be <= {spec.valid_max:g} {spec.unit}".rstrip())
    return row


# Unicode categories refused in identifiers: control characters (C0, DEL, C1) and line and paragraph
# separators, which break log lines and terminals and are never part of a case, sample or cancer name.
_REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def check_map_keys(keys: Iterable[str], known: Iterable[str], path: str, what: str, violations: ViolationCollector) -> None:
    """Flags the keys of a map field that are not in `known`, without echoing them.

    A map has no order on the wire, so an unknown key is named by its index among the map's keys in
    code-point order: `{path}[3]` is the fourth key when sorted.
    """
    allowed = set(known)
    for index, key in enumerate(sorted(keys)):
        if key not in allowed:
            violations.add(f"{path}[{index}]", f"unknown {what} (key {index} in code-point order)")


def check_batch_size(count: int, limit: int, path: str, violations: ViolationCollector) -> None:
    if count == 0:
        violations.add(path, "must contain at least one item")
    elif count > limit:
        violations.add(path, f"holds {count} items; at most {limit} are accepted per call")


def encode_identity(identity: ModelIdentity) -> common_pb2.ModelIdentity:
    return common_pb2.ModelIdentity(name=identity.name, version=identity.version, sha256=identity.sha256)


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


class ContributionsEncoder:
    """`Explanation.contributions` of one feature list written straight to protobuf wire format.

    Thirty `FeatureContribution` messages built field by field cost about 50 us per answer; here the
    bytes of every contribution (tag, length, feature name) are fixed once per model, and an answer
    only writes its 2 x 30 doubles into a copy and is parsed in C. The fixed part is protobuf's own
    serialisation of each name; the doubles (fields 2 and 3, fixed 64-bit, little-endian) are its last
    18 bytes, written even when 0.0, which parsers read as the default.
    """

    def __init__(self, feature_names: Sequence[str]) -> None:
        pieces, value_at, shap_at, offset = [], [], [], 0
        tag = _varint(common_pb2.Explanation.CONTRIBUTIONS_FIELD_NUMBER << 3 | 2)
        for name in feature_names:
            inner = common_pb2.FeatureContribution(feature=name, value=1.0, shap_value=1.0).SerializeToString()
            head = tag + _varint(len(inner))
            start = offset + len(head) + len(inner) - 18
            value_at.append(start + 1)  # after the tag byte of field 2
            shap_at.append(start + 10)  # after the tag byte of field 3
            pieces.append(head + inner)
            offset += len(head) + len(inner)
        self.size = len(feature_names)
        self._template = np.frombuffer(b"".join(pieces), dtype=np.uint8)
        eight = np.arange(8)
        self._value_bytes = (np.asarray(value_at)[:, None] + eight).ravel()
        self._shap_bytes = (np.asarray(shap_at)[:, None] + eight).ravel()

    def encode(self, values: Sequence[float], shap_values: Sequence[float]) -> bytes:
        """The serialised `contributions` of an Explanation, in feature order."""
        buffer = self._template.copy()
        buffer[self._value_bytes] = np.asarray(values, dtype="<f8").view(np.uint8)
        buffer[self._shap_bytes] = np.asarray(shap_values, dtype="<f8").view(np.uint8)
        return buffer.tobytes()


def encode_explanation(explanation: Explanation, contributions: ContributionsEncoder | None = None) -> common_pb2.Explanation:
    """The proto of `explanation`; with `contributions` (an encoder of its features, in order) without per-field work."""
    fast = contributions is not None and len(explanation.feature_values) == contributions.size
    message = common_pb2.Explanation(
        explained_class=explanation.explained_class,
        output_space=explanation.output_space,
        base_value=explanation.base_value,
        margin=explanation.margin,
        method=explanation.method,
        shap_values=explanation.shap_values,
        contributions=()
        if fast
        else [
            common_pb2.FeatureContribution(feature=c.feature, value=c.value, shap_value=c.shap_value)
            for c in explanation.contributions
        ],
        top_reasons=[
            common_pb2.Reason(
                feature=r.feature,
                value=r.value,
                unit=r.unit,
                direction=_DIRECTIONS.get(r.direction, common_pb2.DIRECTION_UNSPECIFIED),
                shap_value=r.shap_value,
                text=r.text,
            )
            for r in explanation.top_reasons
        ],
    )
    if fast:
        assert contributions is not None
        message.MergeFromString(contributions.encode(explanation.feature_values, explanation.shap_values))
    return message


def encode_conformal_set(confidence: ConformalSet, verified_coverage: float) -> common_pb2.Confidence:
    return common_pb2.Confidence(
        prediction_set=list(confidence.labels),
        coverage=confidence.coverage,
        method=confidence.method,
        statement=confidence.statement,
        verified_coverage=verified_coverage,
        lower=confidence.lower,
        upper=confidence.upper,
    )


def encode_range_flags(flags: Iterable[RangeFlag]) -> list[common_pb2.RangeFlag]:
    return [
        common_pb2.RangeFlag(feature=f.feature, value=f.value, training_min=f.training_min, training_max=f.training_max)
        for f in flags
    ]


def encode_feature_spec(spec: FeatureSpec) -> common_pb2.FeatureSpec:
    message = common_pb2.FeatureSpec(
        name=spec.name,
        unit=spec.unit,
        description=spec.description,
        training_min=spec.training_min,
        training_max=spec.training_max,
    )
    if spec.valid_min is not None:
        message.valid_min = spec.valid_min
    if spec.valid_max is not None:
        message.valid_max = spec.valid_max
    if spec.training_median is not None:
        message.training_median = spec.training_median
    return message


def decode_feature_spec(message: common_pb2.FeatureSpec) -> FeatureSpec:
    """A served feature spec back as the domain's (a client that finishes answers itself needs the ranges)."""
    return FeatureSpec(
        name=message.name,
        unit=message.unit,
        description=message.description,
        valid_min=message.valid_min if message.HasField("valid_min") else None,
        valid_max=message.valid_max if message.HasField("valid_max") else None,
        training_min=message.training_min,
        training_max=message.training_max,
        training_median=message.training_median if message.HasField("training_median") else None,
    )


def encode_probabilities(probabilities: Mapping[str, float]) -> list[common_pb2.ClassProbability]:
    return [common_pb2.ClassProbability(class_name=name, probability=p) for name, p in probabilities.items()]


def encode_metrics(metrics: Mapping[str, object], prefix: str = "") -> dict[str, float]:
    """Numeric metrics of a package, nested sections flattened to dotted keys (e.g. "test.auroc")."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(encode_metrics(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            flat[name] = float(value)
    return flat


def decode_timestamp(stamp: Timestamp, path: str, violations: ViolationCollector) -> datetime | None:
    """`stamp` as an aware UTC datetime, or None (with a violation) outside the range Timestamp defines."""
    if not TIMESTAMP_MIN_SECONDS <= stamp.seconds <= TIMESTAMP_MAX_SECONDS:
        violations.add(path, "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z")
        return None
    if not 0 <= stamp.nanos <= 999_999_999:
        violations.add(path, "nanos must be between 0 and 999999999")
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def _is_control(character: str) -> bool:
    # Cc (NUL, escapes), Cf (invisible format marks such as bidi overrides), Cs, Co, Cn, and line breaks
    # other than the ASCII ones: none belongs in an identifier, and PostgreSQL's text cannot hold NUL.
    category = unicodedata.category(character)
    return category[0] == "C" or category in ("Zl", "Zp")


def check_text(value: str, path: str, violations: ViolationCollector, *, max_length: int, required: bool = False) -> bool:
    """Checks an identifier-like string: at most `max_length` characters, no control or invisible
    characters, non-blank when `required`. True when it passes. Never echoes the value."""
    if required and not value.strip():
        violations.add(path, "is required")
        return False
    if len(value) > max_length:
        violations.add(path, f"must be at most {max_length} characters")
        return False
    if any(_is_control(character) for character in value):
        violations.add(path, "must not contain control or invisible characters")
        return False
    return True


def decode_counter_token(token: str, path: str, violations: ViolationCollector) -> int | None:
    """A page or resume token issued as a decimal counter: ASCII digits within int64; None when empty
    or invalid (with a violation)."""
    if not token:
        return None
    # str.isdigit() is True for "²" and other Unicode digits; only ASCII digits were ever issued.
    if len(token) > MAX_COUNTER_TOKEN_DIGITS or not (token.isascii() and token.isdigit()) or int(token) > INT64_MAX:
        violations.add(path, f"is not a token this service issued (at most {MAX_COUNTER_TOKEN_DIGITS} decimal digits)")
        return None
    return int(token)
