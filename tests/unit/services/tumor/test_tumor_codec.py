"""The tumour codec on its own (no server): every check with its field path, and encodings that keep every field.

The codec is built from the committed reference schema, as the service builds it at load.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from google.protobuf.message import Message

from clinpred.pilots.common.conformal import ConformalSet
from clinpred.pilots.common.errors import InvalidInput
from clinpred.pilots.common.explanation import Contribution, Explanation, Reason
from clinpred.pilots.common.model_package import ModelIdentity, ModelPackage
from clinpred.pilots.common.schema import ModelSchema, RangeFlag
from clinpred.pilots.tumor.classifier import ClassifiedCase, TumorCases, TumorClassification, TumorModelInfo
from clinpred.services.api.common.v1 import prediction_pb2 as common_pb2
from clinpred.services.api.tumor.v1 import tumor_pb2
from clinpred.services.common.codec import decode_feature_spec
from clinpred.services.tumor.codec import MAX_CIPHERTEXT_BYTES, MAX_PUBLIC_CONTEXT_BYTES, TumorCodec
from tests.conftest import MODELS

REFERENCE = MODELS / "tumor" / "wdbc-xgboost" / "1.0.0"
MAX_BATCH = 8
VERIFIED = 0.9613
MAX_CIPHERTEXTS = 3
# Field 15 is in none of these messages: what a client of another API version would send.
FOREIGN_FIELD = b"\x78\x01"


@pytest.fixture(scope="module")
def schema() -> ModelSchema:
    return ModelSchema.from_json(ModelPackage.open(REFERENCE).read_json("schema.json"))


@pytest.fixture(scope="module")
def codec(schema: ModelSchema) -> TumorCodec:
    return TumorCodec(schema, MAX_BATCH, VERIFIED, MAX_CIPHERTEXTS)


@pytest.fixture(scope="module")
def features(schema: ModelSchema) -> dict[str, float]:
    """A plausible case: every feature at its training median, in reverse order to show order does not matter."""
    return {f.name: float(f.training_median or f.training_min) for f in reversed(schema.features)}


def case(features: dict[str, float], case_id: str = "c1") -> tumor_pb2.TumorCase:
    return tumor_pb2.TumorCase(case_id=case_id, features=features)


def violations_of(decode: Callable[..., object], *args: object) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        decode(*args)
    return {v.field: v.description for v in caught.value.violations}


def with_foreign_field(message: Message) -> bytes:
    return message.SerializeToString() + FOREIGN_FIELD


# Decoding


def test_a_valid_case_decodes_to_its_id_and_a_row_in_schema_order(
    codec: TumorCodec, schema: ModelSchema, features: dict[str, float]
) -> None:
    cases = codec.decode_classify(tumor_pb2.ClassifyRequest(tumor_case=case(features, "case-7")))
    assert isinstance(cases, TumorCases)
    assert cases.case_ids == ("case-7",)
    assert cases.rows.dtype == np.float64 and cases.rows.shape == (1, 30)
    assert cases.rows[0].tolist() == [features[name] for name in schema.feature_names]


def test_a_missing_case_is_required(codec: TumorCodec) -> None:
    assert violations_of(codec.decode_classify, tumor_pb2.ClassifyRequest()) == {"tumor_case": "is required"}


def test_an_unknown_feature_is_named_by_its_index_not_echoed(codec: TumorCodec, features: dict[str, float]) -> None:
    request = tumor_pb2.ClassifyRequest(tumor_case=case(dict(features, tumour_colour=3.0)))
    violations = violations_of(codec.decode_classify, request)
    index = sorted([*features, "tumour_colour"]).index("tumour_colour")
    assert list(violations) == [f"tumor_case.features[{index}]"]
    assert "unknown feature name" in violations[f"tumor_case.features[{index}]"]
    assert "tumour_colour" not in str(violations)


def test_missing_features_are_counted_and_named(codec: TumorCodec, features: dict[str, float]) -> None:
    partial = {k: v for k, v in features.items() if k not in ("worst_area", "mean_radius")}
    violations = violations_of(codec.decode_classify, tumor_pb2.ClassifyRequest(tumor_case=case(partial)))
    description = violations["tumor_case.features"]
    assert "expected 30 features, got 28" in description
    assert "mean_radius" in description and "worst_area" in description


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(codec: TumorCodec, features: dict[str, float], value: float) -> None:
    request = tumor_pb2.ClassifyRequest(tumor_case=case(dict(features, mean_texture=value)))
    violations = violations_of(codec.decode_classify, request)
    assert list(violations) == ["tumor_case.features['mean_texture']"]
    assert "finite" in violations["tumor_case.features['mean_texture']"]


def test_impossible_values_name_the_bound_never_the_value(codec: TumorCodec, features: dict[str, float]) -> None:
    request = tumor_pb2.ClassifyRequest(tumor_case=case(dict(features, mean_radius=-4.25, mean_smoothness=1.75)))
    violations = violations_of(codec.decode_classify, request)
    assert set(violations) == {"tumor_case.features['mean_radius']", "tumor_case.features['mean_smoothness']"}
    assert "impossible" in violations["tumor_case.features['mean_radius']"]
    assert ">= 0" in violations["tumor_case.features['mean_radius']"]
    assert "<= 1" in violations["tumor_case.features['mean_smoothness']"]
    assert not any("4.25" in d or "1.75" in d for d in violations.values())


def test_a_value_on_the_valid_bound_is_accepted(codec: TumorCodec, features: dict[str, float]) -> None:
    cases = codec.decode_classify(tumor_pb2.ClassifyRequest(tumor_case=case(dict(features, mean_radius=0.0))))
    assert len(cases) == 1


def test_a_batch_decodes_every_case_in_order(codec: TumorCodec, features: dict[str, float]) -> None:
    other = dict(features, mean_radius=features["mean_radius"] + 1.0)
    request = tumor_pb2.ClassifyBatchRequest(cases=[case(features, "a"), case(other, "b")])
    cases = codec.decode_batch(request)
    assert cases.case_ids == ("a", "b")
    assert cases.rows.shape == (2, 30)
    radius = codec.schema.feature_names.index("mean_radius")
    assert cases.rows[1, radius] - cases.rows[0, radius] == 1.0


def test_an_empty_batch_is_refused(codec: TumorCodec) -> None:
    violations = violations_of(codec.decode_batch, tumor_pb2.ClassifyBatchRequest())
    assert list(violations) == ["cases"] and "at least one" in violations["cases"]


def test_a_batch_over_the_limit_is_refused_before_its_cases_are_read(codec: TumorCodec) -> None:
    # The cases are invalid too; only the size is reported, since none of them is read.
    request = tumor_pb2.ClassifyBatchRequest(cases=[case({"bogus": math.nan})] * (MAX_BATCH + 1))
    violations = violations_of(codec.decode_batch, request)
    assert list(violations) == ["cases"]
    assert f"holds {MAX_BATCH + 1} items" in violations["cases"] and f"at most {MAX_BATCH}" in violations["cases"]


def test_a_batch_at_the_limit_is_accepted(codec: TumorCodec, features: dict[str, float]) -> None:
    cases = codec.decode_batch(tumor_pb2.ClassifyBatchRequest(cases=[case(features)] * MAX_BATCH))
    assert len(cases) == MAX_BATCH


def test_a_batch_names_every_bad_case_by_its_index(codec: TumorCodec, features: dict[str, float]) -> None:
    request = tumor_pb2.ClassifyBatchRequest(
        cases=[case(features), case(dict(features, mean_area=-1.0)), case(dict(features, worst_symmetry=math.nan))]
    )
    violations = violations_of(codec.decode_batch, request)
    assert set(violations) == {"cases[1].features['mean_area']", "cases[2].features['worst_symmetry']"}


def test_stream_messages_carry_their_index_in_every_path(codec: TumorCodec, features: dict[str, float]) -> None:
    good = codec.decode_stream_item(tumor_pb2.ClassifyStreamRequest(tumor_case=case(features, "s0")), 0)
    assert good.case_ids == ("s0",)
    assert violations_of(codec.decode_stream_item, tumor_pb2.ClassifyStreamRequest(), 3) == {
        "stream[3].tumor_case": "is required"
    }
    bad = tumor_pb2.ClassifyStreamRequest(tumor_case=case(dict(features, mean_radius=-1.0)))
    assert list(violations_of(codec.decode_stream_item, bad, 4)) == ["stream[4].tumor_case.features['mean_radius']"]


def test_unknown_fields_are_refused_where_they_occur(codec: TumorCodec, features: dict[str, float]) -> None:
    valid = tumor_pb2.ClassifyRequest(tumor_case=case(features))
    top = tumor_pb2.ClassifyRequest.FromString(with_foreign_field(valid))
    violations = violations_of(codec.decode_classify, top)
    assert list(violations) == ["request"] and "unknown field number 15" in violations["request"]

    nested = tumor_pb2.TumorCase.FromString(with_foreign_field(case(features)))
    violations = violations_of(codec.decode_classify, tumor_pb2.ClassifyRequest(tumor_case=nested))
    assert list(violations) == ["tumor_case"] and "unknown field number 15" in violations["tumor_case"]

    batch = tumor_pb2.ClassifyBatchRequest(cases=[case(features), nested])
    assert list(violations_of(codec.decode_batch, batch)) == ["cases[1]"]

    item = tumor_pb2.ClassifyStreamRequest(tumor_case=case(features))
    stream = tumor_pb2.ClassifyStreamRequest.FromString(with_foreign_field(item))
    assert list(violations_of(codec.decode_stream_item, stream, 2)) == ["stream[2]"]


# Encoding


IDENTITY = ModelIdentity(name="wdbc-xgboost", version="1.0.0", sha256="ab" * 32)


def classification() -> TumorClassification:
    return TumorClassification(
        label="malignant",
        probabilities={"benign": 0.125, "malignant": 0.875},
        confidence=ConformalSet(
            labels=("malignant",),
            coverage=0.95,
            method="split-conformal (LAC score 1 - p, top class always included)",
            statement="with 95% coverage the true class is in {malignant}",
        ),
        explanation=Explanation(
            explained_class="malignant",
            output_space="log-odds",
            base_value=-0.5,
            margin=1.25,
            contributions=(
                Contribution("worst_area", 1000.0, 1.5),
                Contribution("mean_texture", 12.5, -0.25),
                Contribution("mean_radius", 14.0, 0.5),
            ),
            top_reasons=(
                Reason("worst_area", 1000.0, "pixels^2", "raises", 1.5, "worst area 1000 pixels^2 raises malignant"),
                Reason("mean_texture", 12.5, "gray levels", "lowers", -0.25, "mean texture 12.5 lowers malignant"),
            ),
            method="exact TreeSHAP",
        ),
        out_of_range=(RangeFlag("worst_area", 1000.0, 185.2, 900.0),),
        model=IDENTITY,
    )


def test_a_classification_keeps_every_field(codec: TumorCodec) -> None:
    response = codec.encode_classify([ClassifiedCase("case-9", classification())])
    answer = response.classification
    assert answer.case_id == "case-9"
    assert answer.label == "malignant"
    assert [(p.class_name, p.probability) for p in answer.probabilities] == [("benign", 0.125), ("malignant", 0.875)]
    assert answer.positive_probability == 0.875
    assert list(answer.confidence.prediction_set) == ["malignant"]
    assert answer.confidence.coverage == 0.95
    assert answer.confidence.verified_coverage == VERIFIED
    assert answer.confidence.method.startswith("split-conformal")
    assert answer.confidence.statement == "with 95% coverage the true class is in {malignant}"
    explanation = answer.explanation
    assert (explanation.explained_class, explanation.output_space, explanation.method) == (
        "malignant",
        "log-odds",
        "exact TreeSHAP",
    )
    assert (explanation.base_value, explanation.margin) == (-0.5, 1.25)
    assert [(c.feature, c.value, c.shap_value) for c in explanation.contributions] == [
        ("worst_area", 1000.0, 1.5),
        ("mean_texture", 12.5, -0.25),
        ("mean_radius", 14.0, 0.5),
    ]
    reasons = [(r.feature, r.value, r.unit, r.direction, r.shap_value, r.text) for r in explanation.top_reasons]
    assert reasons == [
        ("worst_area", 1000.0, "pixels^2", common_pb2.DIRECTION_RAISES, 1.5, "worst area 1000 pixels^2 raises malignant"),
        ("mean_texture", 12.5, "gray levels", common_pb2.DIRECTION_LOWERS, -0.25, "mean texture 12.5 lowers malignant"),
    ]
    assert [(f.feature, f.value, f.training_min, f.training_max) for f in answer.out_of_range] == [
        ("worst_area", 1000.0, 185.2, 900.0)
    ]
    assert (answer.model.name, answer.model.version, answer.model.sha256) == (IDENTITY.name, IDENTITY.version, IDENTITY.sha256)


def test_a_batch_and_a_stream_message_encode_the_same_classification(codec: TumorCodec) -> None:
    one = codec.encode_classify([ClassifiedCase("x", classification())]).classification
    batch = codec.encode_batch([ClassifiedCase("a", classification()), ClassifiedCase("b", classification())])
    assert [c.case_id for c in batch.classifications] == ["a", "b"]
    first = tumor_pb2.Classification()
    first.CopyFrom(batch.classifications[0])
    first.case_id = "x"
    assert first == one
    streamed = codec.encode_stream_item([ClassifiedCase("x", classification())]).classification
    assert streamed == one


def test_a_single_answer_holds_exactly_one_case(codec: TumorCodec) -> None:
    with pytest.raises(ValueError):
        codec.encode_classify([])


def test_model_info_names_the_model_its_schema_and_limits(codec: TumorCodec, schema: ModelSchema) -> None:
    info = TumorModelInfo(
        identity=IDENTITY,
        schema=schema,
        metrics={"auroc": 0.995, "accuracy": 0.975, "details": {"n": 10}, "note": "text", "flag": True},
        conformal_coverage=0.95,
        verified_coverage=VERIFIED,
        class_coverage={"benign": 0.989, "malignant": 0.958},
        transparency_json='{"format": "clinpred-hti1-source-attributes/1"}',
    )
    response = codec.encode_model_info(info)
    assert (response.model.name, response.model.sha256) == (IDENTITY.name, IDENTITY.sha256)
    assert [f.name for f in response.features] == list(schema.feature_names)
    radius = next(f for f in response.features if f.name == "mean_radius")
    spec = next(f for f in schema.features if f.name == "mean_radius")
    assert radius.unit == "pixels" and radius.HasField("valid_min") and radius.valid_min == 0.0
    assert not radius.HasField("valid_max")  # unbounded above: absent, not 0
    assert (radius.training_min, radius.training_max) == (spec.training_min, spec.training_max)
    assert radius.HasField("training_median") and radius.training_median == spec.training_median
    assert [decode_feature_spec(f) for f in response.features] == list(schema.features)
    assert list(response.classes) == ["benign", "malignant"] and response.positive_class == "malignant"
    # Numbers only, nested sections flattened; text and booleans are not metrics.
    assert dict(response.metrics) == {"auroc": 0.995, "accuracy": 0.975, "details.n": 10.0}
    assert response.conformal_coverage == 0.95
    assert dict(response.conformal_class_coverage) == {"benign": 0.989, "malignant": 0.958}
    assert response.transparency_json == info.transparency_json
    # No prior shift stated (a multi-class model, or a test's bare info): both prevalences 0.
    assert response.training_prevalence == response.clinical_prevalence == 0.0
    assert response.max_batch_size == MAX_BATCH
    assert codec.decode_model_info(tumor_pb2.GetModelInfoRequest()) is None


def test_the_codec_for_a_model_takes_its_schema_and_verified_coverage(schema: ModelSchema) -> None:
    info = TumorModelInfo(IDENTITY, schema, {}, 0.95, 0.97)
    codec = TumorCodec.for_model(info, 5, 7)
    assert (codec.schema, codec.max_batch_size, codec.verified_coverage) == (schema, 5, 0.97)
    assert codec.max_encrypted_ciphertexts == 7


# Encrypted classification: sizes are the codec's, what the bytes are is the pilot's (tests/integration/tumor).


def encrypted(context: bytes = b"ctx", ciphertexts: list[bytes] | None = None) -> tumor_pb2.ClassifyEncryptedRequest:
    return tumor_pb2.ClassifyEncryptedRequest(public_context=context, ciphertexts=[b"ct"] if ciphertexts is None else ciphertexts)


def test_an_encrypted_request_within_the_limits_decodes_to_its_bytes(codec: TumorCodec) -> None:
    request = codec.decode_classify_encrypted(encrypted(b"ctx", [b"a", b"b", b"c"]))
    assert (request.public_context, request.ciphertexts) == (b"ctx", (b"a", b"b", b"c"))


def test_an_encrypted_request_out_of_bounds_names_each_field(codec: TumorCodec) -> None:
    violations = violations_of(codec.decode_classify_encrypted, encrypted(b"", []))
    assert "is required" in violations["public_context"] and "at least one" in violations["ciphertexts"]
    keyed = b"k" * (MAX_PUBLIC_CONTEXT_BYTES + 1)
    assert "without secret, public" in violations_of(codec.decode_classify_encrypted, encrypted(keyed))["public_context"]
    many = violations_of(codec.decode_classify_encrypted, encrypted(ciphertexts=[b"x"] * (MAX_CIPHERTEXTS + 1)))
    assert f"at most {MAX_CIPHERTEXTS} per call" in many["ciphertexts"]
    sizes = violations_of(codec.decode_classify_encrypted, encrypted(ciphertexts=[b"x", b"", b"y" * (MAX_CIPHERTEXT_BYTES + 1)]))
    too_large = f"{MAX_CIPHERTEXT_BYTES + 1} bytes; at most {MAX_CIPHERTEXT_BYTES}"
    assert sizes == {"ciphertexts[1]": "is empty", "ciphertexts[2]": too_large}
    foreign = tumor_pb2.ClassifyEncryptedRequest.FromString(with_foreign_field(encrypted()))
    assert list(violations_of(codec.decode_classify_encrypted, foreign)) == ["request"]
    layout_request = tumor_pb2.GetEncryptionLayoutRequest.FromString(FOREIGN_FIELD)
    assert list(violations_of(codec.decode_encryption_layout, layout_request)) == ["request"]
