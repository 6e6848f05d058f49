"""A Python client of clinpred.genomics.v1 for genetics units, including encrypted scoring.

Plain scoring sends the VCF (one message when small, else a client-streamed
upload) and gets every configured cancer's score, percentile and risk.

Encrypted scoring keeps genotypes and the score unreadable to the server:

    with GenomicsClient("127.0.0.1:50053") as client:
        result = client.score_encrypted(Path("patient.vcf.gz"), build="GRCh37", score="breast")
    result.score_sum, result.percentile          # decrypted and computed here, on the client
    result.risk(package, age=52, sex="female", family_history=False)   # absolute risk, locally

The client fetches the published variant order (GetScoreLayout), matches its
own VCF locally with the same domain code as the server, builds a CKKS
context and keys here, encrypts the dosage vector, sends the ciphertexts with
the public context only, and decrypts the encrypted score and per-variant
contributions the server returns.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import tenseal as ts

from clinpred.pilots.common.errors import FailedPrecondition, FieldViolation, InvalidInput, ModelUnavailable
from clinpred.pilots.common.model_package import ModelPackage
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
from clinpred.pilots.genomics.package_format import ScoreDistribution
from clinpred.pilots.genomics.scoring import SampleScore, score_vcf
from clinpred.pilots.genomics.vcf import Genotypes
from clinpred.services.api.common.v1 import prediction_pb2 as common_pb2
from clinpred.services.api.genomics.v1 import genomics_pb2, genomics_pb2_grpc
from clinpred.services.common.channel import ClientTls, open_channel
from clinpred.services.common.sealed_channel import SealedChannel
from clinpred.services.common.sealing_keys import SealingKey

if TYPE_CHECKING:
    from clinpred.pilots.genomics.risk import CancerRisk

CHUNK_BYTES = 1024 * 1024
# Larger VCFs go through the client-streaming upload; gRPC's default message limit is 4 MiB.
SINGLE_MESSAGE_BYTES = 3 * 1024 * 1024
SEXES = {"female": genomics_pb2.SEX_FEMALE, "male": genomics_pb2.SEX_MALE}
BUILDS = {"GRCh37": genomics_pb2.GENOME_BUILD_GRCH37, "GRCh38": genomics_pb2.GENOME_BUILD_GRCH38}


def patient(
    age: float, sex: str, family_history: Mapping[str, bool] | Iterable[str] = (), sample_id: str = ""
) -> genomics_pb2.Patient:
    """A Patient message; `family_history` maps cancer -> affected relative, or lists the cancers affected."""
    history = dict(family_history) if isinstance(family_history, Mapping) else {c: True for c in family_history}
    return genomics_pb2.Patient(sample_id=sample_id, age=age, sex=SEXES[sex], family_history=history)


def build_enum(build: str) -> genomics_pb2.GenomeBuild:
    return BUILDS[build]


def layout_of(response: genomics_pb2.GetScoreLayoutResponse) -> EncryptedScoreLayout:
    return EncryptedScoreLayout(
        response.pgs_id, tuple(response.variant_ids), tuple(response.effect_alleles), tuple(response.weights)
    )


def reference_of(response: genomics_pb2.GetScoreLayoutResponse) -> ScoreDistribution:
    reference = response.reference
    return ScoreDistribution(response.pgs_id, reference.mean, reference.sd, tuple(reference.quantiles), reference.sample_size, 0)


@dataclass(frozen=True)
class EncryptedScoreResult:
    """A decrypted encrypted score, with what the client computes from it locally."""

    pgs_id: str
    cancer: str
    score_sum: float
    contributions: npt.NDArray[np.float64]  # in layout order
    layout: EncryptedScoreLayout
    z_score: float
    percentile: float
    plaintext: SampleScore  # the client's own local scoring, for matching counts and checks
    model: common_pb2.ModelIdentity
    server_seconds: float

    def top_variants(self, count: int = 10) -> list[tuple[str, float]]:
        order = np.argsort(-np.abs(self.contributions))[:count]
        return [(self.layout.variant_ids[i], float(self.contributions[i])) for i in order]

    def risk(self, package: ModelPackage | Path | str, age: float, sex: str, family_history: bool) -> CancerRisk:
        """Absolute risk from the decrypted score with a local copy of the model package (checked by SHA-256)."""
        # Imported here: only a caller computing a local risk needs the model runtime (ONNX, XGBoost, SciPy).
        from clinpred.pilots.genomics.risk import GenomicRiskPredictor

        predictor = GenomicRiskPredictor.load(package)
        if predictor.identity.sha256 != self.model.sha256:
            raise FailedPrecondition(
                f"local package {predictor.identity.name} {predictor.identity.version} is not the server's model"
                f" {self.model.name} {self.model.version}"
            )
        plain = self.plaintext
        return predictor.explain(
            predictor.predict_score_sum(
                self.score_sum,
                age,
                sex,
                family_history,
                variants_total=plain.variants_total,
                variants_matched=plain.variants_matched,
                variants_missing=plain.variants_missing,
                variants_imputed=plain.variants_imputed,
                overlap=plain.overlap,
            )
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

    def __enter__(self) -> GenomicsClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.channel.close()

    def list_scores(self) -> genomics_pb2.ListScoresResponse:
        return self.stub.ListScores(genomics_pb2.ListScoresRequest(), timeout=self.timeout)

    def model_info(self) -> genomics_pb2.GetModelInfoResponse:
        return self.stub.GetModelInfo(genomics_pb2.GetModelInfoRequest(), timeout=self.timeout)

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

    def score_ciphertexts(
        self, score: str, public_context: bytes, ciphertexts: Sequence[bytes]
    ) -> tuple[EncryptedScore, genomics_pb2.EncryptedScoreSummary]:
        """The raw exchange: public context and ciphertexts up, encrypted score and contributions down."""
        header = genomics_pb2.EncryptedScoreHeader(
            score=score, public_context_length=len(public_context), ciphertext_lengths=[len(c) for c in ciphertexts]
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
    ) -> EncryptedScoreResult:
        """Scores one sample of a VCF without the server seeing its genotypes or its score.

        `sample`: the VCF column (default: the only or first sample). `context`: a private CKKS context
        from `create_client_context()` (default: a new one, with fresh keys).
        """
        import time

        published = self.score_layout(score)
        layout = layout_of(published)
        layout_build = next((name for name, number in BUILDS.items() if number == published.build), None)
        if layout_build != build:
            raise InvalidInput.of(
                [FieldViolation("build", f"the server publishes {layout.pgs_id} in {layout_build}; give a VCF in that build")]
            )
        scoring_file = layout_scoring_file(layout, layout_build, f"{layout.pgs_id} (published layout)")
        source = vcf if isinstance(vcf, (Genotypes, bytes)) else Path(vcf)
        local = score_vcf(source, scoring_file, build=build)
        samples = [s.sample for s in local]
        if sample is not None and sample not in samples:
            raise InvalidInput.of([FieldViolation("sample", "is not a sample column of the VCF")])
        column = 0 if sample is None else samples.index(sample)
        dosages = dosages_for_layout(local[column], layout)
        context = context or create_client_context()
        request = encrypt_dosages(context, dosages, layout)
        started = time.perf_counter()
        answer, summary = self.score_ciphertexts(score, public_context_bytes(context), request.ciphertexts)
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
