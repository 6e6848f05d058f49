"""clinpred.genomics.v1 messages <-> genomics domain objects, and every check a message alone can decide.

Decoding checks each request's fields at once (all violations together), the
stream structure of uploads and encrypted requests (header first, declared
lengths, size limits as the bytes arrive), and gives the domain the field
paths of what only the content can refute (the VCF, its declared build, the
patients' samples, the CKKS context and ciphertexts). Encoding turns domain
results into answers; nothing here computes a risk, an input or an explanation.

Messages name fields, limits and line numbers, never sample ids, genotypes or file names.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from clinpred.pilots.common.ckks import MIN_SCALE_BITS
from clinpred.pilots.common.errors import FieldViolation, InvalidInput, ResourceExhausted, ViolationCollector
from clinpred.pilots.genomics.assessment import (
    AssessmentFields,
    AssessmentRequest,
    PatientFactors,
    ScoreSource,
    VcfAssessment,
)
from clinpred.pilots.genomics.encrypted import (
    SUPPORTED_POLY_MODULUS_DEGREES,
    EncryptedFields,
    EncryptedScoreAnswer,
    EncryptedScoreRequest,
)
from clinpred.pilots.genomics.evaluation_keys import EvaluationKeysRequest, Registration
from clinpred.pilots.genomics.risk import MAX_AGE, MAX_RELATIVES, MIN_AGE, SEXES, CancerRisk, GenomicRiskPredictor
from clinpred.pilots.genomics.scoring import VariantContribution
from clinpred.services.api.common.v1 import prediction_pb2 as common_pb2
from clinpred.services.api.genomics.v1 import genomics_pb2
from clinpred.services.common import codec as common
from clinpred.services.genomics.scores import PublishedLayout, ScoreStatus
from clinpred.services.genomics.settings import GenomicsSettings

BUILD_NAMES = {genomics_pb2.GENOME_BUILD_GRCH37: "GRCh37", genomics_pb2.GENOME_BUILD_GRCH38: "GRCh38"}
BUILD_ENUMS: dict[str, genomics_pb2.GenomeBuild] = {name: number for number, name in BUILD_NAMES.items()}
SEX_NAMES = {genomics_pb2.SEX_FEMALE: "female", genomics_pb2.SEX_MALE: "male"}
SEX_ENUMS: dict[str, genomics_pb2.Sex] = {name: number for number, name in SEX_NAMES.items()}
DEFAULT_TOP_VARIANTS = 10
# Longest strings accepted. A sample id is a VCF column name, a short identifier (256 leaves room for
# ids joined from several parts); a score key is a cancer or a PGS Catalog id (PGS000004); cancers are
# named like "colorectal".
MAX_SAMPLE_ID_LENGTH = 256
MAX_SCORE_KEY_LENGTH = 64
MAX_CANCER_NAME_LENGTH = 64
assert set(SEX_NAMES.values()) == set(SEXES)

# Where each request carries what only its content can refute.
SINGLE_MESSAGE_FIELDS = AssessmentFields(vcf="vcf", build="assessment.build", patients="assessment.patients")
UPLOAD_FIELDS = AssessmentFields(
    vcf="stream[*].chunk", build="stream[0].header.assessment.build", patients="stream[0].header.assessment.patients"
)
ENCRYPTED_FIELDS = EncryptedFields(
    context="stream[*].public_context_chunk",
    ciphertexts="stream[*].ciphertext_chunk",
    lengths="stream[0].header.ciphertext_lengths",
)
# A request naming a registered context: what the context is refused for is the digest's fault.
REGISTERED_FIELDS = EncryptedFields(
    context="stream[0].header.public_context_sha256",
    ciphertexts="stream[*].ciphertext_chunk",
    lengths="stream[0].header.ciphertext_lengths",
)
REGISTRATION_CONTEXT_FIELD = "stream[*].public_context_chunk"


@dataclass(frozen=True)
class _Assessment:
    """An Assessment message, checked: all of a request but its VCF."""

    build: str
    patients: tuple[PatientFactors, ...]
    cancers: tuple[str, ...]
    top_variants: int


@dataclass
class ReceivedUpload:
    """An AssessVcfUpload stream as it arrived: the checked header, then the VCF's chunks."""

    assessment: _Assessment | None = None  # None: no message arrived
    content_length: int = 0
    sha256: str = ""
    chunks: list[bytes] = field(default_factory=list)
    received: int = 0  # bytes of VCF
    messages: int = 0
    # Hashed as the chunks arrive, so a large upload is never hashed in one go on the event loop.
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)


@dataclass
class ReceivedCiphertexts:
    """A ScoreEncrypted stream as it arrived: the checked header, the public context, the ciphertexts."""

    messages: int = 0
    score: str = ""
    context_length: int = 0
    context_sha256: str = ""  # a registered context's digest, instead of the context
    ciphertext_lengths: tuple[int, ...] = ()
    context: bytearray = field(default_factory=bytearray)
    ciphertexts: list[bytearray] = field(default_factory=list)


@dataclass
class ReceivedEvaluationKeys:
    """A RegisterEvaluationKeys stream as it arrived: the checked header, then the public context."""

    messages: int = 0
    context_length: int = 0
    sha256: str = ""
    context: bytearray = field(default_factory=bytearray)


class GenomicsCodec:
    """Checks requests against the configured cancers and scores and the settings' limits."""

    def __init__(self, settings: GenomicsSettings, cancers: Sequence[str], score_keys: Sequence[str]) -> None:
        self.cancers = tuple(cancers)  # in configured order
        self.score_keys = frozenset(score_keys)  # cancers and PGS ids
        self.max_patients = settings.max_batch_size
        self.max_upload_bytes = settings.max_upload_bytes
        self.max_top_variants = settings.max_top_variants
        self.max_context_bytes = settings.max_context_bytes
        self.max_registered_context_bytes = min(
            settings.max_context_bytes, settings.max_evaluation_keys_bytes, settings.max_evaluation_keys_bytes_per_tenant
        )
        self.max_ciphertext_bytes = settings.max_ciphertext_bytes
        self.response_chunk_bytes = settings.response_chunk_bytes

    # --- requests without arguments and layouts ------------------------------------------------------

    def decode_empty(self, request: genomics_pb2.ListScoresRequest | genomics_pb2.GetModelInfoRequest) -> None:
        violations = ViolationCollector()
        common.check_unknown_fields(request, "", violations)
        violations.raise_if_any()

    def decode_layout(self, request: genomics_pb2.GetScoreLayoutRequest) -> str:
        violations = ViolationCollector()
        common.check_unknown_fields(request, "", violations)
        self._check_score_key(request.score, "score", violations)
        violations.raise_if_any()
        return request.score

    def _check_score_key(self, key: str, path: str, violations: ViolationCollector) -> None:
        if not key:
            violations.add(path, f"is required: a PGS id or cancer ({', '.join(sorted(self.score_keys))})")
        elif common.check_text(key, path, violations, max_length=MAX_SCORE_KEY_LENGTH) and key not in self.score_keys:
            violations.add(path, f"unknown score; configured: {', '.join(sorted(self.score_keys))}")

    # --- assessments ---------------------------------------------------------------------------------

    def _decode_patient(self, patient: genomics_pb2.Patient, path: str, violations: ViolationCollector) -> PatientFactors:
        if not math.isfinite(patient.age):
            violations.add(f"{path}.age", "must be a finite number of years")
        elif not MIN_AGE <= patient.age <= MAX_AGE:
            violations.add(f"{path}.age", f"must be between {MIN_AGE:g} and {MAX_AGE:g} years")
        if patient.sex not in SEX_NAMES:
            violations.add(f"{path}.sex", "is required: SEX_FEMALE or SEX_MALE")
        common.check_text(patient.sample_id, f"{path}.sample_id", violations, max_length=MAX_SAMPLE_ID_LENGTH)
        common.check_map_keys(
            patient.family_history,
            self.cancers,
            f"{path}.family_history",
            f"cancer name; configured: {', '.join(self.cancers)}",
            violations,
        )
        common.check_map_keys(
            patient.affected_first_degree_relatives,
            self.cancers,
            f"{path}.affected_first_degree_relatives",
            f"cancer name; configured: {', '.join(self.cancers)}",
            violations,
        )
        # Named like unknown keys: by index in code-point order, as a map has no order on the wire.
        for index, (cancer, count) in enumerate(sorted(patient.affected_first_degree_relatives.items())):
            if count > MAX_RELATIVES and cancer in self.cancers:
                violations.add(
                    f"{path}.affected_first_degree_relatives[{index}]",
                    f"must be 0 to {MAX_RELATIVES} (key {index} in code-point order)",
                )
        return PatientFactors(
            patient.sample_id, patient.age, SEX_NAMES.get(patient.sex, ""), dict(patient.family_history),
            dict(patient.affected_first_degree_relatives),
        )

    def _decode_assessment(self, message: genomics_pb2.Assessment, path: str) -> _Assessment:
        violations = ViolationCollector()
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
        listed: set[str] = set()
        for index, cancer in enumerate(message.cancers):
            where = f"{path}.cancers[{index}]"
            if not common.check_text(cancer, where, violations, max_length=MAX_CANCER_NAME_LENGTH):
                continue
            if cancer not in self.cancers:
                violations.add(where, f"unknown cancer name; configured: {', '.join(self.cancers)}")
            elif cancer in listed:
                violations.add(where, "lists a cancer a second time")
            listed.add(cancer)
        if message.top_variants > self.max_top_variants:
            violations.add(f"{path}.top_variants", f"at most {self.max_top_variants}")
        violations.raise_if_any()
        return _Assessment(
            build=BUILD_NAMES[message.build],
            patients=tuple(patients),
            cancers=tuple(c for c in self.cancers if not message.cancers or c in message.cancers),
            top_variants=message.top_variants or DEFAULT_TOP_VARIANTS,
        )

    @staticmethod
    def _request(assessment: _Assessment, vcf: bytes | tuple[bytes, ...], fields: AssessmentFields) -> AssessmentRequest:
        return AssessmentRequest(assessment.build, assessment.patients, assessment.cancers, assessment.top_variants, vcf, fields)

    def decode_assess(self, request: genomics_pb2.AssessVcfRequest) -> AssessmentRequest:
        violations = ViolationCollector()
        common.check_unknown_fields(request, "", violations)
        if not request.HasField("assessment"):
            violations.add("assessment", "is required")
        if not request.vcf:
            violations.add("vcf", "is required: the VCF file's bytes, plain or bgzipped")
        elif len(request.vcf) > self.max_upload_bytes:
            violations.add("vcf", f"holds {len(request.vcf)} bytes; at most {self.max_upload_bytes} are accepted")
        violations.raise_if_any()
        return self._request(self._decode_assessment(request.assessment, "assessment"), request.vcf, SINGLE_MESSAGE_FIELDS)

    # --- uploads -------------------------------------------------------------------------------------

    async def receive_upload(self, requests: AsyncIterator[genomics_pb2.AssessVcfUploadRequest]) -> ReceivedUpload:
        """Gathers an upload, refusing it as soon as a message breaks the stream's structure or limits.

        The header is checked when it arrives, so a wrong assessment or an oversized declared
        length is refused before the VCF is sent.
        """
        upload = ReceivedUpload()
        async for request in requests:
            if upload.assessment is None:
                self._receive_upload_header(request, upload)
            else:
                self._receive_upload_chunk(request, upload)
            upload.messages += 1
        return upload

    def _receive_upload_header(self, request: genomics_pb2.AssessVcfUploadRequest, upload: ReceivedUpload) -> None:
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
        upload.assessment = self._decode_assessment(header.assessment, "stream[0].header.assessment")
        upload.content_length = header.content_length
        upload.sha256 = sha

    def _receive_upload_chunk(self, request: genomics_pb2.AssessVcfUploadRequest, upload: ReceivedUpload) -> None:
        violations = ViolationCollector()
        path = f"stream[{upload.messages}]"
        common.check_unknown_fields(request, path, violations)
        if request.WhichOneof("part") != "chunk":
            violations.add(path, "after the header only chunks of the VCF may follow")
        violations.raise_if_any()
        upload.received += len(request.chunk)
        if upload.received > self.max_upload_bytes:
            raise _too_large(f"{path}.chunk", upload.received, self.max_upload_bytes)
        if upload.received > upload.content_length:
            _refuse(f"{path}.chunk", f"the upload exceeds its content_length of {upload.content_length} bytes")
        upload.chunks.append(request.chunk)
        upload.digest.update(request.chunk)

    def decode_upload(self, upload: ReceivedUpload) -> AssessmentRequest:
        """The received upload is complete and what its header declared."""
        if upload.assessment is None:
            _refuse("stream", "is empty: send the header, then the VCF in chunks")
        if upload.received < upload.content_length:
            _refuse(
                f"stream[{upload.messages}]",
                f"the upload ended after {upload.received} of its {upload.content_length} bytes: truncated; send it again",
            )
        if upload.sha256 and upload.digest.hexdigest() != upload.sha256:
            _refuse("stream[0].header.content_sha256", "does not match the bytes received")
        return self._request(upload.assessment, tuple(upload.chunks), UPLOAD_FIELDS)

    # --- encrypted scoring ---------------------------------------------------------------------------

    async def receive_encrypted(self, requests: AsyncIterator[genomics_pb2.ScoreEncryptedRequest]) -> ReceivedCiphertexts:
        """Gathers header, public context chunks and ciphertext chunks, refusing the stream as soon as it goes wrong."""
        received = ReceivedCiphertexts()
        async for request in requests:
            path = f"stream[{received.messages}]"
            received.messages += 1
            violations = ViolationCollector()
            common.check_unknown_fields(request, path, violations)
            violations.raise_if_any()
            part = request.WhichOneof("part")
            if received.messages == 1:
                self._receive_encrypted_header(request, path, part, received)
            elif part == "public_context_chunk":
                if received.ciphertexts:
                    _refuse(path, "public context chunks must all come before the ciphertexts")
                received.context += request.public_context_chunk
                if len(received.context) > received.context_length:
                    _refuse(path, f"the public context exceeds its declared length of {received.context_length} bytes")
            elif part == "ciphertext_chunk":
                self._receive_ciphertext(request.ciphertext_chunk, path, received)
            else:
                _refuse(path, "after the header only public_context_chunk and ciphertext_chunk may follow")
        return received

    def _receive_encrypted_header(
        self, request: genomics_pb2.ScoreEncryptedRequest, path: str, part: str | None, received: ReceivedCiphertexts
    ) -> None:
        if part != "header":
            _refuse(f"{path}.header", "the first message must be the header")
        header = request.header
        violations = ViolationCollector()
        self._check_score_key(header.score, f"{path}.header.score", violations)
        if header.public_context_sha256:
            _check_sha256(header.public_context_sha256, f"{path}.header.public_context_sha256", violations)
            if header.public_context_length:
                violations.add(
                    f"{path}.header.public_context_length", "must be 0 when public_context_sha256 names a registered context"
                )
        elif header.public_context_length == 0:
            violations.add(
                f"{path}.header.public_context_sha256",
                "is required: the SHA-256 of a context registered with RegisterEvaluationKeys"
                " (or send the whole context and its public_context_length)",
            )
        if not header.ciphertext_lengths:
            violations.add(f"{path}.header.ciphertext_lengths", "must list the size of every ciphertext")
        if any(length == 0 for length in header.ciphertext_lengths):
            violations.add(f"{path}.header.ciphertext_lengths", "a ciphertext cannot be empty")
        violations.raise_if_any()
        if header.public_context_length > self.max_context_bytes:
            raise _too_large(f"{path}.header.public_context_length", header.public_context_length, self.max_context_bytes)
        for index, length in enumerate(header.ciphertext_lengths):
            if length > self.max_ciphertext_bytes:
                raise _too_large(f"{path}.header.ciphertext_lengths[{index}]", length, self.max_ciphertext_bytes)
        received.score = header.score
        received.context_length = header.public_context_length
        received.context_sha256 = header.public_context_sha256.lower()
        received.ciphertext_lengths = tuple(header.ciphertext_lengths)

    @staticmethod
    def _receive_ciphertext(chunk: genomics_pb2.CiphertextChunk, path: str, received: ReceivedCiphertexts) -> None:
        if len(received.context) != received.context_length:
            _refuse(path, f"the public context ended after {len(received.context)} of {received.context_length} bytes")
        lengths = received.ciphertext_lengths
        index = chunk.index
        current = len(received.ciphertexts) - 1
        if index >= len(lengths):
            _refuse(f"{path}.ciphertext_chunk.index", f"the header declares {len(lengths)} ciphertext(s)")
        if index == current + 1:
            if current >= 0 and len(received.ciphertexts[current]) != lengths[current]:
                _refuse(f"{path}.ciphertext_chunk.index", f"ciphertexts[{current}] is incomplete")
            received.ciphertexts.append(bytearray())
        elif index != current:
            _refuse(f"{path}.ciphertext_chunk.index", "ciphertexts must be sent in order of index")
        received.ciphertexts[index] += chunk.data
        if len(received.ciphertexts[index]) > lengths[index]:
            _refuse(path, f"ciphertexts[{index}] exceeds its declared length of {lengths[index]} bytes")

    def decode_encrypted(self, received: ReceivedCiphertexts) -> EncryptedScoreRequest:
        """The received stream is complete: the declared context and every declared ciphertext, whole."""
        if received.messages == 0:
            _refuse("stream", "is empty: send the header, the public context, then the ciphertexts")
        arrived = [len(c) for c in received.ciphertexts]
        if len(received.context) != received.context_length or arrived != list(received.ciphertext_lengths):
            _refuse(
                f"stream[{received.messages}]",
                f"the stream ended early: public context {len(received.context)} of {received.context_length} bytes,"
                f" {len(received.ciphertexts)} of {len(received.ciphertext_lengths)} ciphertext(s) started (truncated)",
            )
        return EncryptedScoreRequest(
            received.score,
            bytes(received.context),
            tuple(bytes(c) for c in received.ciphertexts),
            REGISTERED_FIELDS if received.context_sha256 else ENCRYPTED_FIELDS,
            received.context_sha256,
        )

    # --- evaluation keys -----------------------------------------------------------------------------

    async def receive_evaluation_keys(
        self, requests: AsyncIterator[genomics_pb2.RegisterEvaluationKeysRequest]
    ) -> ReceivedEvaluationKeys:
        """Gathers the header and the context's chunks, refusing the stream as soon as it goes wrong."""
        received = ReceivedEvaluationKeys()
        async for request in requests:
            path = f"stream[{received.messages}]"
            received.messages += 1
            violations = ViolationCollector()
            common.check_unknown_fields(request, path, violations)
            violations.raise_if_any()
            part = request.WhichOneof("part")
            if received.messages == 1:
                self._receive_evaluation_keys_header(request, path, part, received)
            elif part == "public_context_chunk":
                received.context += request.public_context_chunk
                if len(received.context) > received.context_length:
                    _refuse(path, f"the public context exceeds its declared length of {received.context_length} bytes")
            else:
                _refuse(path, "after the header only public_context_chunk may follow")
        return received

    def _receive_evaluation_keys_header(
        self,
        request: genomics_pb2.RegisterEvaluationKeysRequest,
        path: str,
        part: str | None,
        received: ReceivedEvaluationKeys,
    ) -> None:
        if part != "header":
            _refuse(f"{path}.header", "the first message must be the header")
        header = request.header
        violations = ViolationCollector()
        where = f"{path}.header.public_context_length"
        if header.public_context_length == 0:
            violations.add(where, "is required: the number of bytes of the public context that follows")
        elif header.public_context_length > self.max_registered_context_bytes:
            # Never storable, however empty the replica: the request is wrong, not the server full.
            violations.add(
                where,
                f"{header.public_context_length} bytes exceed the limit of {self.max_registered_context_bytes} bytes"
                " for one registered context",
            )
        if header.public_context_sha256:
            _check_sha256(header.public_context_sha256, f"{path}.header.public_context_sha256", violations)
        violations.raise_if_any()
        received.context_length = header.public_context_length
        received.sha256 = header.public_context_sha256.lower()

    def decode_evaluation_keys(self, received: ReceivedEvaluationKeys) -> EvaluationKeysRequest:
        if received.messages == 0:
            _refuse("stream", "is empty: send the header, then the public context in chunks")
        if len(received.context) != received.context_length:
            _refuse(
                f"stream[{received.messages}]",
                f"the stream ended after {len(received.context)} of the public context's {received.context_length} bytes"
                " (truncated)",
            )
        blob = bytes(received.context)
        if received.sha256 and hashlib.sha256(blob).hexdigest() != received.sha256:
            _refuse("stream[0].header.public_context_sha256", "does not match the bytes received")
        return EvaluationKeysRequest(blob, REGISTRATION_CONTEXT_FIELD)

    @staticmethod
    def encode_evaluation_keys(registration: Registration) -> genomics_pb2.RegisterEvaluationKeysResponse:
        return genomics_pb2.RegisterEvaluationKeysResponse(
            public_context_sha256=registration.sha256,
            public_context_length=registration.size,
            expires_after_idle_seconds=registration.expires_in_seconds,
        )

    # --- answers -------------------------------------------------------------------------------------

    def encode_assess(self, result: VcfAssessment) -> genomics_pb2.AssessVcfResponse:
        return genomics_pb2.AssessVcfResponse(assessment=self.encode_assessment(result))

    def encode_upload(self, result: VcfAssessment) -> genomics_pb2.AssessVcfUploadResponse:
        return genomics_pb2.AssessVcfUploadResponse(assessment=self.encode_assessment(result))

    def encode_assessment(self, result: VcfAssessment) -> genomics_pb2.VcfAssessment:
        return genomics_pb2.VcfAssessment(
            samples=[
                genomics_pb2.SampleAssessment(
                    sample_id=sample.sample_id,
                    risks=[encode_risk(risk, result.sources[risk.cancer]) for risk in sample.risks],
                )
                for sample in result.samples
            ],
            build=_build_enum(result.build),
            build_evidence=result.build_evidence,
            vcf_samples=result.vcf_samples,
        )

    def encode_scores(self, statuses: Sequence[ScoreStatus]) -> genomics_pb2.ListScoresResponse:
        return genomics_pb2.ListScoresResponse(
            scores=[
                genomics_pb2.ScoreInfo(
                    cancer=status.cancer,
                    score=encode_source(status.source),
                    trait_reported=status.trait_reported,
                    variants=status.variants,
                    builds=[BUILD_ENUMS[b] for b in status.builds if b in BUILD_ENUMS],
                    horizon_years=status.horizon_years,
                    model=common.encode_identity(status.model),
                    problem=status.problem,
                )
                for status in statuses
            ],
            max_upload_bytes=self.max_upload_bytes,
        )

    def encode_model_info(self, predictors: Sequence[GenomicRiskPredictor]) -> genomics_pb2.GetModelInfoResponse:
        return genomics_pb2.GetModelInfoResponse(
            models=[
                genomics_pb2.ModelInfo(
                    cancer=predictor.cancer,
                    model=common.encode_identity(predictor.identity),
                    features=[common.encode_feature_spec(spec) for spec in predictor.schema.features],
                    pgs_id=predictor.pgs_id,
                    horizon_years=predictor.horizon_years,
                    metrics=common.encode_metrics(predictor.metrics),
                    interval_level=predictor.interval_level,
                    risk_parameters_json=predictor.risk_parameters_json.decode(),
                    package_manifest=predictor.manifest_json.decode(),
                    min_age=predictor.valid_ages[0],
                    max_age=predictor.valid_ages[1],
                    sexes=[SEX_ENUMS[s] for s in predictor.valid_sexes],
                    transparency=predictor.transparency,
                )
                for predictor in predictors
            ],
            max_upload_bytes=self.max_upload_bytes,
        )

    def encode_layout(self, published: PublishedLayout) -> genomics_pb2.GetScoreLayoutResponse:
        predictor = published.predictor
        layout, reference = published.layout.published(), predictor.reference
        return genomics_pb2.GetScoreLayoutResponse(
            pgs_id=layout.pgs_id,
            cancer=predictor.cancer,
            build=_build_enum(predictor.genome_build),
            variant_ids=list(layout.variant_ids),
            effect_alleles=list(layout.effect_alleles),
            weights=list(layout.weights),
            reference=genomics_pb2.ReferenceDistribution(
                mean=reference.mean,
                sd=reference.sd,
                quantiles=list(reference.quantiles),
                sample_size=reference.sample_size,
            ),
            poly_modulus_degrees=list(SUPPORTED_POLY_MODULUS_DEGREES),
            min_scale_bits=MIN_SCALE_BITS,
            model=common.encode_identity(predictor.identity),
            private_weights=layout.private,
        )

    def encode_encrypted(self, answer: EncryptedScoreAnswer) -> list[genomics_pb2.ScoreEncryptedResponse]:
        """A summary, then the encrypted score and each contribution ciphertext in chunks of `response_chunk_bytes`."""
        result = answer.result
        Chunk = genomics_pb2.CiphertextChunk  # noqa: N806
        answers = [
            genomics_pb2.ScoreEncryptedResponse(
                summary=genomics_pb2.EncryptedScoreSummary(
                    pgs_id=result.pgs_id,
                    variants=answer.variants,
                    score_length=len(result.score),
                    contribution_lengths=[len(c) for c in result.contributions],
                    model=common.encode_identity(answer.model),
                )
            )
        ]
        answers += [
            genomics_pb2.ScoreEncryptedResponse(score_chunk=Chunk(index=0, data=piece))
            for piece in _pieces(result.score, self.response_chunk_bytes)
        ]
        answers += [
            genomics_pb2.ScoreEncryptedResponse(contribution_chunk=Chunk(index=index, data=piece))
            for index, blob in enumerate(result.contributions)
            for piece in _pieces(blob, self.response_chunk_bytes)
        ]
        return answers


def encode_risk(risk: CancerRisk, source: ScoreSource) -> genomics_pb2.CancerRisk:
    low, high = risk.risk_interval
    level = risk.interval_level
    overlap = risk.overlap
    return genomics_pb2.CancerRisk(
        cancer=risk.cancer,
        score=encode_source(source),
        horizon_years=risk.horizon_years,
        score_sum=risk.score_sum,
        z_score=risk.z_score,
        percentile=risk.percentile,
        absolute_risk=risk.absolute_risk,
        risk_interval=common_pb2.Confidence(
            coverage=level,
            method=risk.interval_method,
            lower=low,
            upper=high,
            statement=f"{level:.0%} confidence interval of the {risk.horizon_years:g}-year risk: {low:.2%} to {high:.2%}",
        ),
        population_average_risk=risk.population_average_risk,
        relative_risk=risk.relative_risk,
        top_variants=[encode_variant(v) for v in risk.top_variants],
        explanation=common.encode_explanation(risk.explanation),
        variants=genomics_pb2.VariantCounts(
            total=risk.variants_total,
            matched=risk.variants_matched,
            missing=risk.variants_missing,
            imputed=risk.variants_imputed,
            unmatched=dict(overlap.unmatched) if overlap else {},
            match_types=dict(overlap.match_types) if overlap else {},
        ),
        out_of_range=common.encode_range_flags(risk.out_of_range),
        model=common.encode_identity(risk.model),
        affected_first_degree_relatives=risk.affected_first_degree_relatives,
        odds_ratio_per_sd=risk.odds_ratio_per_sd,
        unmeasured_variance_fraction=risk.unmeasured_variance_fraction,
        score_effect_note=risk.score_effect_note,
    )


def encode_source(source: ScoreSource) -> genomics_pb2.ScoreSource:
    return genomics_pb2.ScoreSource(
        pgs_id=source.pgs_id, pgs_name=source.pgs_name, scoring_file=source.scoring_file, build=_build_enum(source.build)
    )


def encode_variant(variant: VariantContribution) -> genomics_pb2.VariantContribution:
    return genomics_pb2.VariantContribution(
        variant_id=variant.variant_id,
        effect_allele=variant.effect_allele,
        effect_weight=variant.effect_weight,
        dosage=variant.dosage,
        imputed=variant.imputed,
        contribution=variant.contribution,
    )


def _build_enum(build: str | None) -> genomics_pb2.GenomeBuild:
    return BUILD_ENUMS.get(build or "", genomics_pb2.GENOME_BUILD_UNSPECIFIED)


def _check_sha256(value: str, path: str, violations: ViolationCollector) -> None:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower()):
        violations.add(path, "must be a SHA-256: 64 hexadecimal digits")


def _refuse(field_path: str, description: str) -> NoReturn:
    raise InvalidInput.of([FieldViolation(field_path, description)])


def _too_large(field_path: str, size: int, limit: int) -> ResourceExhausted:
    description = f"{size} bytes exceed the limit of {limit} bytes"
    return ResourceExhausted(f"{field_path}: {description}", [FieldViolation(field_path, description)])


def _pieces(blob: bytes, size: int) -> list[bytes]:
    return [blob[start : start + size] for start in range(0, len(blob), size)] or [b""]
