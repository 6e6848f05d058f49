"""A Python client of clinpred.genomics.v1 for genetics units, including encrypted scoring.

Plain scoring sends the VCF (one message when small, else a client-streamed
upload) and gets every configured cancer's score, percentile and risk.

Encrypted scoring keeps genotypes and the score unreadable to the server:

    with GenomicsClient("127.0.0.1:50053") as client:
        result = client.score_encrypted(Path("patient.vcf.gz"), build="GRCh37", score="breast")
        parameters = client.risk_parameters(result.model)   # published by GetModelInfo, SHA-256 checked
    result.score_sum, result.percentile          # decrypted and computed here, on the client
    result.risk(parameters, age=52, sex="female", relatives=0)   # absolute risk, locally

The client fetches the published variant order (GetScoreLayout), matches its
own VCF locally with the same domain code as the server, builds a CKKS
context and keys here (once per client object, unless given one), registers
the public context once (RegisterEvaluationKeys, about 35 MB), encrypts the
dosage vector, sends the ciphertexts with the context's SHA-256 only, and
decrypts the encrypted score (and, for a public score, the per-variant
contributions) the server returns. A replica that no longer holds the context
answers FAILED_PRECONDITION with reason EVALUATION_KEYS_NOT_REGISTERED: the
client registers it again and retries once, by itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import numpy as np
import numpy.typing as npt
import tenseal as ts
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clinpred.pilots.common.errors import FailedPrecondition, FieldViolation, InvalidInput, ModelUnavailable
from clinpred.pilots.genomics.absolute_risk import RiskAnswer, RiskParameters, assess_score, imputed_score_variance
from clinpred.pilots.genomics.encrypted import (
    EncryptedScore,
    EncryptedScoreLayout,
    create_client_context,
    decrypt_score,
    dosages_for_layout,
    encrypt_dosages,
    layout_scoring_file,
    public_context_bytes,
)
from clinpred.pilots.genomics.evaluation_keys import NOT_REGISTERED_REASON, context_sha256
from clinpred.pilots.genomics.package_format import RISK_PARAMETERS_FILE, ScoreDistribution
from clinpred.pilots.genomics.scoring import SampleScore, score_vcf
from clinpred.pilots.genomics.vcf import Genotypes
from clinpred.services.api.common.v1 import prediction_pb2 as common_pb2
from clinpred.services.api.genomics.v1 import genomics_pb2, genomics_pb2_grpc
from clinpred.services.common.channel import ClientTls, open_channel
from clinpred.services.common.sealed_channel import SealedChannel
from clinpred.services.common.sealing_keys import SealingKey

CHUNK_BYTES = 1024 * 1024
# Larger VCFs go through the client-streaming upload; gRPC's default message limit is 4 MiB.
SINGLE_MESSAGE_BYTES = 3 * 1024 * 1024
SEXES = {"female": genomics_pb2.SEX_FEMALE, "male": genomics_pb2.SEX_MALE}
BUILDS = {"GRCh37": genomics_pb2.GENOME_BUILD_GRCH37, "GRCh38": genomics_pb2.GENOME_BUILD_GRCH38}


def patient(
    age: float, sex: str, relatives: Mapping[str, int] | Iterable[str] = (), sample_id: str = ""
) -> genomics_pb2.Patient:
    """A Patient message; `relatives` maps cancer -> affected first-degree relatives, or lists cancers (one each)."""
    counts = dict(relatives) if isinstance(relatives, Mapping) else {c: 1 for c in relatives}
    return genomics_pb2.Patient(sample_id=sample_id, age=age, sex=SEXES[sex], affected_first_degree_relatives=counts)


def published_parameters(info: genomics_pb2.ModelInfo) -> RiskParameters:
    """The risk parameters GetModelInfo publishes for one model, after checking the model's SHA-256 covers them.

    sha256(package_manifest) must be the model's identity, and the manifest must list
    the SHA-256 of the parameters' bytes: then they are the package's own file.
    """
    name = f"{info.model.name} {info.model.version}"
    if not info.risk_parameters_json:
        raise FailedPrecondition(f"model {name} publishes no risk parameters (an XGBoost package): assess on the server")
    manifest_bytes = info.package_manifest.encode()
    if hashlib.sha256(manifest_bytes).hexdigest() != info.model.sha256:
        raise FailedPrecondition(f"the manifest published for model {name} does not match its SHA-256")
    parameters_bytes = info.risk_parameters_json.encode()
    files = json.loads(manifest_bytes).get("files", {})
    if files.get(RISK_PARAMETERS_FILE) != hashlib.sha256(parameters_bytes).hexdigest():
        raise FailedPrecondition(f"the risk parameters published for model {name} are not the package's")
    return RiskParameters.from_json(json.loads(parameters_bytes))


def build_enum(build: str) -> genomics_pb2.GenomeBuild:
    return BUILDS[build]


def layout_of(response: genomics_pb2.GetScoreLayoutResponse) -> EncryptedScoreLayout:
    """The published layout; a private score's has no weights."""
    return EncryptedScoreLayout(
        response.pgs_id,
        tuple(response.variant_ids),
        tuple(response.effect_alleles),
        () if response.private_weights else tuple(response.weights),
        private=response.private_weights,
    )


def matching_layout(layout: EncryptedScoreLayout) -> EncryptedScoreLayout:
    """The layout to match a VCF against: a private score's with weight 1 each, since matching needs
    only variants and alleles (the local plaintext score is then a dosage count, not the score)."""
    return replace(layout, weights=(1.0,) * len(layout)) if layout.private else layout


@dataclass(frozen=True)
class ClientKeys:
    """A private CKKS context and the exact public context bytes registered for it.

    Kept together because TenSEAL saves a private context as its secret key alone and makes new
    Galois keys when loading it: valid, but other bytes, so another SHA-256 and another registration.
    """

    context: ts.Context
    public: bytes

    @classmethod
    def load_or_create(cls, path: Path) -> ClientKeys:
        """The keys kept in `path` (secret key included: written 0600, never overwritten), made there on first use."""
        if path.exists():
            blob = path.read_bytes()
            try:
                (length,) = struct.unpack_from("<Q", blob)
                context = ts.context_from(blob[8 : 8 + length])
                public = blob[8 + length :]
            except Exception:
                raise InvalidInput.of([FieldViolation("keys", "is not a key file written by clinpred")]) from None
            if not context.is_private() or not public:
                raise InvalidInput.of([FieldViolation("keys", "holds no secret key or no public context; remove it")])
            return cls(context, public)
        context = create_client_context()
        keys = cls(context, public_context_bytes(context))
        private = bytes(context.serialize(save_public_key=True, save_secret_key=True, save_galois_keys=False,
                                          save_relin_keys=False))
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(struct.pack("<Q", len(private)) + private + keys.public)
        return keys


def error_reason(error: grpc.RpcError) -> str:
    """The google.rpc.ErrorInfo reason of a failed call, or ""."""
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        return ""
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


def reference_of(response: genomics_pb2.GetScoreLayoutResponse) -> ScoreDistribution:
    reference = response.reference
    return ScoreDistribution(response.pgs_id, reference.mean, reference.sd, tuple(reference.quantiles), reference.sample_size, 0)


@dataclass(frozen=True)
class EncryptedScoreResult:
    """A decrypted encrypted score, with what the client computes from it locally."""

    pgs_id: str
    cancer: str
    score_sum: float
    contributions: npt.NDArray[np.float64]  # in layout order; empty for a private score
    layout: EncryptedScoreLayout
    z_score: float
    percentile: float
    plaintext: SampleScore  # the client's own local scoring, for matching counts and checks (not a private score's sum)
    model: common_pb2.ModelIdentity
    server_seconds: float  # the scoring call, as the client waited for it (network included)
    bytes_sent: int  # ciphertexts, and the public context when sent inline
    bytes_received: int
    registered_keys: bool  # this call registered the public context first (about 35 MB more sent)

    def top_variants(self, count: int = 10) -> list[tuple[str, float]]:
        order = np.argsort(-np.abs(self.contributions))[:count]
        return [(self.layout.variant_ids[i], float(self.contributions[i])) for i in order]

    def risk(self, parameters: RiskParameters, age: float, sex: str, relatives: int) -> RiskAnswer:
        """Absolute risk from the decrypted score with the parameters the server publishes (`published_parameters`)."""
        if parameters.pgs_id != self.pgs_id:
            raise FailedPrecondition(f"risk parameters of {parameters.pgs_id} given for a {self.pgs_id} score")
        plain = self.plaintext
        return assess_score(
            parameters, self.score_sum, age, sex, relatives,
            variants_matched=plain.variants_matched, imputed_variance=imputed_score_variance(plain.contributions),
        )


class GenomicsClient:
    def __init__(
        self,
        target: str,
        timeout: float = 120.0,
        tls: ClientTls | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        *,
        sealed: bool = False,
        sealing_key: SealingKey | None = None,
    ) -> None:
        """`sealed=True`: every unary call travels sealed to the service's key (or the pinned `sealing_key`);
        the streaming ones (a VCF larger than one message, encrypted scoring) then raise SealedStreamError."""
        self.channel = open_channel(target, tls)
        service = genomics_pb2.DESCRIPTOR.services_by_name["GenomicRiskService"]
        calls = SealedChannel(self.channel, service, sealing_key) if sealed else self.channel
        self.stub = genomics_pb2_grpc.GenomicRiskServiceStub(calls)
        self.timeout = timeout
        self.chunk_bytes = chunk_bytes
        self._context: ts.Context | None = None  # made at the first encrypted score, reused after
        self._public: tuple[ts.Context, bytes] | None = None  # the last context serialised (35 MB, 0.1 s to make)
        self._kept = False  # the keys came from use_keys: perhaps registered by an earlier process
        self._registered: set[str] = set()  # digests this client registered (a replica may have dropped them)
        self.registrations = 0  # RegisterEvaluationKeys calls made
        self.last_bytes_sent = 0  # by the last ScoreEncrypted: ciphertexts, and the context if inline

    def use_keys(self, keys: ClientKeys) -> None:
        """Encrypt with `keys` from now on, naming their registered public context (registered again if needed)."""
        self._context, self._public, self._kept = keys.context, (keys.context, keys.public), True

    def __enter__(self) -> GenomicsClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.channel.close()

    def list_scores(self) -> genomics_pb2.ListScoresResponse:
        return self.stub.ListScores(genomics_pb2.ListScoresRequest(), timeout=self.timeout)

    def model_info(self) -> genomics_pb2.GetModelInfoResponse:
        return self.stub.GetModelInfo(genomics_pb2.GetModelInfoRequest(), timeout=self.timeout)

    def risk_parameters(self, model: common_pb2.ModelIdentity) -> RiskParameters:
        """The published risk parameters of the serving model `model` (e.g. an encrypted score's), checked."""
        for info in self.model_info().models:
            if info.model.sha256 == model.sha256:
                return published_parameters(info)
        raise FailedPrecondition(f"the server no longer serves model {model.name} {model.version}")

    def assess(
        self,
        vcf: bytes | Path | str,
        build: str,
        patients: Sequence[genomics_pb2.Patient],
        cancers: Sequence[str] = (),
        top_variants: int = 0,
    ) -> genomics_pb2.VcfAssessment:
        """Assesses a VCF (bytes or a path): in one message when small, else as a streamed upload."""
        assessment = genomics_pb2.Assessment(
            build=build_enum(build), patients=list(patients), cancers=list(cancers), top_variants=top_variants
        )
        if isinstance(vcf, bytes) and len(vcf) <= SINGLE_MESSAGE_BYTES:
            request = genomics_pb2.AssessVcfRequest(assessment=assessment, vcf=vcf)
            return self.stub.AssessVcf(request, timeout=self.timeout).assessment
        if not isinstance(vcf, bytes) and Path(vcf).stat().st_size <= SINGLE_MESSAGE_BYTES:
            return self.assess(Path(vcf).read_bytes(), build, patients, cancers, top_variants)
        return self.upload(vcf, assessment)

    def upload(self, vcf: bytes | Path | str, assessment: genomics_pb2.Assessment) -> genomics_pb2.VcfAssessment:
        """The client-streaming upload: header (with length and SHA-256), then chunks."""
        length, digest = _length_and_sha256(vcf)
        header = genomics_pb2.UploadHeader(assessment=assessment, content_length=length, content_sha256=digest)

        def messages() -> Iterator[genomics_pb2.AssessVcfUploadRequest]:
            yield genomics_pb2.AssessVcfUploadRequest(header=header)
            for chunk in _chunks(vcf, self.chunk_bytes):
                yield genomics_pb2.AssessVcfUploadRequest(chunk=chunk)

        return self.stub.AssessVcfUpload(messages(), timeout=self.timeout).assessment

    def score_layout(self, score: str) -> genomics_pb2.GetScoreLayoutResponse:
        return self.stub.GetScoreLayout(genomics_pb2.GetScoreLayoutRequest(score=score), timeout=self.timeout)

    def register_evaluation_keys(self, public_context: bytes) -> genomics_pb2.RegisterEvaluationKeysResponse:
        """Registers a public context (with its Galois keys) for this caller's tenant; it is then named by SHA-256."""
        digest = context_sha256(public_context)
        header = genomics_pb2.EvaluationKeysHeader(public_context_length=len(public_context), public_context_sha256=digest)

        def messages() -> Iterator[genomics_pb2.RegisterEvaluationKeysRequest]:
            yield genomics_pb2.RegisterEvaluationKeysRequest(header=header)
            for piece in _pieces(public_context, self.chunk_bytes):
                yield genomics_pb2.RegisterEvaluationKeysRequest(public_context_chunk=piece)

        answer: genomics_pb2.RegisterEvaluationKeysResponse = self.stub.RegisterEvaluationKeys(messages(), timeout=self.timeout)
        self._registered.add(answer.public_context_sha256)
        self.registrations += 1
        return answer

    def score_registered(
        self, score: str, public_context: bytes, ciphertexts: Sequence[bytes], *, maybe_registered: bool = False
    ) -> tuple[EncryptedScore, genomics_pb2.EncryptedScoreSummary]:
        """Ciphertexts up with the SHA-256 of `public_context`, registering it first if this client has not
        (unless `maybe_registered`: an earlier process may have), and again, then retrying once, when the
        replica answers that it does not hold it. Should the retry reach yet another replica without it
        (calls balanced across pods), the last try sends the context inline, which any replica serves."""
        digest = context_sha256(public_context)
        if digest not in self._registered and not maybe_registered:
            self.register_evaluation_keys(public_context)
        for attempt in range(2):
            try:
                return self._score(score, b"", digest, ciphertexts)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.FAILED_PRECONDITION or error_reason(error) != NOT_REGISTERED_REASON:
                    raise
            self._registered.discard(digest)
            if attempt == 0:
                self.register_evaluation_keys(public_context)
        return self._score(score, public_context, "", ciphertexts)

    def score_ciphertexts(
        self, score: str, public_context: bytes, ciphertexts: Sequence[bytes]
    ) -> tuple[EncryptedScore, genomics_pb2.EncryptedScoreSummary]:
        """The exchange without registration, as before it existed: the whole public context (about 35 MB)
        and the ciphertexts up, encrypted score and contributions down."""
        return self._score(score, public_context, "", ciphertexts)

    def _score(
        self, score: str, public_context: bytes, digest: str, ciphertexts: Sequence[bytes]
    ) -> tuple[EncryptedScore, genomics_pb2.EncryptedScoreSummary]:
        self.last_bytes_sent = len(public_context) + sum(map(len, ciphertexts))
        header = genomics_pb2.EncryptedScoreHeader(
            score=score,
            public_context_length=len(public_context),
            ciphertext_lengths=[len(c) for c in ciphertexts],
            public_context_sha256=digest,
        )

        def messages() -> Iterator[genomics_pb2.ScoreEncryptedRequest]:
            yield genomics_pb2.ScoreEncryptedRequest(header=header)
            for piece in _pieces(public_context, self.chunk_bytes):
                yield genomics_pb2.ScoreEncryptedRequest(public_context_chunk=piece)
            for index, blob in enumerate(ciphertexts):
                for piece in _pieces(blob, self.chunk_bytes):
                    chunk = genomics_pb2.CiphertextChunk(index=index, data=piece)
                    yield genomics_pb2.ScoreEncryptedRequest(ciphertext_chunk=chunk)

        summary = genomics_pb2.EncryptedScoreSummary()
        score_bytes = bytearray()
        contributions: list[bytearray] = []
        for answer in self.stub.ScoreEncrypted(messages(), timeout=self.timeout):
            part = answer.WhichOneof("part")
            if part == "summary":
                summary = answer.summary
                contributions = [bytearray() for _ in summary.contribution_lengths]
            elif part == "score_chunk":
                score_bytes += answer.score_chunk.data
            elif part == "contribution_chunk":
                contributions[answer.contribution_chunk.index] += answer.contribution_chunk.data
        if len(score_bytes) != summary.score_length or [len(c) for c in contributions] != list(summary.contribution_lengths):
            raise ModelUnavailable("the encrypted answer arrived incomplete; retry the call")
        result = EncryptedScore(summary.pgs_id, bytes(score_bytes), tuple(bytes(c) for c in contributions))
        return result, summary

    def score_encrypted(
        self,
        vcf: bytes | Path | str | Genotypes,
        build: str,
        score: str,
        sample: str | None = None,
        context: ts.Context | None = None,
        register: bool = True,
    ) -> EncryptedScoreResult:
        """Scores one sample of a VCF without the server seeing its genotypes or its score.

        `sample`: the VCF column (default: the only or first sample). `context`: a private CKKS context
        from `create_client_context()` (default: one made at this client's first call and reused); a
        given one is tried by digest first, since it may have been registered by an earlier process.
        `register`: name the registered public context by SHA-256 (registering it when needed); False sends
        the whole public context with the call, as before registration existed.
        """
        import time

        published = self.score_layout(score)
        layout = layout_of(published)
        layout_build = next((name for name, number in BUILDS.items() if number == published.build), None)
        if layout_build != build:
            raise InvalidInput.of(
                [FieldViolation("build", f"the server publishes {layout.pgs_id} in {layout_build}; give a VCF in that build")]
            )
        scoring_file = layout_scoring_file(matching_layout(layout), layout_build, f"{layout.pgs_id} (published layout)")
        source = vcf if isinstance(vcf, (Genotypes, bytes)) else Path(vcf)
        local = score_vcf(source, scoring_file, build=build)
        samples = [s.sample for s in local]
        if sample is not None and sample not in samples:
            raise InvalidInput.of([FieldViolation("sample", "is not a sample column of the VCF")])
        column = 0 if sample is None else samples.index(sample)
        dosages = dosages_for_layout(local[column], matching_layout(layout))
        given = context is not None or self._kept
        registrations = self.registrations
        if context is None:
            self._context = self._context or create_client_context()
            context = self._context
        request = encrypt_dosages(context, dosages, layout)
        if self._public is None or self._public[0] is not context:
            self._public = (context, public_context_bytes(context))
        public = self._public[1]
        if register and not given and context_sha256(public) not in self._registered:
            self.register_evaluation_keys(public)  # before the clock starts: once per context, not per call
        started = time.perf_counter()
        if register:
            answer, summary = self.score_registered(score, public, request.ciphertexts, maybe_registered=given)
        else:
            answer, summary = self.score_ciphertexts(score, public, request.ciphertexts)
        seconds = time.perf_counter() - started
        decrypted = decrypt_score(context, answer, layout)
        reference = reference_of(published)
        return EncryptedScoreResult(
            pgs_id=layout.pgs_id,
            cancer=published.cancer,
            score_sum=decrypted.score_sum,
            contributions=decrypted.contributions,
            layout=layout,
            z_score=float(reference.standardise(decrypted.score_sum)),
            percentile=reference.percentile(decrypted.score_sum),
            plaintext=local[column],
            model=summary.model,
            server_seconds=seconds,
            bytes_sent=self.last_bytes_sent,
            bytes_received=len(answer.score) + sum(map(len, answer.contributions)),
            registered_keys=self.registrations > registrations,
        )


def _length_and_sha256(vcf: bytes | Path | str) -> tuple[int, str]:
    digest = hashlib.sha256()
    length = 0
    for chunk in _chunks(vcf, CHUNK_BYTES):
        digest.update(chunk)
        length += len(chunk)
    return length, digest.hexdigest()


def _chunks(vcf: bytes | Path | str | os.PathLike[str], size: int) -> Iterator[bytes]:
    if isinstance(vcf, bytes):
        yield from _pieces(vcf, size)
        return
    with Path(vcf).open("rb") as handle:
        yield from iter(lambda: handle.read(size), b"")


def _pieces(blob: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(blob), size):
        yield blob[start : start + size]
