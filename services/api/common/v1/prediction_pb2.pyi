from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_RAISES: _ClassVar[Direction]
    DIRECTION_LOWERS: _ClassVar[Direction]

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_INPUT: _ClassVar[ErrorReason]
    ERROR_REASON_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_FAILED_PRECONDITION: _ClassVar[ErrorReason]
    ERROR_REASON_MODEL_UNAVAILABLE: _ClassVar[ErrorReason]
    ERROR_REASON_RESOURCE_EXHAUSTED: _ClassVar[ErrorReason]
    ERROR_REASON_INTERNAL: _ClassVar[ErrorReason]
    ERROR_REASON_UNAUTHENTICATED: _ClassVar[ErrorReason]
    ERROR_REASON_PERMISSION_DENIED: _ClassVar[ErrorReason]
    ERROR_REASON_DEADLINE_EXCEEDED: _ClassVar[ErrorReason]
    ERROR_REASON_EVALUATION_KEYS_NOT_REGISTERED: _ClassVar[ErrorReason]
DIRECTION_UNSPECIFIED: Direction
DIRECTION_RAISES: Direction
DIRECTION_LOWERS: Direction
ERROR_REASON_UNSPECIFIED: ErrorReason
ERROR_REASON_INVALID_INPUT: ErrorReason
ERROR_REASON_NOT_FOUND: ErrorReason
ERROR_REASON_FAILED_PRECONDITION: ErrorReason
ERROR_REASON_MODEL_UNAVAILABLE: ErrorReason
ERROR_REASON_RESOURCE_EXHAUSTED: ErrorReason
ERROR_REASON_INTERNAL: ErrorReason
ERROR_REASON_UNAUTHENTICATED: ErrorReason
ERROR_REASON_PERMISSION_DENIED: ErrorReason
ERROR_REASON_DEADLINE_EXCEEDED: ErrorReason
ERROR_REASON_EVALUATION_KEYS_NOT_REGISTERED: ErrorReason

class ModelIdentity(_message.Message):
    __slots__ = ("name", "version", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    sha256: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class FeatureContribution(_message.Message):
    __slots__ = ("feature", "value", "shap_value")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SHAP_VALUE_FIELD_NUMBER: _ClassVar[int]
    feature: str
    value: float
    shap_value: float
    def __init__(self, feature: _Optional[str] = ..., value: _Optional[float] = ..., shap_value: _Optional[float] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("feature", "value", "unit", "direction", "shap_value", "text")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    SHAP_VALUE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    feature: str
    value: float
    unit: str
    direction: Direction
    shap_value: float
    text: str
    def __init__(self, feature: _Optional[str] = ..., value: _Optional[float] = ..., unit: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., shap_value: _Optional[float] = ..., text: _Optional[str] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("explained_class", "output_space", "base_value", "margin", "contributions", "top_reasons", "method", "shap_values")
    EXPLAINED_CLASS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SPACE_FIELD_NUMBER: _ClassVar[int]
    BASE_VALUE_FIELD_NUMBER: _ClassVar[int]
    MARGIN_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    TOP_REASONS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SHAP_VALUES_FIELD_NUMBER: _ClassVar[int]
    explained_class: str
    output_space: str
    base_value: float
    margin: float
    contributions: _containers.RepeatedCompositeFieldContainer[FeatureContribution]
    top_reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    method: str
    shap_values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, explained_class: _Optional[str] = ..., output_space: _Optional[str] = ..., base_value: _Optional[float] = ..., margin: _Optional[float] = ..., contributions: _Optional[_Iterable[_Union[FeatureContribution, _Mapping]]] = ..., top_reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., method: _Optional[str] = ..., shap_values: _Optional[_Iterable[float]] = ...) -> None: ...

class Confidence(_message.Message):
    __slots__ = ("prediction_set", "coverage", "method", "statement", "lower", "upper", "verified_coverage")
    PREDICTION_SET_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    prediction_set: _containers.RepeatedScalarFieldContainer[str]
    coverage: float
    method: str
    statement: str
    lower: float
    upper: float
    verified_coverage: float
    def __init__(self, prediction_set: _Optional[_Iterable[str]] = ..., coverage: _Optional[float] = ..., method: _Optional[str] = ..., statement: _Optional[str] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ..., verified_coverage: _Optional[float] = ...) -> None: ...

class RangeFlag(_message.Message):
    __slots__ = ("feature", "value", "training_min", "training_max")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TRAINING_MIN_FIELD_NUMBER: _ClassVar[int]
    TRAINING_MAX_FIELD_NUMBER: _ClassVar[int]
    feature: str
    value: float
    training_min: float
    training_max: float
    def __init__(self, feature: _Optional[str] = ..., value: _Optional[float] = ..., training_min: _Optional[float] = ..., training_max: _Optional[float] = ...) -> None: ...

class FeatureSpec(_message.Message):
    __slots__ = ("name", "unit", "description", "valid_min", "valid_max", "training_min", "training_max", "training_median")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VALID_MIN_FIELD_NUMBER: _ClassVar[int]
    VALID_MAX_FIELD_NUMBER: _ClassVar[int]
    TRAINING_MIN_FIELD_NUMBER: _ClassVar[int]
    TRAINING_MAX_FIELD_NUMBER: _ClassVar[int]
    TRAINING_MEDIAN_FIELD_NUMBER: _ClassVar[int]
    name: str
    unit: str
    description: str
    valid_min: float
    valid_max: float
    training_min: float
    training_max: float
    training_median: float
    def __init__(self, name: _Optional[str] = ..., unit: _Optional[str] = ..., description: _Optional[str] = ..., valid_min: _Optional[float] = ..., valid_max: _Optional[float] = ..., training_min: _Optional[float] = ..., training_max: _Optional[float] = ..., training_median: _Optional[float] = ...) -> None: ...

class ClassProbability(_message.Message):
    __slots__ = ("class_name", "probability")
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    class_name: str
    probability: float
    def __init__(self, class_name: _Optional[str] = ..., probability: _Optional[float] = ...) -> None: ...
