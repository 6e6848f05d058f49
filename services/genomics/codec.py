"""clinpred.genomics.v1 messages <-> genomics domain objects. Every input check of the service is here.

Messages name fields, limits and line numbers, never sample ids, genotypes or file names.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NoReturn

from clinpred.pilots.common.errors import FieldViolation, InvalidInput, ResourceExhausted, ViolationCollector
from clinpred.pilots.common.explanation import LOG_ODDS, TREESHAP_METHOD, Contribution, Reason, top_reasons
from clinpred.pilots.common.explanation import Explanation as DomainExplanation
from clinpred.pilots.common.schema import FeatureSpec, RangeFlag
from clinpred.pilots.genomics.encrypted import (
    MIN_SCALE_BITS,
    SUPPORTED_POLY_MODULUS_DEGREES,
    EncryptedScore,
    EncryptedScoreLayout,
)
from clinpred.pilots.genomics.risk import SEXES, CancerRisk, GenomicRiskPredictor
from clinpred.pilots.genomics.scoring import VariantContribution
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.genomics.training import FEATURES
from clinpred.services.api.common.v1 import prediction_pb2 as common_pb2
from clinpred.services.api.genomics.v1 import genomics_pb2
from clinpred.services.common import codec as common

BUILD_NAMES = {genomics_pb2.GENOME_BUILD_GRCH37: "GRCh37", genomics_pb2.GENOME_BUILD_GRCH38: "GRCh38"}
BUILD_ENUMS: dict[str, genomics_pb2.GenomeBuild] = {name: number for number, name in BUILD_NAMES.items()}
SEX_NAMES = {genomics_pb2.SEX_FEMALE: "female", genomics_pb2.SEX_MALE: "male"}
DEFAULT_TOP_VARIANTS = 10
MIN_AGE, MAX_AGE = 18.0, 100.0
INTERVAL_METHOD = "delta method on the Platt calibration parameters"
assert set(SEX_NAMES.values()) == set(SEXES)


@dataclass(frozen=True)
class PatientFactors:
    sample_id: str  # "" applies to every sample no other patient names
    age: float
    sex: str
    family_history: dict[str, bool]

    def has_family_history(self, cancer: str) -> bool:
        return self.family_history.get(cancer, False)


@dataclass(frozen=True)
class AssessmentSpec:
    build: str
    patients: tuple[PatientFactors, ...]
    cancers: tuple[str, ...]  # in configured order
    top_variants: int


@dataclass(frozen=True)
class SampleSelection:
    """The VCF columns to assess, in VCF order, with each one's factors."""

    columns: tuple[int, ...]
    factors: tuple[PatientFactors, ...]


@dataclass(frozen=True)
class EncryptedRequest:
    score: str
    public_context: bytes
    ciphertexts: tuple[bytes, ...]


@dataclass(frozen=True)
class VcfResult:
    samples: tuple[tuple[str, PatientFactors, tuple[CancerRisk, ...]], ...]  # assessed samples in VCF order
    build: str
    build_evidence: str
    vcf_samples: int
    scores: dict[str, ScoringFile]  # by cancer: the scoring file used


@dataclass(frozen=True)
class ScoreStatus:
    cancer: str
    predictor: GenomicRiskPredictor
    scoring_file: ScoringFile | None  # in the first usable build; None if unusable
    builds: tuple[str, ...]
    problem: str


@dataclass
class _Upload:
    expected: int
    sha256: str
    received: int = 0
    chunks: list[bytes] = field(default_factory=list)


class GenomicsCodec:
    def __init__(
        self,
        cancers: Sequence[str],
        score_keys: Sequence[str],
        max_patients: int,
        max_upload_bytes: int,
        max_top_variants: int,
        max_context_bytes: int,
        max_ciphertext_bytes: int,
    ) -> None:
        self.cancers = tuple(cancers)
        self.score_keys = frozenset(score_keys)  # cancers and pgs ids
        self.max_patients = max_patients
        self.max_upload_bytes = max_upload_bytes
        self.max_top_variants = max_top_variants
        self.max_context_bytes = max_context_bytes
        self.max_ciphertext_bytes = max_ciphertext_bytes

    # --- assessments --------------------------------------------------------------------------------

    def _decode_patient(self, patient: genomics_pb2.Patient, path: str, violations: ViolationCollector) -> PatientFactors:
        if not math.isfinite(patient.age):
            violations.add(f"{path}.age", "must be a finite number of years")
        elif not MIN_AGE <= patient.age <= MAX_AGE:
            violations.add(f"{path}.age", f"must be between {MIN_AGE:g} and {MAX_AGE:g} years")
        if patient.sex not in SEX_NAMES:
            violations.add(f"{path}.sex", "is required: SEX_FEMALE or SEX_MALE")
        for cancer in sorted(set(patient.family_history) - set(self.cancers)):
            violations.add(f"{path}.family_history[{cancer[:40]!r}]", f"unknown cancer; configured: {', '.join(self.cancers)}")
        return PatientFactors(patient.sample_id, patient.age, SEX_NAMES.get(patient.sex, ""), dict(patient.family_history))

    def _decode_assessment(self, message: genomics_pb2.Assessment, path: str, violations: ViolationCollector) -> AssessmentSpec:
        if message.build not in BUILD_NAMES:
            violations.add(f"{path}.build", "is required: GENOME_BUILD_GRCH37 or GENOME_BUILD_GRCH38, the VCF's build")
        common.check_batch_size(len(message.patients), self.max_patients, f"{path}.patients", violations)
        patients = [self._decode_patient(p, f"{path}.patients[{i}]", violations) for i, p in enumerate(message.patients)]
        seen: set[str] = set()
        for index, patient in enumerate(patients):
            if patient.sample_id in seen:
                what = "more than one patient applies to every sample" if not patient.sample_id else "names a sample twice"
                violations.add(f"{path}.patients[{index}].sample_id", what)
            seen.add(patient.sample_id)
        unknown = [c for c in message.cancers if c not in self.cancers]
        for cancer in unknown:
            violations.add(f"{path}.cancers", f"unknown cancer {cancer[:40]!r}; configured: {', '.join(self.cancers)}")
        if len(set(message.cancers)) != len(message.cancers):
            violations.add(f"{path}.cancers", "lists a cancer twice")
        if message.top_variants > self.max_top_variants:
            violations.add(f"{path}.top_variants", f"at most {self.max_top_variants}")
        cancers = tuple(c for c in self.cancers if not message.cancers or c in message.cancers)
        return AssessmentSpec(
            build=BUILD_NAMES.get(message.build, ""),
            patients=tuple(patients),
            cancers=cancers,
            top_variants=message.top_variants or DEFAULT_TOP_VARIANTS,
        )

    def decode_assess(self, request: genomics_pb2.AssessVcfRequest) -> tuple[AssessmentSpec, bytes]:
        violations = ViolationCollector()
        common.check_unknown_fields(request, "", violations)
        if not request.HasField("assessment"):
            violations.add("assessment", "is required")
        if not request.vcf:
            violations.add("vcf", "is required: the VCF file's bytes, plain or bgzipped")
        elif len(request.vcf) > self.max_upload_bytes:
            violations.add("vcf", f"holds {len(request.vcf)} bytes; at most {self.max_upload_bytes} are accepted")
        violations.raise_if_any()
        spec = self._decode_assessment(request.assessment, "assessment", violations)
        violations.raise_if_any()
        return spec, request.vcf

    def select_samples(self, spec: AssessmentSpec, vcf_samples: Sequence[str], path: str = "assessment") -> SampleSelection:
        """Which columns to assess with whose factors; a named sample must be in the VCF."""
        violations = ViolationCollector()
        column_of = {name: index for index, name in enumerate(vcf_samples)}
        default: PatientFactors | None = None
        chosen: dict[int, PatientFactors] = {}
        for index, patient in enumerate(spec.patients):
            if not patient.sample_id:
                default = patient
            elif patient.sample_id in column_of:
                chosen[column_of[patient.sample_id]] = patient
            else:
                violations.add(f"{path}.patients[{index}].sample_id", "is not a sample of the VCF")
        if default is not None:
            for column in range(len(vcf_samples)):
                chosen.setdefault(column, default)
        if len(chosen) > self.max_patients:
            violations.add(
                f"{path}.patients",
                f"applies to {len(chosen)} samples of the VCF; at most {self.max_patients} are assessed per call:"
                " name the samples to assess",
            )
        violations.raise_if_any()
        columns = tuple(sorted(chosen))
        return SampleSelection(columns, tuple(chosen[c] for c in columns))

    # --- uploads ------------------------------------------------------------------------------------

    def decode_upload_header(self, request: genomics_pb2.AssessVcfUploadRequest) -> tuple[AssessmentSpec, _Upload]:
        violations = ViolationCollector()
        common.check_unknown_fields(request, "stream[0]", violations)
        if request.WhichOneof("part") != "header":
            violations.add("stream[0].header", "the first message must be the header (assessment and content_length)")
            violations.raise_if_any()
        header = request.header
        if not header.HasField("assessment"):
            violations.add("stream[0].header.assessment", "is required")
        if header.content_length == 0:
            violations.add("stream[0].header.content_length", "is required: the number of bytes the upload will send")
        elif header.content_length > self.max_upload_bytes:
            raise _too_large("stream[0].header.content_length", header.content_length, self.max_upload_bytes)
        sha = header.content_sha256.lower()
        if sha and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
            violations.add("stream[0].header.content_sha256", "must be 64 hexadecimal digits")
        violations.raise_if_any()
        spec = self._decode_assessment(header.assessment, "stream[0].header.assessment", violations)
        violations.raise_if_any()
        return spec, _Upload(expected=header.content_length, sha256=sha)

    def decode_upload_chunk(self, request: genomics_pb2.AssessVcfUploadRequest, index: int, upload: _Upload) -> None:
        violations = ViolationCollector()
        path = f"stream[{index}]"
        common.check_unknown_fields(request, path, violations)
        if request.WhichOneof("part") != "chunk":
            violations.add(path, "after the header only chunks of the VCF may follow")
        violations.raise_if_any()
        upload.received += len(request.chunk)
        if upload.received > self.max_upload_bytes:
            raise _too_large(f"{path}.chunk", upload.received, self.max_upload_bytes)
        if upload.received > upload.expected:
            _refuse(f"{path}.chunk", f"the upload exceeds its content_length of {upload.expected} bytes")
        upload.chunks.append(request.chunk)

    def finish_upload(self, upload: _Upload | None, messages: int) -> list[bytes]:
        if upload is None:
            _refuse("stream", "is empty: send the header, then the VCF in chunks")
        if upload.received < upload.expected:
            _refuse(
                f"stream[{messages}]",
                f"the upload ended after {upload.received} of its {upload.expected} bytes: truncated; send it again",
            )
        if upload.sha256:
            digest = hashlib.sha256()
            for chunk in upload.chunks:
                digest.update(chunk)
            if digest.hexdigest() != upload.sha256:
                _refuse("stream[0].header.content_sha256", "does not match the bytes received")
        return upload.chunks

    # --- encrypted scoring --------------------------------------------------------------------------

    def decode_layout_request(self, request: genomics_pb2.GetScoreLayoutRequest) -> str:
        violations = ViolationCollector()
        common.check_unknown_fields(request, "", violations)
        self._check_score_key(request.score, "score", violations)
        violations.raise_if_any()
        return request.score

    def _check_score_key(self, key: str, path: str, violations: ViolationCollector) -> None:
        if not key:
            violations.add(path, f"is required: a PGS id or cancer ({', '.join(sorted(self.score_keys))})")
        elif key not in self.score_keys:
            violations.add(path, f"unknown score; configured: {', '.join(sorted(self.score_keys))}")

    # --- answers ------------------------------------------------------------------------------------

    def encode_assessment(self, result: VcfResult, predictors: Mapping[str, GenomicRiskPredictor]) -> genomics_pb2.VcfAssessment:
        return genomics_pb2.VcfAssessment(
            samples=[
                genomics_pb2.SampleAssessment(
                    sample_id=sample_id,
                    risks=[
                        self.encode_risk(r, factors, predictors[r.cancer], result.build, result.scores[r.cancer]) for r in risks
                    ],
                )
                for sample_id, factors, risks in result.samples
            ],
            build=BUILD_ENUMS.get(result.build, genomics_pb2.GENOME_BUILD_UNSPECIFIED),
            build_evidence=result.build_evidence,
            vcf_samples=result.vcf_samples,
        )

    def encode_risk(
        self,
        risk: CancerRisk,
        factors: PatientFactors,
        predictor: GenomicRiskPredictor,
        build: str,
        scoring_file: ScoringFile,
    ) -> genomics_pb2.CancerRisk:
        low, high = risk.risk_interval
        level = risk.interval_level
        specs = {spec.name: spec for spec in predictor.schema.features}
        values = dict(zip(FEATURES, _model_inputs(risk, factors), strict=True))
        overlap = risk.overlap
        return genomics_pb2.CancerRisk(
            cancer=risk.cancer,
            score=genomics_pb2.ScoreSource(
                pgs_id=risk.pgs_id, pgs_name=scoring_file.header.pgs_name or "", scoring_file=scoring_file.name,
                build=BUILD_ENUMS.get(build, genomics_pb2.GENOME_BUILD_UNSPECIFIED),
            ),
            horizon_years=risk.horizon_years,
            score_sum=risk.score_sum,
            z_score=risk.z_score,
            percentile=risk.percentile,
            absolute_risk=risk.absolute_risk,
            risk_interval=common_pb2.Confidence(
                coverage=level, method=INTERVAL_METHOD, lower=low, upper=high,
                statement=f"{level:.0%} confidence interval of the {risk.horizon_years:g}-year risk:"
                f" {low:.2%} to {high:.2%}",
            ),
            population_average_risk=risk.population_average_risk,
            relative_risk=risk.relative_risk,
            top_variants=[encode_variant(v) for v in risk.top_variants],
            explanation=common.encode_explanation(_explanation(risk, values, specs)),
            variants=genomics_pb2.VariantCounts(
                total=risk.variants_total, matched=risk.variants_matched, missing=risk.variants_missing,
                imputed=risk.variants_imputed,
                unmatched=dict(overlap.unmatched) if overlap else {},
                match_types=dict(overlap.match_types) if overlap else {},
            ),
            out_of_range=common.encode_range_flags(
                RangeFlag(name, values[name], specs[name].training_min, specs[name].training_max)
                for name in risk.outside_training_range
            ),
            model=common.encode_identity(risk.model),
        )

    def encode_scores(self, statuses: Sequence[ScoreStatus]) -> genomics_pb2.ListScoresResponse:
        scores = []
        for status in statuses:
            predictor, scoring_file = status.predictor, status.scoring_file
            header = scoring_file.header if scoring_file is not None else None
            scores.append(
                genomics_pb2.ScoreInfo(
                    cancer=status.cancer,
                    score=genomics_pb2.ScoreSource(
                        pgs_id=predictor.pgs_id,
                        pgs_name=(header.pgs_name if header else None) or str(predictor.package.metadata.get("pgs_name") or ""),
                        scoring_file=scoring_file.name if scoring_file is not None else "",
                        build=(
                            BUILD_ENUMS.get(scoring_file.build or "", genomics_pb2.GENOME_BUILD_UNSPECIFIED)
                            if scoring_file is not None
                            else genomics_pb2.GENOME_BUILD_UNSPECIFIED
                        ),
                    ),
                    trait_reported=(header.trait_reported if header else None) or "",
                    variants=len(scoring_file) if scoring_file is not None else len(predictor.layout),
                    builds=[BUILD_ENUMS[b] for b in status.builds if b in BUILD_ENUMS],
                    horizon_years=predictor.horizon_years,
                    model=common.encode_identity(predictor.identity),
                    problem=status.problem,
                )
            )
        return genomics_pb2.ListScoresResponse(scores=scores, max_upload_bytes=self.max_upload_bytes)

    def encode_model_info(self, predictors: Mapping[str, GenomicRiskPredictor]) -> genomics_pb2.GetModelInfoResponse:
        models = []
        for cancer, predictor in predictors.items():
            metrics = predictor.package.read_json("metrics.json")
            models.append(
                genomics_pb2.ModelInfo(
                    cancer=cancer,
                    model=common.encode_identity(predictor.identity),
                    features=[common.encode_feature_spec(spec) for spec in predictor.schema.features],
                    pgs_id=predictor.pgs_id,
                    horizon_years=predictor.horizon_years,
                    metrics={
                        k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                    },
                    interval_level=predictor.interval_level,
                )
            )
        return genomics_pb2.GetModelInfoResponse(models=models, max_upload_bytes=self.max_upload_bytes)

    def encode_layout(
        self, predictor: GenomicRiskPredictor, layout: EncryptedScoreLayout, build: str | None
    ) -> genomics_pb2.GetScoreLayoutResponse:
        reference = predictor.reference
        return genomics_pb2.GetScoreLayoutResponse(
            pgs_id=layout.pgs_id,
            cancer=predictor.cancer,
            build=BUILD_ENUMS.get(build or "", genomics_pb2.GENOME_BUILD_UNSPECIFIED),
            variant_ids=list(layout.variant_ids),
            effect_alleles=list(layout.effect_alleles),
            weights=list(layout.weights),
            reference=genomics_pb2.ReferenceDistribution(
                mean=reference.mean, sd=reference.sd, quantiles=list(reference.quantiles),
                sample_size=reference.sample_size,
            ),
            poly_modulus_degrees=list(SUPPORTED_POLY_MODULUS_DEGREES),
            min_scale_bits=MIN_SCALE_BITS,
            model=common.encode_identity(predictor.identity),
        )

    def encode_encrypted(
        self, result: EncryptedScore, layout: EncryptedScoreLayout, predictor: GenomicRiskPredictor, chunk_bytes: int
    ) -> list[genomics_pb2.ScoreEncryptedResponse]:
        Chunk = genomics_pb2.CiphertextChunk  # noqa: N806
        answers = [
            genomics_pb2.ScoreEncryptedResponse(
                summary=genomics_pb2.EncryptedScoreSummary(
                    pgs_id=result.pgs_id, variants=len(layout), score_length=len(result.score),
                    contribution_lengths=[len(c) for c in result.contributions],
                    model=common.encode_identity(predictor.identity),
                )
            )
        ]
        answers += [
            genomics_pb2.ScoreEncryptedResponse(score_chunk=Chunk(index=0, data=piece))
            for piece in _pieces(result.score, chunk_bytes)
        ]
        answers += [
            genomics_pb2.ScoreEncryptedResponse(contribution_chunk=Chunk(index=index, data=piece))
            for index, blob in enumerate(result.contributions)
            for piece in _pieces(blob, chunk_bytes)
        ]
        return answers


async def receive_upload(
    codec: GenomicsCodec, requests: AsyncIterator[genomics_pb2.AssessVcfUploadRequest]
) -> tuple[AssessmentSpec, list[bytes]]:
    """The header and the VCF's chunks of an upload, checked message by message."""
    spec: AssessmentSpec | None = None
    upload: _Upload | None = None
    index = 0
    async for request in requests:
        if upload is None:
            spec, upload = codec.decode_upload_header(request)
        else:
            codec.decode_upload_chunk(request, index, upload)
        index += 1
    chunks = codec.finish_upload(upload, index)
    assert spec is not None
    return spec, chunks


async def receive_encrypted(
    codec: GenomicsCodec, requests: AsyncIterator[genomics_pb2.ScoreEncryptedRequest]
) -> EncryptedRequest:
    decoder = EncryptedDecoder(codec)
    async for request in requests:
        decoder.feed(request)
    return decoder.finish()


class EncryptedDecoder:
    """Checks and reassembles a ScoreEncrypted request stream: header, context chunks, ciphertext chunks."""

    def __init__(self, codec: GenomicsCodec) -> None:
        self.codec = codec
        self.messages = 0
        self.score = ""
        self.context_length = 0
        self.cipher_lengths: tuple[int, ...] = ()
        self.context = bytearray()
        self.ciphertexts: list[bytearray] = []

    def feed(self, request: genomics_pb2.ScoreEncryptedRequest) -> None:
        path = f"stream[{self.messages}]"
        self.messages += 1
        violations = ViolationCollector()
        common.check_unknown_fields(request, path, violations)
        violations.raise_if_any()
        part = request.WhichOneof("part")
        if self.messages == 1:
            self._header(request, path, part)
        elif part == "public_context_chunk":
            if self.ciphertexts:
                _refuse(path, "public context chunks must all come before the ciphertexts")
            self.context += request.public_context_chunk
            if len(self.context) > self.context_length:
                _refuse(path, f"the public context exceeds its declared length of {self.context_length} bytes")
        elif part == "ciphertext_chunk":
            self._ciphertext(request.ciphertext_chunk, path)
        else:
            _refuse(path, "after the header only public_context_chunk and ciphertext_chunk may follow")

    def _header(self, request: genomics_pb2.ScoreEncryptedRequest, path: str, part: str | None) -> None:
        if part != "header":
            _refuse(f"{path}.header", "the first message must be the header")
        header = request.header
        violations = ViolationCollector()
        self.codec._check_score_key(header.score, f"{path}.header.score", violations)
        if header.public_context_length == 0:
            violations.add(f"{path}.header.public_context_length", "is required")
        if not header.ciphertext_lengths:
            violations.add(f"{path}.header.ciphertext_lengths", "must list the size of every ciphertext")
        if any(length == 0 for length in header.ciphertext_lengths):
            violations.add(f"{path}.header.ciphertext_lengths", "a ciphertext cannot be empty")
        violations.raise_if_any()
        if header.public_context_length > self.codec.max_context_bytes:
            raise _too_large(f"{path}.header.public_context_length", header.public_context_length, self.codec.max_context_bytes)
        for index, length in enumerate(header.ciphertext_lengths):
            if length > self.codec.max_ciphertext_bytes:
                raise _too_large(f"{path}.header.ciphertext_lengths[{index}]", length, self.codec.max_ciphertext_bytes)
        self.score = header.score
        self.context_length = header.public_context_length
        self.cipher_lengths = tuple(header.ciphertext_lengths)

    def _ciphertext(self, chunk: genomics_pb2.CiphertextChunk, path: str) -> None:
        if len(self.context) != self.context_length:
            _refuse(path, f"the public context ended after {len(self.context)} of {self.context_length} bytes")
        index = chunk.index
        current = len(self.ciphertexts) - 1
        if index >= len(self.cipher_lengths):
            _refuse(f"{path}.ciphertext_chunk.index", f"the header declares {len(self.cipher_lengths)} ciphertext(s)")
        if index == current + 1:
            if current >= 0 and len(self.ciphertexts[current]) != self.cipher_lengths[current]:
                _refuse(f"{path}.ciphertext_chunk.index", f"ciphertexts[{current}] is incomplete")
            self.ciphertexts.append(bytearray())
        elif index != current:
            _refuse(f"{path}.ciphertext_chunk.index", "ciphertexts must be sent in order of index")
        self.ciphertexts[index] += chunk.data
        if len(self.ciphertexts[index]) > self.cipher_lengths[index]:
            _refuse(path, f"ciphertexts[{index}] exceeds its declared length of {self.cipher_lengths[index]} bytes")

    def finish(self) -> EncryptedRequest:
        if self.messages == 0:
            _refuse("stream", "is empty: send the header, the public context, then the ciphertexts")
        received = [len(c) for c in self.ciphertexts]
        if len(self.context) != self.context_length or received != list(self.cipher_lengths):
            _refuse(
                f"stream[{self.messages}]",
                f"the stream ended early: public context {len(self.context)} of {self.context_length} bytes,"
                f" {len(self.ciphertexts)} of {len(self.cipher_lengths)} ciphertext(s) started (truncated)",
            )
        return EncryptedRequest(self.score, bytes(self.context), tuple(bytes(c) for c in self.ciphertexts))


def encode_variant(variant: VariantContribution) -> genomics_pb2.VariantContribution:
    return genomics_pb2.VariantContribution(
        variant_id=variant.variant_id, effect_allele=variant.effect_allele, effect_weight=variant.effect_weight,
        dosage=variant.dosage, imputed=variant.imputed, contribution=variant.contribution,
    )


def _model_inputs(risk: CancerRisk, factors: PatientFactors) -> tuple[float, ...]:
    """The model's inputs, in FEATURES order, as the predictor built them."""
    return (risk.z_score, factors.age, float(factors.sex == "male"), float(factors.has_family_history(risk.cancer)))


# Yes/no inputs read badly as numbers with units ("family history 1 1 = yes").
_BINARY_WORDS = {"family_history": ("no family history", "family history"), "male": ("female sex", "male sex")}


def _in_words(reason: Reason, explained: str) -> Reason:
    words = _BINARY_WORDS.get(reason.feature)
    if words is None:
        return reason
    return replace(reason, text=f"{words[int(reason.value >= 0.5)]} {reason.direction} the likelihood of {explained}")


def _explanation(risk: CancerRisk, values: dict[str, float], specs: Mapping[str, FeatureSpec]) -> DomainExplanation:
    contributions = tuple(Contribution(name, values[name], risk.shap_values[name]) for name in FEATURES)
    explained = f"{risk.cancer} cancer within {risk.horizon_years:g} years"
    return DomainExplanation(
        explained_class=explained,
        output_space=LOG_ODDS,
        base_value=risk.shap_base_value,
        margin=risk.shap_base_value + sum(c.shap_value for c in contributions),
        contributions=contributions,
        top_reasons=tuple(_in_words(r, explained) for r in top_reasons(contributions, specs, explained)),
        method=TREESHAP_METHOD,
    )


def _refuse(field_path: str, description: str) -> NoReturn:
    raise InvalidInput.of([FieldViolation(field_path, description)])


def _too_large(field_path: str, size: int, limit: int) -> ResourceExhausted:
    description = f"{size} bytes exceed the limit of {limit} bytes"
    return ResourceExhausted(f"{field_path}: {description}", [FieldViolation(field_path, description)])


def _pieces(blob: bytes, size: int) -> list[bytes]:
    return [blob[start:start + size] for start in range(0, len(blob), size)] or [b""]
