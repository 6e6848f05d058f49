from clinpred.services.api.common.v1 import prediction_pb2 as _prediction_pb2
from clinpred.services.api.common.v1 import sealed_pb2 as _sealed_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenomeBuild(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GENOME_BUILD_UNSPECIFIED: _ClassVar[GenomeBuild]
    GENOME_BUILD_GRCH37: _ClassVar[GenomeBuild]
    GENOME_BUILD_GRCH38: _ClassVar[GenomeBuild]

class Sex(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEX_UNSPECIFIED: _ClassVar[Sex]
    SEX_FEMALE: _ClassVar[Sex]
    SEX_MALE: _ClassVar[Sex]
GENOME_BUILD_UNSPECIFIED: GenomeBuild
GENOME_BUILD_GRCH37: GenomeBuild
GENOME_BUILD_GRCH38: GenomeBuild
SEX_UNSPECIFIED: Sex
SEX_FEMALE: Sex
SEX_MALE: Sex

class Patient(_message.Message):
    __slots__ = ("sample_id", "age", "sex", "family_history", "affected_first_degree_relatives")
    class FamilyHistoryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: bool = ...) -> None: ...
    class AffectedFirstDegreeRelativesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    AGE_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    FAMILY_HISTORY_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_FIRST_DEGREE_RELATIVES_FIELD_NUMBER: _ClassVar[int]
    sample_id: str
    age: float
    sex: Sex
    family_history: _containers.ScalarMap[str, bool]
    affected_first_degree_relatives: _containers.ScalarMap[str, int]
    def __init__(self, sample_id: _Optional[str] = ..., age: _Optional[float] = ..., sex: _Optional[_Union[Sex, str]] = ..., family_history: _Optional[_Mapping[str, bool]] = ..., affected_first_degree_relatives: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Assessment(_message.Message):
    __slots__ = ("build", "patients", "cancers", "top_variants")
    BUILD_FIELD_NUMBER: _ClassVar[int]
    PATIENTS_FIELD_NUMBER: _ClassVar[int]
    CANCERS_FIELD_NUMBER: _ClassVar[int]
    TOP_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    build: GenomeBuild
    patients: _containers.RepeatedCompositeFieldContainer[Patient]
    cancers: _containers.RepeatedScalarFieldContainer[str]
    top_variants: int
    def __init__(self, build: _Optional[_Union[GenomeBuild, str]] = ..., patients: _Optional[_Iterable[_Union[Patient, _Mapping]]] = ..., cancers: _Optional[_Iterable[str]] = ..., top_variants: _Optional[int] = ...) -> None: ...

class ScoreSource(_message.Message):
    __slots__ = ("pgs_id", "pgs_name", "scoring_file", "build")
    PGS_ID_FIELD_NUMBER: _ClassVar[int]
    PGS_NAME_FIELD_NUMBER: _ClassVar[int]
    SCORING_FILE_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    pgs_id: str
    pgs_name: str
    scoring_file: str
    build: GenomeBuild
    def __init__(self, pgs_id: _Optional[str] = ..., pgs_name: _Optional[str] = ..., scoring_file: _Optional[str] = ..., build: _Optional[_Union[GenomeBuild, str]] = ...) -> None: ...

class VariantCounts(_message.Message):
    __slots__ = ("total", "matched", "missing", "imputed", "unmatched", "match_types")
    class UnmatchedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class MatchTypesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    IMPUTED_FIELD_NUMBER: _ClassVar[int]
    UNMATCHED_FIELD_NUMBER: _ClassVar[int]
    MATCH_TYPES_FIELD_NUMBER: _ClassVar[int]
    total: int
    matched: int
    missing: int
    imputed: int
    unmatched: _containers.ScalarMap[str, int]
    match_types: _containers.ScalarMap[str, int]
    def __init__(self, total: _Optional[int] = ..., matched: _Optional[int] = ..., missing: _Optional[int] = ..., imputed: _Optional[int] = ..., unmatched: _Optional[_Mapping[str, int]] = ..., match_types: _Optional[_Mapping[str, int]] = ...) -> None: ...

class VariantContribution(_message.Message):
    __slots__ = ("variant_id", "effect_allele", "effect_weight", "dosage", "imputed", "contribution")
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    EFFECT_ALLELE_FIELD_NUMBER: _ClassVar[int]
    EFFECT_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    DOSAGE_FIELD_NUMBER: _ClassVar[int]
    IMPUTED_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    variant_id: str
    effect_allele: str
    effect_weight: float
    dosage: float
    imputed: bool
    contribution: float
    def __init__(self, variant_id: _Optional[str] = ..., effect_allele: _Optional[str] = ..., effect_weight: _Optional[float] = ..., dosage: _Optional[float] = ..., imputed: bool = ..., contribution: _Optional[float] = ...) -> None: ...

class CancerRisk(_message.Message):
    __slots__ = ("cancer", "score", "horizon_years", "score_sum", "z_score", "percentile", "absolute_risk", "risk_interval", "population_average_risk", "relative_risk", "top_variants", "explanation", "variants", "out_of_range", "model", "affected_first_degree_relatives", "odds_ratio_per_sd", "unmeasured_variance_fraction", "score_effect_note")
    CANCER_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    HORIZON_YEARS_FIELD_NUMBER: _ClassVar[int]
    SCORE_SUM_FIELD_NUMBER: _ClassVar[int]
    Z_SCORE_FIELD_NUMBER: _ClassVar[int]
    PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    ABSOLUTE_RISK_FIELD_NUMBER: _ClassVar[int]
    RISK_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    POPULATION_AVERAGE_RISK_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_RISK_FIELD_NUMBER: _ClassVar[int]
    TOP_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_RANGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_FIRST_DEGREE_RELATIVES_FIELD_NUMBER: _ClassVar[int]
    ODDS_RATIO_PER_SD_FIELD_NUMBER: _ClassVar[int]
    UNMEASURED_VARIANCE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SCORE_EFFECT_NOTE_FIELD_NUMBER: _ClassVar[int]
    cancer: str
    score: ScoreSource
    horizon_years: float
    score_sum: float
    z_score: float
    percentile: float
    absolute_risk: float
    risk_interval: _prediction_pb2.Confidence
    population_average_risk: float
    relative_risk: float
    top_variants: _containers.RepeatedCompositeFieldContainer[VariantContribution]
    explanation: _prediction_pb2.Explanation
    variants: VariantCounts
    out_of_range: _containers.RepeatedCompositeFieldContainer[_prediction_pb2.RangeFlag]
    model: _prediction_pb2.ModelIdentity
    affected_first_degree_relatives: int
    odds_ratio_per_sd: float
    unmeasured_variance_fraction: float
    score_effect_note: str
    def __init__(self, cancer: _Optional[str] = ..., score: _Optional[_Union[ScoreSource, _Mapping]] = ..., horizon_years: _Optional[float] = ..., score_sum: _Optional[float] = ..., z_score: _Optional[float] = ..., percentile: _Optional[float] = ..., absolute_risk: _Optional[float] = ..., risk_interval: _Optional[_Union[_prediction_pb2.Confidence, _Mapping]] = ..., population_average_risk: _Optional[float] = ..., relative_risk: _Optional[float] = ..., top_variants: _Optional[_Iterable[_Union[VariantContribution, _Mapping]]] = ..., explanation: _Optional[_Union[_prediction_pb2.Explanation, _Mapping]] = ..., variants: _Optional[_Union[VariantCounts, _Mapping]] = ..., out_of_range: _Optional[_Iterable[_Union[_prediction_pb2.RangeFlag, _Mapping]]] = ..., model: _Optional[_Union[_prediction_pb2.ModelIdentity, _Mapping]] = ..., affected_first_degree_relatives: _Optional[int] = ..., odds_ratio_per_sd: _Optional[float] = ..., unmeasured_variance_fraction: _Optional[float] = ..., score_effect_note: _Optional[str] = ...) -> None: ...

class SampleAssessment(_message.Message):
    __slots__ = ("sample_id", "risks")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    RISKS_FIELD_NUMBER: _ClassVar[int]
    sample_id: str
    risks: _containers.RepeatedCompositeFieldContainer[CancerRisk]
    def __init__(self, sample_id: _Optional[str] = ..., risks: _Optional[_Iterable[_Union[CancerRisk, _Mapping]]] = ...) -> None: ...

class VcfAssessment(_message.Message):
    __slots__ = ("samples", "build", "build_evidence", "vcf_samples")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    BUILD_EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    VCF_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    samples: _containers.RepeatedCompositeFieldContainer[SampleAssessment]
    build: GenomeBuild
    build_evidence: str
    vcf_samples: int
    def __init__(self, samples: _Optional[_Iterable[_Union[SampleAssessment, _Mapping]]] = ..., build: _Optional[_Union[GenomeBuild, str]] = ..., build_evidence: _Optional[str] = ..., vcf_samples: _Optional[int] = ...) -> None: ...

class AssessVcfRequest(_message.Message):
    __slots__ = ("assessment", "vcf")
    ASSESSMENT_FIELD_NUMBER: _ClassVar[int]
    VCF_FIELD_NUMBER: _ClassVar[int]
    assessment: Assessment
    vcf: bytes
    def __init__(self, assessment: _Optional[_Union[Assessment, _Mapping]] = ..., vcf: _Optional[bytes] = ...) -> None: ...

class AssessVcfResponse(_message.Message):
    __slots__ = ("assessment",)
    ASSESSMENT_FIELD_NUMBER: _ClassVar[int]
    assessment: VcfAssessment
    def __init__(self, assessment: _Optional[_Union[VcfAssessment, _Mapping]] = ...) -> None: ...

class UploadHeader(_message.Message):
    __slots__ = ("assessment", "content_length", "content_sha256")
    ASSESSMENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    assessment: Assessment
    content_length: int
    content_sha256: str
    def __init__(self, assessment: _Optional[_Union[Assessment, _Mapping]] = ..., content_length: _Optional[int] = ..., content_sha256: _Optional[str] = ...) -> None: ...

class AssessVcfUploadRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class AssessVcfUploadResponse(_message.Message):
    __slots__ = ("assessment",)
    ASSESSMENT_FIELD_NUMBER: _ClassVar[int]
    assessment: VcfAssessment
    def __init__(self, assessment: _Optional[_Union[VcfAssessment, _Mapping]] = ...) -> None: ...

class ScoreInfo(_message.Message):
    __slots__ = ("cancer", "score", "trait_reported", "variants", "builds", "horizon_years", "model", "problem")
    CANCER_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TRAIT_REPORTED_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    BUILDS_FIELD_NUMBER: _ClassVar[int]
    HORIZON_YEARS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    cancer: str
    score: ScoreSource
    trait_reported: str
    variants: int
    builds: _containers.RepeatedScalarFieldContainer[GenomeBuild]
    horizon_years: float
    model: _prediction_pb2.ModelIdentity
    problem: str
    def __init__(self, cancer: _Optional[str] = ..., score: _Optional[_Union[ScoreSource, _Mapping]] = ..., trait_reported: _Optional[str] = ..., variants: _Optional[int] = ..., builds: _Optional[_Iterable[_Union[GenomeBuild, str]]] = ..., horizon_years: _Optional[float] = ..., model: _Optional[_Union[_prediction_pb2.ModelIdentity, _Mapping]] = ..., problem: _Optional[str] = ...) -> None: ...

class ListScoresRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListScoresResponse(_message.Message):
    __slots__ = ("scores", "max_upload_bytes")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    MAX_UPLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    scores: _containers.RepeatedCompositeFieldContainer[ScoreInfo]
    max_upload_bytes: int
    def __init__(self, scores: _Optional[_Iterable[_Union[ScoreInfo, _Mapping]]] = ..., max_upload_bytes: _Optional[int] = ...) -> None: ...

class GetScoreLayoutRequest(_message.Message):
    __slots__ = ("score",)
    SCORE_FIELD_NUMBER: _ClassVar[int]
    score: str
    def __init__(self, score: _Optional[str] = ...) -> None: ...

class ReferenceDistribution(_message.Message):
    __slots__ = ("mean", "sd", "quantiles", "sample_size")
    MEAN_FIELD_NUMBER: _ClassVar[int]
    SD_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    mean: float
    sd: float
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    sample_size: int
    def __init__(self, mean: _Optional[float] = ..., sd: _Optional[float] = ..., quantiles: _Optional[_Iterable[float]] = ..., sample_size: _Optional[int] = ...) -> None: ...

class GetScoreLayoutResponse(_message.Message):
    __slots__ = ("pgs_id", "cancer", "build", "variant_ids", "effect_alleles", "weights", "reference", "poly_modulus_degrees", "min_scale_bits", "model", "private_weights")
    PGS_ID_FIELD_NUMBER: _ClassVar[int]
    CANCER_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    VARIANT_IDS_FIELD_NUMBER: _ClassVar[int]
    EFFECT_ALLELES_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    POLY_MODULUS_DEGREES_FIELD_NUMBER: _ClassVar[int]
    MIN_SCALE_BITS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    pgs_id: str
    cancer: str
    build: GenomeBuild
    variant_ids: _containers.RepeatedScalarFieldContainer[str]
    effect_alleles: _containers.RepeatedScalarFieldContainer[str]
    weights: _containers.RepeatedScalarFieldContainer[float]
    reference: ReferenceDistribution
    poly_modulus_degrees: _containers.RepeatedScalarFieldContainer[int]
    min_scale_bits: int
    model: _prediction_pb2.ModelIdentity
    private_weights: bool
    def __init__(self, pgs_id: _Optional[str] = ..., cancer: _Optional[str] = ..., build: _Optional[_Union[GenomeBuild, str]] = ..., variant_ids: _Optional[_Iterable[str]] = ..., effect_alleles: _Optional[_Iterable[str]] = ..., weights: _Optional[_Iterable[float]] = ..., reference: _Optional[_Union[ReferenceDistribution, _Mapping]] = ..., poly_modulus_degrees: _Optional[_Iterable[int]] = ..., min_scale_bits: _Optional[int] = ..., model: _Optional[_Union[_prediction_pb2.ModelIdentity, _Mapping]] = ..., private_weights: bool = ...) -> None: ...

class EncryptedScoreHeader(_message.Message):
    __slots__ = ("score", "public_context_length", "ciphertext_lengths", "public_context_sha256")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_LENGTHS_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_CONTEXT_SHA256_FIELD_NUMBER: _ClassVar[int]
    score: str
    public_context_length: int
    ciphertext_lengths: _containers.RepeatedScalarFieldContainer[int]
    public_context_sha256: str
    def __init__(self, score: _Optional[str] = ..., public_context_length: _Optional[int] = ..., ciphertext_lengths: _Optional[_Iterable[int]] = ..., public_context_sha256: _Optional[str] = ...) -> None: ...

class CiphertextChunk(_message.Message):
    __slots__ = ("index", "data")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    index: int
    data: bytes
    def __init__(self, index: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class ScoreEncryptedRequest(_message.Message):
    __slots__ = ("header", "public_context_chunk", "ciphertext_chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_CONTEXT_CHUNK_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: EncryptedScoreHeader
    public_context_chunk: bytes
    ciphertext_chunk: CiphertextChunk
    def __init__(self, header: _Optional[_Union[EncryptedScoreHeader, _Mapping]] = ..., public_context_chunk: _Optional[bytes] = ..., ciphertext_chunk: _Optional[_Union[CiphertextChunk, _Mapping]] = ...) -> None: ...

class EncryptedScoreSummary(_message.Message):
    __slots__ = ("pgs_id", "variants", "score_length", "contribution_lengths", "model")
    PGS_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    SCORE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_LENGTHS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    pgs_id: str
    variants: int
    score_length: int
    contribution_lengths: _containers.RepeatedScalarFieldContainer[int]
    model: _prediction_pb2.ModelIdentity
    def __init__(self, pgs_id: _Optional[str] = ..., variants: _Optional[int] = ..., score_length: _Optional[int] = ..., contribution_lengths: _Optional[_Iterable[int]] = ..., model: _Optional[_Union[_prediction_pb2.ModelIdentity, _Mapping]] = ...) -> None: ...

class ScoreEncryptedResponse(_message.Message):
    __slots__ = ("summary", "score_chunk", "contribution_chunk")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SCORE_CHUNK_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_CHUNK_FIELD_NUMBER: _ClassVar[int]
    summary: EncryptedScoreSummary
    score_chunk: CiphertextChunk
    contribution_chunk: CiphertextChunk
    def __init__(self, summary: _Optional[_Union[EncryptedScoreSummary, _Mapping]] = ..., score_chunk: _Optional[_Union[CiphertextChunk, _Mapping]] = ..., contribution_chunk: _Optional[_Union[CiphertextChunk, _Mapping]] = ...) -> None: ...

class EvaluationKeysHeader(_message.Message):
    __slots__ = ("public_context_length", "public_context_sha256")
    PUBLIC_CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_CONTEXT_SHA256_FIELD_NUMBER: _ClassVar[int]
    public_context_length: int
    public_context_sha256: str
    def __init__(self, public_context_length: _Optional[int] = ..., public_context_sha256: _Optional[str] = ...) -> None: ...

class RegisterEvaluationKeysRequest(_message.Message):
    __slots__ = ("header", "public_context_chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_CONTEXT_CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: EvaluationKeysHeader
    public_context_chunk: bytes
    def __init__(self, header: _Optional[_Union[EvaluationKeysHeader, _Mapping]] = ..., public_context_chunk: _Optional[bytes] = ...) -> None: ...

class RegisterEvaluationKeysResponse(_message.Message):
    __slots__ = ("public_context_sha256", "public_context_length", "expires_after_idle_seconds")
    PUBLIC_CONTEXT_SHA256_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AFTER_IDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    public_context_sha256: str
    public_context_length: int
    expires_after_idle_seconds: float
    def __init__(self, public_context_sha256: _Optional[str] = ..., public_context_length: _Optional[int] = ..., expires_after_idle_seconds: _Optional[float] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("cancer", "model", "features", "pgs_id", "horizon_years", "metrics", "interval_level", "risk_parameters_json", "package_manifest", "min_age", "max_age", "sexes", "transparency")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class TransparencyEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CANCER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    PGS_ID_FIELD_NUMBER: _ClassVar[int]
    HORIZON_YEARS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_LEVEL_FIELD_NUMBER: _ClassVar[int]
    RISK_PARAMETERS_JSON_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_MANIFEST_FIELD_NUMBER: _ClassVar[int]
    MIN_AGE_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_FIELD_NUMBER: _ClassVar[int]
    SEXES_FIELD_NUMBER: _ClassVar[int]
    TRANSPARENCY_FIELD_NUMBER: _ClassVar[int]
    cancer: str
    model: _prediction_pb2.ModelIdentity
    features: _containers.RepeatedCompositeFieldContainer[_prediction_pb2.FeatureSpec]
    pgs_id: str
    horizon_years: float
    metrics: _containers.ScalarMap[str, float]
    interval_level: float
    risk_parameters_json: str
    package_manifest: str
    min_age: float
    max_age: float
    sexes: _containers.RepeatedScalarFieldContainer[Sex]
    transparency: _containers.ScalarMap[str, str]
    def __init__(self, cancer: _Optional[str] = ..., model: _Optional[_Union[_prediction_pb2.ModelIdentity, _Mapping]] = ..., features: _Optional[_Iterable[_Union[_prediction_pb2.FeatureSpec, _Mapping]]] = ..., pgs_id: _Optional[str] = ..., horizon_years: _Optional[float] = ..., metrics: _Optional[_Mapping[str, float]] = ..., interval_level: _Optional[float] = ..., risk_parameters_json: _Optional[str] = ..., package_manifest: _Optional[str] = ..., min_age: _Optional[float] = ..., max_age: _Optional[float] = ..., sexes: _Optional[_Iterable[_Union[Sex, str]]] = ..., transparency: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("models", "max_upload_bytes")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    MAX_UPLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    max_upload_bytes: int
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., max_upload_bytes: _Optional[int] = ...) -> None: ...

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
