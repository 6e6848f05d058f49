from clinpred.services.api.common.v1 import prediction_pb2 as _prediction_pb2
from clinpred.services.api.common.v1 import sealed_pb2 as _sealed_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RiskBand(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RISK_BAND_UNSPECIFIED: _ClassVar[RiskBand]
    RISK_BAND_LOW: _ClassVar[RiskBand]
    RISK_BAND_MEDIUM: _ClassVar[RiskBand]
    RISK_BAND_HIGH: _ClassVar[RiskBand]
RISK_BAND_UNSPECIFIED: RiskBand
RISK_BAND_LOW: RiskBand
RISK_BAND_MEDIUM: RiskBand
RISK_BAND_HIGH: RiskBand

class Patient(_message.Message):
    __slots__ = ("patient_id", "birth_date", "sex", "diagnosis_group", "treatment_intensity", "central_line", "ward", "team", "chemotherapy_at")
    PATIENT_ID_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    DIAGNOSIS_GROUP_FIELD_NUMBER: _ClassVar[int]
    TREATMENT_INTENSITY_FIELD_NUMBER: _ClassVar[int]
    CENTRAL_LINE_FIELD_NUMBER: _ClassVar[int]
    WARD_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    CHEMOTHERAPY_AT_FIELD_NUMBER: _ClassVar[int]
    patient_id: str
    birth_date: str
    sex: str
    diagnosis_group: str
    treatment_intensity: str
    central_line: bool
    ward: str
    team: str
    chemotherapy_at: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    def __init__(self, patient_id: _Optional[str] = ..., birth_date: _Optional[str] = ..., sex: _Optional[str] = ..., diagnosis_group: _Optional[str] = ..., treatment_intensity: _Optional[str] = ..., central_line: bool = ..., ward: _Optional[str] = ..., team: _Optional[str] = ..., chemotherapy_at: _Optional[_Iterable[_Union[_timestamp_pb2.Timestamp, _Mapping]]] = ...) -> None: ...

class Observation(_message.Message):
    __slots__ = ("observation_id", "observed_at", "heart_rate", "respiratory_rate", "temperature_c", "spo2", "systolic_bp", "capillary_refill_s", "respiratory_effort", "oxygen_flow_l_min", "avpu", "weight_kg", "neutrophils_g_l", "crp_mg_l", "haemoglobin_g_l", "platelets_g_l")
    OBSERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    HEART_RATE_FIELD_NUMBER: _ClassVar[int]
    RESPIRATORY_RATE_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_C_FIELD_NUMBER: _ClassVar[int]
    SPO2_FIELD_NUMBER: _ClassVar[int]
    SYSTOLIC_BP_FIELD_NUMBER: _ClassVar[int]
    CAPILLARY_REFILL_S_FIELD_NUMBER: _ClassVar[int]
    RESPIRATORY_EFFORT_FIELD_NUMBER: _ClassVar[int]
    OXYGEN_FLOW_L_MIN_FIELD_NUMBER: _ClassVar[int]
    AVPU_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_KG_FIELD_NUMBER: _ClassVar[int]
    NEUTROPHILS_G_L_FIELD_NUMBER: _ClassVar[int]
    CRP_MG_L_FIELD_NUMBER: _ClassVar[int]
    HAEMOGLOBIN_G_L_FIELD_NUMBER: _ClassVar[int]
    PLATELETS_G_L_FIELD_NUMBER: _ClassVar[int]
    observation_id: str
    observed_at: _timestamp_pb2.Timestamp
    heart_rate: float
    respiratory_rate: float
    temperature_c: float
    spo2: float
    systolic_bp: float
    capillary_refill_s: float
    respiratory_effort: float
    oxygen_flow_l_min: float
    avpu: str
    weight_kg: float
    neutrophils_g_l: float
    crp_mg_l: float
    haemoglobin_g_l: float
    platelets_g_l: float
    def __init__(self, observation_id: _Optional[str] = ..., observed_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., heart_rate: _Optional[float] = ..., respiratory_rate: _Optional[float] = ..., temperature_c: _Optional[float] = ..., spo2: _Optional[float] = ..., systolic_bp: _Optional[float] = ..., capillary_refill_s: _Optional[float] = ..., respiratory_effort: _Optional[float] = ..., oxygen_flow_l_min: _Optional[float] = ..., avpu: _Optional[str] = ..., weight_kg: _Optional[float] = ..., neutrophils_g_l: _Optional[float] = ..., crp_mg_l: _Optional[float] = ..., haemoglobin_g_l: _Optional[float] = ..., platelets_g_l: _Optional[float] = ...) -> None: ...

class PewsItem(_message.Message):
    __slots__ = ("item", "points", "value")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    item: str
    points: int
    value: float
    def __init__(self, item: _Optional[str] = ..., points: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class Pews(_message.Message):
    __slots__ = ("total", "items")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    total: int
    items: _containers.RepeatedCompositeFieldContainer[PewsItem]
    def __init__(self, total: _Optional[int] = ..., items: _Optional[_Iterable[_Union[PewsItem, _Mapping]]] = ...) -> None: ...

class DataQualityFlag(_message.Message):
    __slots__ = ("code", "signal", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    signal: str
    message: str
    def __init__(self, code: _Optional[str] = ..., signal: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class RiskScore(_message.Message):
    __slots__ = ("patient_id", "version", "scored_at", "probability", "horizon_hours", "band", "pews", "confidence", "explanation", "quality_flags", "model")
    PATIENT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SCORED_AT_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    HORIZON_HOURS_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    PEWS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FLAGS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    patient_id: str
    version: int
    scored_at: _timestamp_pb2.Timestamp
    probability: float
    horizon_hours: int
    band: RiskBand
    pews: Pews
    confidence: _prediction_pb2.Confidence
    explanation: _prediction_pb2.Explanation
    quality_flags: _containers.RepeatedCompositeFieldContainer[DataQualityFlag]
    model: _prediction_pb2.ModelIdentity
    def __init__(self, patient_id: _Optional[str] = ..., version: _Optional[int] = ..., scored_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., probability: _Optional[float] = ..., horizon_hours: _Optional[int] = ..., band: _Optional[_Union[RiskBand, str]] = ..., pews: _Optional[_Union[Pews, _Mapping]] = ..., confidence: _Optional[_Union[_prediction_pb2.Confidence, _Mapping]] = ..., explanation: _Optional[_Union[_prediction_pb2.Explanation, _Mapping]] = ..., quality_flags: _Optional[_Iterable[_Union[DataQualityFlag, _Mapping]]] = ..., model: _Optional[_Union[_prediction_pb2.ModelIdentity, _Mapping]] = ...) -> None: ...

class RegisterPatientRequest(_message.Message):
    __slots__ = ("patient",)
    PATIENT_FIELD_NUMBER: _ClassVar[int]
    patient: Patient
    def __init__(self, patient: _Optional[_Union[Patient, _Mapping]] = ...) -> None: ...

class RegisterPatientResponse(_message.Message):
    __slots__ = ("patient",)
    PATIENT_FIELD_NUMBER: _ClassVar[int]
    patient: Patient
    def __init__(self, patient: _Optional[_Union[Patient, _Mapping]] = ...) -> None: ...

class RecordObservationsRequest(_message.Message):
    __slots__ = ("patient_id", "observations")
    PATIENT_ID_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    patient_id: str
    observations: _containers.RepeatedCompositeFieldContainer[Observation]
    def __init__(self, patient_id: _Optional[str] = ..., observations: _Optional[_Iterable[_Union[Observation, _Mapping]]] = ...) -> None: ...

class RecordObservationsResponse(_message.Message):
    __slots__ = ("stored", "duplicates", "score")
    STORED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    stored: int
    duplicates: int
    score: RiskScore
    def __init__(self, stored: _Optional[int] = ..., duplicates: _Optional[int] = ..., score: _Optional[_Union[RiskScore, _Mapping]] = ...) -> None: ...

class GetLatestRiskRequest(_message.Message):
    __slots__ = ("patient_id", "known_version")
    PATIENT_ID_FIELD_NUMBER: _ClassVar[int]
    KNOWN_VERSION_FIELD_NUMBER: _ClassVar[int]
    patient_id: str
    known_version: int
    def __init__(self, patient_id: _Optional[str] = ..., known_version: _Optional[int] = ...) -> None: ...

class Unchanged(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class GetLatestRiskResponse(_message.Message):
    __slots__ = ("score", "unchanged")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    score: RiskScore
    unchanged: Unchanged
    def __init__(self, score: _Optional[_Union[RiskScore, _Mapping]] = ..., unchanged: _Optional[_Union[Unchanged, _Mapping]] = ...) -> None: ...

class ListRiskHistoryRequest(_message.Message):
    __slots__ = ("patient_id", "page_size", "page_token")
    PATIENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    patient_id: str
    page_size: int
    page_token: str
    def __init__(self, patient_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRiskHistoryResponse(_message.Message):
    __slots__ = ("scores", "next_page_token")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    scores: _containers.RepeatedCompositeFieldContainer[RiskScore]
    next_page_token: str
    def __init__(self, scores: _Optional[_Iterable[_Union[RiskScore, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchRiskRequest(_message.Message):
    __slots__ = ("ward", "team", "alert_band", "resume_token")
    WARD_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    ALERT_BAND_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ward: str
    team: str
    alert_band: RiskBand
    resume_token: str
    def __init__(self, ward: _Optional[str] = ..., team: _Optional[str] = ..., alert_band: _Optional[_Union[RiskBand, str]] = ..., resume_token: _Optional[str] = ...) -> None: ...

class WatchRiskResponse(_message.Message):
    __slots__ = ("score", "alert", "previous_band", "resume_token")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_BAND_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    score: RiskScore
    alert: bool
    previous_band: RiskBand
    resume_token: str
    def __init__(self, score: _Optional[_Union[RiskScore, _Mapping]] = ..., alert: bool = ..., previous_band: _Optional[_Union[RiskBand, str]] = ..., resume_token: _Optional[str] = ...) -> None: ...

class ScoreObservationsRequest(_message.Message):
    __slots__ = ("patient", "observations", "at")
    PATIENT_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    patient: Patient
    observations: _containers.RepeatedCompositeFieldContainer[Observation]
    at: _timestamp_pb2.Timestamp
    def __init__(self, patient: _Optional[_Union[Patient, _Mapping]] = ..., observations: _Optional[_Iterable[_Union[Observation, _Mapping]]] = ..., at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ScoreObservationsResponse(_message.Message):
    __slots__ = ("score",)
    SCORE_FIELD_NUMBER: _ClassVar[int]
    score: RiskScore
    def __init__(self, score: _Optional[_Union[RiskScore, _Mapping]] = ...) -> None: ...

class ExportFhirRequest(_message.Message):
    __slots__ = ("patient_id",)
    PATIENT_ID_FIELD_NUMBER: _ClassVar[int]
    patient_id: str
    def __init__(self, patient_id: _Optional[str] = ...) -> None: ...

class ExportFhirResponse(_message.Message):
    __slots__ = ("risk_assessment_json", "pews_observation_json", "bundle_json")
    RISK_ASSESSMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    PEWS_OBSERVATION_JSON_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_JSON_FIELD_NUMBER: _ClassVar[int]
    risk_assessment_json: str
    pews_observation_json: str
    bundle_json: str
    def __init__(self, risk_assessment_json: _Optional[str] = ..., pews_observation_json: _Optional[str] = ..., bundle_json: _Optional[str] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("model", "horizon_hours", "features", "metrics", "signals", "max_batch_size", "comparators", "auroc_gain_over_best_baseline", "best_baseline", "transparency_json", "alert_budget_per_100_children_per_day")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class AlertBudgetPer100ChildrenPerDayEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    HORIZON_HOURS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    COMPARATORS_FIELD_NUMBER: _ClassVar[int]
    AUROC_GAIN_OVER_BEST_BASELINE_FIELD_NUMBER: _ClassVar[int]
    BEST_BASELINE_FIELD_NUMBER: _ClassVar[int]
    TRANSPARENCY_JSON_FIELD_NUMBER: _ClassVar[int]
    ALERT_BUDGET_PER_100_CHILDREN_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    model: _prediction_pb2.ModelIdentity
    horizon_hours: int
    features: _containers.RepeatedCompositeFieldContainer[_prediction_pb2.FeatureSpec]
    metrics: _containers.ScalarMap[str, float]
    signals: _containers.RepeatedCompositeFieldContainer[_prediction_pb2.FeatureSpec]
    max_batch_size: int
    comparators: _containers.RepeatedCompositeFieldContainer[Comparator]
    auroc_gain_over_best_baseline: Estimate
    best_baseline: str
    transparency_json: str
    alert_budget_per_100_children_per_day: _containers.ScalarMap[str, float]
    def __init__(self, model: _Optional[_Union[_prediction_pb2.ModelIdentity, _Mapping]] = ..., horizon_hours: _Optional[int] = ..., features: _Optional[_Iterable[_Union[_prediction_pb2.FeatureSpec, _Mapping]]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., signals: _Optional[_Iterable[_Union[_prediction_pb2.FeatureSpec, _Mapping]]] = ..., max_batch_size: _Optional[int] = ..., comparators: _Optional[_Iterable[_Union[Comparator, _Mapping]]] = ..., auroc_gain_over_best_baseline: _Optional[_Union[Estimate, _Mapping]] = ..., best_baseline: _Optional[str] = ..., transparency_json: _Optional[str] = ..., alert_budget_per_100_children_per_day: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Estimate(_message.Message):
    __slots__ = ("value", "ci_lower", "ci_upper")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CI_LOWER_FIELD_NUMBER: _ClassVar[int]
    CI_UPPER_FIELD_NUMBER: _ClassVar[int]
    value: float
    ci_lower: float
    ci_upper: float
    def __init__(self, value: _Optional[float] = ..., ci_lower: _Optional[float] = ..., ci_upper: _Optional[float] = ...) -> None: ...

class Comparator(_message.Message):
    __slots__ = ("name", "description", "auroc", "auprc")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AUROC_FIELD_NUMBER: _ClassVar[int]
    AUPRC_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    auroc: Estimate
    auprc: Estimate
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., auroc: _Optional[_Union[Estimate, _Mapping]] = ..., auprc: _Optional[_Union[Estimate, _Mapping]] = ...) -> None: ...

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
