"""Genomic risk behind the servicer: the loaded models (one per cancer) and their scoring files.

Takes decoded domain requests, calls the pilot and returns domain results;
times its own stages (read_vcf, score, predict, explain, encrypted_score, register_evaluation_keys).
"""

from __future__ import annotations

import logging

from clinpred.pilots.common.call import Call
from clinpred.pilots.common.errors import ModelPackageError, NotFound
from clinpred.pilots.genomics.assessment import (
    AssessmentRequest,
    SampleAssessment,
    ScoreSource,
    VcfAssessment,
    select_samples,
)
from clinpred.pilots.genomics.encrypted import EncryptedScoreAnswer, EncryptedScoreRequest, score_encrypted
from clinpred.pilots.genomics.evaluation_keys import EvaluationKeys, EvaluationKeysRequest, Registration
from clinpred.pilots.genomics.risk import GenomicRiskPredictor
from clinpred.pilots.genomics.scoring import score_vcf
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.genomics.vcf import read_vcf
from clinpred.services.common.metrics import stage
from clinpred.services.common.runtime import ModelRuntime
from clinpred.services.genomics.scores import PublishedLayout, ScoreStatus, ScoringFiles
from clinpred.services.genomics.settings import GenomicsSettings

SERVICE = "genomics"
logger = logging.getLogger("clinpred.genomics")
# Domain calls name the VCF "upload": file names and sample ids never reach messages or logs.
UPLOAD_NAME = "upload"


class GenomicsHandler:
    def __init__(self, settings: GenomicsSettings) -> None:
        self.settings = settings
        self.runtimes: list[ModelRuntime[GenomicRiskPredictor]] = [
            ModelRuntime(SERVICE, settings.model_copy(update={"model_name": n, "model_version": v}), GenomicRiskPredictor)
            for n, v in settings.pinned_models()
        ]
        self.scoring_files = ScoringFiles(settings.scoring_dir)
        self.evaluation_keys = EvaluationKeys(
            settings.evaluation_keys_ttl_seconds,
            settings.max_evaluation_keys_bytes,
            settings.max_evaluation_keys_bytes_per_tenant,
        )
        self.private_scores = frozenset(settings.private_scores)

    def load(self) -> None:
        cancers: dict[str, str] = {}
        for runtime in self.runtimes:
            predictor = runtime.load()
            if predictor.cancer in cancers:
                raise ModelPackageError(
                    f"models {cancers[predictor.cancer]} and {predictor.identity.name} both assess {predictor.cancer} cancer"
                )
            cancers[predictor.cancer] = predictor.identity.name
        # Reads the scoring directory now, so the first request does not wait for it and problems show at start.
        for status in self.score_statuses():
            if status.problem:
                logger.warning("%s score %s is not usable: %s", status.cancer, status.source.pgs_id, status.problem)

    @property
    def predictors(self) -> dict[str, GenomicRiskPredictor]:
        """By cancer, in configured order."""
        return {p.cancer: p for p in (runtime.predictor for runtime in self.runtimes)}

    @property
    def cancers(self) -> tuple[str, ...]:
        """The configured cancers, in configured order."""
        return tuple(self.predictors)

    @property
    def score_keys(self) -> tuple[str, ...]:
        """What a request may name a score by: its cancer or its PGS id."""
        predictors = self.predictors
        return (*predictors, *(p.pgs_id for p in predictors.values()))

    def predictor(self, key: str) -> GenomicRiskPredictor:
        """The model of a cancer or PGS id (the codec has checked it is configured)."""
        for cancer, predictor in self.predictors.items():
            if key in (cancer, predictor.pgs_id):
                return predictor
        raise NotFound("no such score")

    def _scoring_file(self, predictor: GenomicRiskPredictor, build: str) -> ScoringFile:
        return self.scoring_files.choose(
            predictor.pgs_id, build, predictor.layout, predictor.genome_build, predictor.identity.name, predictor.pgs_name
        )

    def list_scores(self, _: None, call: Call) -> list[ScoreStatus]:
        return self.score_statuses()

    def score_statuses(self) -> list[ScoreStatus]:
        statuses = []
        for cancer, predictor in self.predictors.items():
            builds, problem = self.scoring_files.builds(predictor.pgs_id, predictor.genome_build)
            scoring_file = self._scoring_file(predictor, builds[0]) if builds else None
            header = scoring_file.header if scoring_file is not None else None
            statuses.append(
                ScoreStatus(
                    cancer=cancer,
                    source=ScoreSource(
                        pgs_id=predictor.pgs_id,
                        pgs_name=(header.pgs_name if header else None) or predictor.pgs_name,
                        scoring_file=scoring_file.name if scoring_file is not None else "",
                        build=scoring_file.build if scoring_file is not None else None,
                    ),
                    trait_reported=(header.trait_reported if header else None) or "",
                    variants=len(scoring_file) if scoring_file is not None else len(predictor.layout),
                    builds=builds,
                    horizon_years=predictor.horizon_years,
                    model=predictor.identity,
                    problem=problem,
                )
            )
        return statuses

    def model_info(self, _: None, call: Call) -> tuple[GenomicRiskPredictor, ...]:
        return tuple(self.predictors.values())

    def published_layout(self, score: str) -> PublishedLayout:
        return PublishedLayout.of(self.predictor(score), self.private_scores)

    def layout(self, score: str, call: Call) -> PublishedLayout:
        """The model whose published layout (variant order, in the package's build) scores `score`."""
        published = self.published_layout(score)
        call.answered_by(published.predictor.identity)
        return published

    def assess(self, request: AssessmentRequest, call: Call) -> VcfAssessment:
        """Reads the VCF once (only the scores' positions), scores it per cancer, assesses the chosen samples."""
        predictors = self.predictors
        fields = request.fields
        scores = {cancer: self._scoring_file(predictors[cancer], request.build) for cancer in request.cancers}
        sites = {(c, int(p)) for s in scores.values() for c, p in zip(s.chrom, s.pos, strict=True) if c is not None}
        with stage(SERVICE, "read_vcf"):
            genotypes = read_vcf(
                request.vcf,
                name=UPLOAD_NAME,
                declared_build=request.build,
                sites=sites,
                max_bytes=self.settings.max_vcf_bytes,
                field=fields.vcf,
                build_field=fields.build,
                deadline=call.deadline,
            )
        selected = select_samples(request.patients, genotypes.samples, self.settings.max_batch_size, fields.patients)
        for column, _factors in selected:
            call.concerns(genotypes.samples[column])
        for cancer in request.cancers:
            call.answered_by(predictors[cancer].identity)
        call.check()
        with stage(SERVICE, "score"):
            sample_scores = {
                cancer: score_vcf(
                    genotypes, scores[cancer], min_overlap=self.settings.min_overlap, field=fields.vcf, deadline=call.deadline
                )
                for cancer in request.cancers
            }
        call.check()
        with stage(SERVICE, "predict"):
            predictions = [
                [
                    predictors[cancer].predict(
                        sample_scores[cancer][column],
                        factors.age,
                        factors.sex,
                        factors.relatives(cancer),
                        # A private score's per-variant contributions would reveal its weights.
                        top_variants=0 if self.published_layout(cancer).layout.private else request.top_variants,
                    )
                    for cancer in request.cancers
                ]
                for column, factors in selected
            ]
        with stage(SERVICE, "explain"):
            samples = tuple(
                SampleAssessment(genotypes.samples[column], tuple(predictors[p.cancer].explain(p) for p in row))
                for (column, _), row in zip(selected, predictions, strict=True)
            )
        build = genotypes.build or request.build
        sources = {
            cancer: ScoreSource(predictors[cancer].pgs_id, scoring_file.header.pgs_name or "", scoring_file.name, build)
            for cancer, scoring_file in scores.items()
        }
        return VcfAssessment(samples, build, genotypes.build_evidence, genotypes.n_samples, sources)

    def score_encrypted(self, request: EncryptedScoreRequest, call: Call) -> EncryptedScoreAnswer:
        published = self.published_layout(request.score)
        predictor = published.predictor
        call.answered_by(predictor.identity)
        # A registered context is loaded already; one sent inline is loaded (the costly part) in score_encrypted.
        context = (
            self.evaluation_keys.context(call.tenant, request.context_sha256)
            if request.context_sha256
            else request.public_context
        )
        with stage(SERVICE, "encrypted_score"):
            result = score_encrypted(context, request.ciphertexts, published.layout, request.fields, deadline=call.deadline)
        return EncryptedScoreAnswer(result, len(predictor.layout), predictor.identity)

    def register_evaluation_keys(self, request: EvaluationKeysRequest, call: Call) -> Registration:
        call.check()  # loading takes a fraction of a second: not for a caller who stopped waiting
        with stage(SERVICE, "register_evaluation_keys"):
            return self.evaluation_keys.register(call.tenant, request.public_context, request.field)
