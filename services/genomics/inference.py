"""Genomic risk behind the servicer: the loaded models (one per cancer), their scoring files, the codec."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from clinpred.pilots.common.errors import ClinpredError, FailedPrecondition, FieldViolation, ModelPackageError, NotFound
from clinpred.pilots.genomics.encrypted import EncryptedScore, EncryptedScoreLayout, score_encrypted
from clinpred.pilots.genomics.risk import GenomicRiskPredictor
from clinpred.pilots.genomics.scoring import score_vcf
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.genomics.text_stream import TextSource
from clinpred.pilots.genomics.vcf import read_vcf
from clinpred.services.common.metrics import stage
from clinpred.services.common.runtime import ModelRuntime
from clinpred.services.genomics.codec import AssessmentSpec, EncryptedRequest, GenomicsCodec, ScoreStatus, VcfResult
from clinpred.services.genomics.scores import ScoringFiles
from clinpred.services.genomics.settings import GenomicsSettings

SERVICE = "genomics"
logger = logging.getLogger("clinpred.genomics")
# Domain calls name the VCF "upload": file names and sample ids never reach messages or logs.
UPLOAD_NAME = "upload"


def package_build(predictor: GenomicRiskPredictor) -> str | None:
    """The build of the model package's own score layout."""
    build = predictor.package.metadata.get("genome_build")
    return str(build) if build else None


@dataclass(frozen=True)
class VcfPaths:
    """Field paths of a request's VCF, build and assessment, for the field violations of domain errors."""

    vcf: str
    build: str
    assessment: str


SINGLE_MESSAGE = VcfPaths("vcf", "assessment.build", "assessment")
UPLOAD = VcfPaths("stream[*].chunk", "stream[0].header.assessment.build", "stream[0].header.assessment")


@contextmanager
def naming_fields(field_of: Callable[[ClinpredError], str]) -> Iterator[None]:
    """Domain errors get a field violation, with the domain's message (line and column, never content)."""
    try:
        yield
    except ClinpredError as error:
        if error.violations:
            raise
        raise type(error)(error.message, [FieldViolation(field_of(error), error.message)]) from None


def vcf_fields(vcf: str, build: str) -> Callable[[ClinpredError], str]:
    """The declared build for FailedPrecondition (the VCF's header or positions contradict it), else the VCF."""
    return lambda error: build if isinstance(error, FailedPrecondition) else vcf


def encrypted_field(error: ClinpredError) -> str:
    if error.message.startswith("encrypted context"):
        return "stream[*].public_context_chunk"
    if "ciphertext(s)" in error.message:
        return "stream[0].header.ciphertext_lengths"
    return "stream[*].ciphertext_chunk"


class GenomicsInference:
    def __init__(self, settings: GenomicsSettings) -> None:
        self.settings = settings
        names = [settings.model_name, *(n for n in settings.additional_models if n != settings.model_name)]
        self.runtimes: list[ModelRuntime[GenomicRiskPredictor]] = [
            ModelRuntime(
                SERVICE,
                settings if number == 0 else settings.model_copy(update={"model_name": name, "model_version": None}),
                GenomicRiskPredictor,
            )
            for number, name in enumerate(names)
        ]
        self.scoring_files = ScoringFiles(settings.scoring_dir)

    def load(self) -> None:
        cancers: dict[str, str] = {}
        for runtime in self.runtimes:
            predictor = runtime.load()
            if predictor.cancer in cancers:
                raise ModelPackageError(
                    f"models {cancers[predictor.cancer]} and {predictor.identity.name} both assess {predictor.cancer} cancer"
                )
            cancers[predictor.cancer] = predictor.identity.name
        self.__dict__.pop("codec", None)
        # Reads the scoring directory now, so the first request does not wait for it and problems show at start.
        for status in self.list_scores():
            if status.problem:
                logger.warning("%s score %s is not usable: %s", status.cancer, status.predictor.pgs_id, status.problem)

    @property
    def predictors(self) -> dict[str, GenomicRiskPredictor]:
        """By cancer, in configured order."""
        return {p.cancer: p for p in (runtime.predictor for runtime in self.runtimes)}

    @cached_property
    def codec(self) -> GenomicsCodec:
        predictors = self.predictors
        settings = self.settings
        keys = [*predictors, *(p.pgs_id for p in predictors.values())]
        return GenomicsCodec(
            list(predictors), keys, settings.max_batch_size, settings.max_upload_bytes, settings.max_top_variants,
            settings.max_context_bytes, settings.max_ciphertext_bytes,
        )

    def predictor(self, key: str) -> GenomicRiskPredictor:
        """The model of a cancer or PGS id (the codec has checked it is configured)."""
        for cancer, predictor in self.predictors.items():
            if key in (cancer, predictor.pgs_id):
                return predictor
        raise NotFound("no such score")

    def scoring_file(self, predictor: GenomicRiskPredictor, build: str) -> ScoringFile:
        return self.scoring_files.choose(
            predictor.pgs_id, build, predictor.layout, package_build(predictor), predictor.identity.name,
            str(predictor.package.metadata.get("pgs_name") or ""),
        )

    def assess(self, spec: AssessmentSpec, vcf: TextSource, paths: VcfPaths) -> VcfResult:
        """Reads the VCF once (only the scores' positions), scores it per cancer, assesses the chosen samples."""
        predictors = self.predictors
        scores = {cancer: self.scoring_file(predictors[cancer], spec.build) for cancer in spec.cancers}
        sites = {(c, int(p)) for s in scores.values() for c, p in zip(s.chrom, s.pos, strict=True) if c is not None}
        with stage(SERVICE, "decode"), naming_fields(vcf_fields(paths.vcf, paths.build)):
            genotypes = read_vcf(
                vcf, name=UPLOAD_NAME, declared_build=spec.build, sites=sites, max_bytes=self.settings.max_vcf_bytes
            )
        selection = self.codec.select_samples(spec, genotypes.samples, paths.assessment)
        with stage(SERVICE, "score"), naming_fields(lambda _: paths.vcf):
            sample_scores = {
                cancer: score_vcf(genotypes, scores[cancer], min_overlap=self.settings.min_overlap) for cancer in spec.cancers
            }
        with stage(SERVICE, "predict"):
            samples = tuple(
                (
                    genotypes.samples[column],
                    factors,
                    tuple(
                        predictors[cancer].assess(
                            sample_scores[cancer][column], factors.age, factors.sex, factors.has_family_history(cancer),
                            top_variants=spec.top_variants,
                        )
                        for cancer in spec.cancers
                    ),
                )
                for column, factors in zip(selection.columns, selection.factors, strict=True)
            )
        return VcfResult(samples, genotypes.build or spec.build, genotypes.build_evidence, genotypes.n_samples, scores)

    def list_scores(self) -> list[ScoreStatus]:
        statuses = []
        for cancer, predictor in self.predictors.items():
            builds, problem = self.scoring_files.builds(predictor.pgs_id, package_build(predictor))
            scoring_file = self.scoring_file(predictor, builds[0]) if builds else None
            statuses.append(ScoreStatus(cancer, predictor, scoring_file, builds, problem))
        return statuses

    def layout_build(self, predictor: GenomicRiskPredictor) -> str | None:
        return package_build(predictor)

    def layout(self, key: str) -> tuple[GenomicRiskPredictor, EncryptedScoreLayout]:
        """The published variant order of a score: its model package's layout, in the package's build."""
        predictor = self.predictor(key)
        return predictor, predictor.layout

    def score_encrypted(self, request: EncryptedRequest) -> tuple[GenomicRiskPredictor, EncryptedScore]:
        predictor, layout = self.layout(request.score)
        with stage(SERVICE, "encrypted_score"), naming_fields(encrypted_field):
            return predictor, score_encrypted(request.public_context, request.ciphertexts, layout)
