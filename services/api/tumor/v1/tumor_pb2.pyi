from clinpred.services.api.common.v1 import prediction_pb2 as _prediction_pb2
from clinpred.services.api.common.v1 import sealed_pb2 as _sealed_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExplanationDetail(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPLANATION_DETAIL_UNSPECIFIED: _ClassVar[ExplanationDetail]
    EXPLANATION_DETAIL_FULL: _ClassVar[ExplanationDetail]
    EXPLANATION_DETAIL_TOP_REASONS: _ClassVar[ExplanationDetail]
    EXPLANATION_DETAIL_NONE: _ClassVar[ExplanationDetail]
EXPLANATION_DETAIL_UNSPECIFIED: ExplanationDetail
EXPLANATION_DETAIL_FULL: ExplanationDetail
EXPLANATION_DETAIL_TOP_REASONS: ExplanationDetail
EXPLANATION_DETAIL_NONE: ExplanationDetail

class TumorCase(_message.Message):
    __slots__ = ("case_id", "features")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    features: _containers.ScalarMap[str, float]
    def __init__(self, case_id: _Optional[str] = ..., features: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Classification(_message.Message):
    __slots__ = ("case_id", "label", "probabilities", "positive_probability", "confidence", "explanation", "out_of_range", "model")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_RANGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    label: str
    probabilities: _containers.RepeatedCompositeFieldContainer[_prediction_pb2.ClassProbability]
    positive_probability: float
    confidence: _prediction_pb2.Confidence
    explanation: _prediction_pb2.Explanation
    out_of_range: _containers.RepeatedCompositeFieldContainer[_prediction_pb2.RangeFlag]
    model: _prediction_pb2.ModelIdentity
    def __init__(self, case_id: _Optional[str] = ..., label: _Optional[str] = ..., probabilities: _Optional[_Iterable[_Union[_prediction_pb2.ClassProbability, _Mapping]]] = ..., positive_probability: _Optional[float] = ..., confidence: _Optional[_Union[_prediction_pb2.Confidence, _Mapping]] = ..., explanation: _Optional[_Union[_prediction_pb2.Explanation, _Mapping]] = ..., out_of_range: _Optional[_Iterable[_Union[_prediction_pb2.RangeFlag, _Mapping]]] = ..., model: _Optional[_Union[_prediction_pb2.ModelIdentity, _Mapping]] = ...) -> None: ...

class ClassifyRequest(_message.Message):
    __slots__ = ("tumor_case", "detail")
    TUMOR_CASE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    tumor_case: TumorCase
    detail: ExplanationDetail
    def __init__(self, tumor_case: _Optional[_Union[TumorCase, _Mapping]] = ..., detail: _Optional[_Union[ExplanationDetail, str]] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("classification",)
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    classification: Classification
    def __init__(self, classification: _Optional[_Union[Classification, _Mapping]] = ...) -> None: ...

class ClassifyBatchRequest(_message.Message):
    __slots__ = ("cases", "detail")
    CASES_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[TumorCase]
    detail: ExplanationDetail
    def __init__(self, cases: _Optional[_Iterable[_Union[TumorCase, _Mapping]]] = ..., detail: _Optional[_Union[ExplanationDetail, str]] = ...) -> None: ...

class ClassifyBatchResponse(_message.Message):
    __slots__ = ("classifications",)
    CLASSIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    classifications: _containers.RepeatedCompositeFieldContainer[Classification]
    def __init__(self, classifications: _Optional[_Iterable[_Union[Classification, _Mapping]]] = ...) -> None: ...

class ClassifyStreamRequest(_message.Message):
    __slots__ = ("tumor_case", "detail")
    TUMOR_CASE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    tumor_case: TumorCase
    detail: ExplanationDetail
    def __init__(self, tumor_case: _Optional[_Union[TumorCase, _Mapping]] = ..., detail: _Optional[_Union[ExplanationDetail, str]] = ...) -> None: ...

class ClassifyStreamResponse(_message.Message):
    __slots__ = ("classification",)
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    classification: Classification
    def __init__(self, classification: _Optional[_Union[Classification, _Mapping]] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("model", "features", "classes", "positive_class", "metrics", "conformal_coverage", "max_batch_size", "conformal_class_coverage", "training_prevalence", "clinical_prevalence", "transparency_json")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ConformalClassCoverageEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_CLASS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    CONFORMAL_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONFORMAL_CLASS_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    TRAINING_PREVALENCE_FIELD_NUMBER: _ClassVar[int]
    CLINICAL_PREVALENCE_FIELD_NUMBER: _ClassVar[int]
    TRANSPARENCY_JSON_FIELD_NUMBER: _ClassVar[int]
    model: _prediction_pb2.ModelIdentity
    features: _containers.RepeatedCompositeFieldContainer[_prediction_pb2.FeatureSpec]
    classes: _containers.RepeatedScalarFieldContainer[str]
    positive_class: str
    metrics: _containers.ScalarMap[str, float]
    conformal_coverage: float
    max_batch_size: int
    conformal_class_coverage: _containers.ScalarMap[str, float]
    training_prevalence: float
    clinical_prevalence: float
    transparency_json: str
    def __init__(self, model: _Optional[_Union[_prediction_pb2.ModelIdentity, _Mapping]] = ..., features: _Optional[_Iterable[_Union[_prediction_pb2.FeatureSpec, _Mapping]]] = ..., classes: _Optional[_Iterable[str]] = ..., positive_class: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., conformal_coverage: _Optional[float] = ..., max_batch_size: _Optional[int] = ..., conformal_class_coverage: _Optional[_Mapping[str, float]] = ..., training_prevalence: _Optional[float] = ..., clinical_prevalence: _Optional[float] = ..., transparency_json: _Optional[str] = ...) -> None: ...

class GetEncryptionLayoutRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PlattCalibration(_message.Message):
    __slots__ = ("slope", "intercept")
    SLOPE_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_FIELD_NUMBER: _ClassVar[int]
    slope: float
    intercept: float
    def __init__(self, slope: _Optional[float] = ..., intercept: _Optional[float] = ...) -> None: ...

class ConformalThreshold(_message.Message):
    __slots__ = ("q_hat", "coverage", "verified_coverage", "calibration_cases", "method", "class_q_hat")
    Q_HAT_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_CASES_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CLASS_Q_HAT_FIELD_NUMBER: _ClassVar[int]
    q_hat: float
    coverage: float
    verified_coverage: float
    calibration_cases: int
    method: str
    class_q_hat: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, q_hat: _Optional[float] = ..., coverage: _Optional[float] = ..., verified_coverage: _Optional[float] = ..., calibration_cases: _Optional[int] = ..., method: _Optional[str] = ..., class_q_hat: _Optional[_Iterable[float]] = ...) -> None: ...

class GetEncryptionLayoutResponse(_message.Message):
    __slots__ = ("format", "model", "feature_names", "split_features", "thresholds", "weights", "base_value", "shap_offsets", "explained_class", "output_space", "explanation_method", "classes", "calibration", "conformal", "poly_modulus_degrees", "min_scale_bits", "max_scale_bits", "max_ciphertexts", "max_ciphertext_bytes", "training_prevalence", "clinical_prevalence", "feature_means", "feature_scales")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FEATURES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    BASE_VALUE_FIELD_NUMBER: _ClassVar[int]
    SHAP_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    EXPLAINED_CLASS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SPACE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_METHOD_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_FIELD_NUMBER: _ClassVar[int]
    CONFORMAL_FIELD_NUMBER: _ClassVar[int]
    POLY_MODULUS_DEGREES_FIELD_NUMBER: _ClassVar[int]
    MIN_SCALE_BITS_FIELD_NUMBER: _ClassVar[int]
    MAX_SCALE_BITS_FIELD_NUMBER: _ClassVar[int]
    MAX_CIPHERTEXTS_FIELD_NUMBER: _ClassVar[int]
    MAX_CIPHERTEXT_BYTES_FIELD_NUMBER: _ClassVar[int]
    TRAINING_PREVALENCE_FIELD_NUMBER: _ClassVar[int]
    CLINICAL_PREVALENCE_FIELD_NUMBER: _ClassVar[int]
    FEATURE_MEANS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SCALES_FIELD_NUMBER: _ClassVar[int]
    format: str
    model: _prediction_pb2.ModelIdentity
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    split_features: _containers.RepeatedScalarFieldContainer[int]
    thresholds: _containers.RepeatedScalarFieldContainer[float]
    weights: _containers.RepeatedScalarFieldContainer[float]
    base_value: float
    shap_offsets: _containers.RepeatedScalarFieldContainer[float]
    explained_class: str
    output_space: str
    explanation_method: str
    classes: _containers.RepeatedScalarFieldContainer[str]
    calibration: PlattCalibration
    conformal: ConformalThreshold
    poly_modulus_degrees: _containers.RepeatedScalarFieldContainer[int]
    min_scale_bits: int
    max_scale_bits: int
    max_ciphertexts: int
    max_ciphertext_bytes: int
    training_prevalence: float
    clinical_prevalence: float
    feature_means: _containers.RepeatedScalarFieldContainer[float]
    feature_scales: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, format: _Optional[str] = ..., model: _Optional[_Union[_prediction_pb2.ModelIdentity, _Mapping]] = ..., feature_names: _Optional[_Iterable[str]] = ..., split_features: _Optional[_Iterable[int]] = ..., thresholds: _Optional[_Iterable[float]] = ..., weights: _Optional[_Iterable[float]] = ..., base_value: _Optional[float] = ..., shap_offsets: _Optional[_Iterable[float]] = ..., explained_class: _Optional[str] = ..., output_space: _Optional[str] = ..., explanation_method: _Optional[str] = ..., classes: _Optional[_Iterable[str]] = ..., calibration: _Optional[_Union[PlattCalibration, _Mapping]] = ..., conformal: _Optional[_Union[ConformalThreshold, _Mapping]] = ..., poly_modulus_degrees: _Optional[_Iterable[int]] = ..., min_scale_bits: _Optional[int] = ..., max_scale_bits: _Optional[int] = ..., max_ciphertexts: _Optional[int] = ..., max_ciphertext_bytes: _Optional[int] = ..., training_prevalence: _Optional[float] = ..., clinical_prevalence: _Optional[float] = ..., feature_means: _Optional[_Iterable[float]] = ..., feature_scales: _Optional[_Iterable[float]] = ...) -> None: ...

class ClassifyEncryptedRequest(_message.Message):
    __slots__ = ("public_context", "ciphertexts")
    PUBLIC_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXTS_FIELD_NUMBER: _ClassVar[int]
    public_context: bytes
    ciphertexts: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, public_context: _Optional[bytes] = ..., ciphertexts: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ClassifyEncryptedResponse(_message.Message):
    __slots__ = ("products", "model")
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedScalarFieldContainer[bytes]
    model: _prediction_pb2.ModelIdentity
    def __init__(self, products: _Optional[_Iterable[bytes]] = ..., model: _Optional[_Union[_prediction_pb2.ModelIdentity, _Mapping]] = ...) -> None: ...

class SealedRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: bytes
    def __init__(self, envelope: _Optional[bytes] = ...) -> None: ...

class SealedResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: bytes
    def __init__(self, envelope: _Optional[bytes] = ...) -> None: ...

class GetKeyConfigurationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetKeyConfigurationsResponse(_message.Message):
    __slots__ = ("keys", "current_key_id")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[_sealed_pb2.KeyConfiguration]
    current_key_id: str
    def __init__(self, keys: _Optional[_Iterable[_Union[_sealed_pb2.KeyConfiguration, _Mapping]]] = ..., current_key_id: _Optional[str] = ...) -> None: ...
