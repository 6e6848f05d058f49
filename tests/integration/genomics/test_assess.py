"""Risk from a VCF, as a genetics unit sends it: equal to scoring and predicting directly with the domain."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clinpred.pilots.genomics.encrypted import layout_scoring_file
from clinpred.pilots.genomics.risk import GenomicRiskPredictor
from clinpred.pilots.genomics.scoring import score_vcf
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.services.api.common.v1 import prediction_pb2 as common_pb2
from clinpred.services.api.genomics.v1 import genomics_pb2
from clinpred.services.genomics.client import GenomicsClient, patient
from tests.integration.genomics.conftest import MAX_UPLOAD, SYNTHETIC_PGS, Served, Stub, vcf_text

GRCH37 = genomics_pb2.GENOME_BUILD_GRCH37
GRCH38 = genomics_pb2.GENOME_BUILD_GRCH38


def assess_request(vcf: bytes, patients: list[genomics_pb2.Patient], build: int = GRCH37,
                   cancers: tuple[str, ...] = ()) -> genomics_pb2.AssessVcfRequest:
    return genomics_pb2.AssessVcfRequest(
        assessment=genomics_pb2.Assessment(build=build, patients=patients, cancers=list(cancers)), vcf=vcf
    )


def check_equal_to_domain(
    answer: genomics_pb2.VcfAssessment, vcf: bytes, score: ScoringFile, predictor: GenomicRiskPredictor,
    factors: dict[str, tuple[float, str, int]], build: str = "GRCh37",
) -> None:
    """Every field of every answer equals score_vcf + GenomicRiskPredictor.assess called directly."""
    expected = {s.sample: s for s in score_vcf(vcf, score, build=build)}
    assert [s.sample_id for s in answer.samples] == [name for name in expected if name in factors]
    for assessed in answer.samples:
        (risk,) = assessed.risks
        age, sex, relatives = factors[assessed.sample_id]
        sample_score = expected[assessed.sample_id]
        direct = predictor.assess(sample_score, age, sex, relatives)
        assert risk.cancer == "breast" and risk.score.pgs_id == "PGS000004" and risk.score.scoring_file == score.name
        assert risk.score_sum == direct.score_sum
        assert risk.z_score == pytest.approx(direct.z_score, abs=1e-12)
        assert risk.percentile == pytest.approx(direct.percentile, abs=1e-12)
        assert risk.absolute_risk == pytest.approx(direct.absolute_risk, abs=1e-12)
        assert (risk.risk_interval.lower, risk.risk_interval.upper) == pytest.approx(direct.risk_interval, abs=1e-12)
        assert risk.risk_interval.method == direct.interval_method
        assert risk.affected_first_degree_relatives == relatives
        assert (risk.odds_ratio_per_sd, risk.unmeasured_variance_fraction, risk.score_effect_note) == (
            direct.odds_ratio_per_sd, direct.unmeasured_variance_fraction, direct.score_effect_note)
        assert risk.risk_interval.lower < risk.absolute_risk < risk.risk_interval.upper
        assert risk.risk_interval.coverage == direct.interval_level == 0.95
        assert risk.relative_risk == pytest.approx(direct.relative_risk, abs=1e-12)
        assert risk.population_average_risk == pytest.approx(direct.population_average_risk, abs=1e-12)
        assert risk.horizon_years == direct.horizon_years == 10.0
        assert [v.variant_id for v in risk.top_variants] == [v.variant_id for v in direct.top_variants]
        assert [v.contribution for v in risk.top_variants] == pytest.approx([v.contribution for v in direct.top_variants])
        shap = {c.feature: c.shap_value for c in risk.explanation.contributions}
        assert shap == pytest.approx({c.feature: c.shap_value for c in direct.explanation.contributions}, abs=1e-6)
        assert risk.explanation.base_value + sum(shap.values()) == pytest.approx(risk.explanation.margin, abs=1e-6)
        assert {c.feature: c.value for c in risk.explanation.contributions}["age"] == age
        reasons = [(r.feature, r.direction, r.text) for r in risk.explanation.top_reasons]
        assert reasons and reasons == [
            (r.feature, {"raises": common_pb2.DIRECTION_RAISES, "lowers": common_pb2.DIRECTION_LOWERS}[r.direction], r.text)
            for r in direct.explanation.top_reasons
        ]
        counts = risk.variants
        assert (counts.total, counts.matched, counts.missing, counts.imputed) == (
            direct.variants_total, direct.variants_matched, direct.variants_missing, direct.variants_imputed
        )
        assert dict(counts.unmatched) == sample_score.overlap.unmatched
        assert (risk.model.name, risk.model.sha256) == (predictor.identity.name, predictor.identity.sha256)


async def test_health_reports_serving(layout_served: Served) -> None:
    async with grpc.aio.insecure_channel(layout_served.target) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="clinpred.genomics.v1.GenomicRiskService")
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_fresh_clone_serves_its_score_from_the_model_package(layout_stub: Stub) -> None:
    (score,) = (await layout_stub.ListScores(genomics_pb2.ListScoresRequest())).scores
    assert (score.cancer, score.score.pgs_id, score.score.pgs_name) == ("breast", "PGS000004", "PRS313_BC")
    assert score.score.scoring_file == "breast-pgs000004/score_layout.json"
    assert list(score.builds) == [GRCH37] and score.variants == 313 and not score.problem
    info = await layout_stub.GetModelInfo(genomics_pb2.GetModelInfoRequest())
    assert [f.name for f in info.models[0].features] == ["polygenic_score_z", "age", "affected_first_degree_relatives"]
    assert info.models[0].metrics["calibration_max_relative_error"] < 0.05
    assert (info.models[0].min_age, info.models[0].max_age, list(info.models[0].sexes)) == (40, 70, [genomics_pb2.SEX_FEMALE])


async def test_a_scoring_directory_adds_the_other_build(dir_stub: Stub) -> None:
    (score,) = (await dir_stub.ListScores(genomics_pb2.ListScoresRequest())).scores
    assert score.score.scoring_file == "PGS000004_hm.txt" and score.trait_reported == "Breast cancer"
    assert list(score.builds) == [GRCH37, GRCH38]


async def test_multi_sample_vcf_equals_the_domain(
    dir_stub: Stub, pgs37: ScoringFile, breast_predictor: GenomicRiskPredictor
) -> None:
    vcf = vcf_text(pgs37, 6, seed=3, missing=0.03)
    patients = [patient(52, "female", {"breast": 2}), patient(61, "female", sample_id="person-004")]
    answer = (await dir_stub.AssessVcf(assess_request(vcf, patients))).assessment
    assert answer.vcf_samples == 6 and answer.build == GRCH37 and answer.build_evidence == "contig lengths"
    factors = {f"person-{k:03d}": (52.0, "female", 2) for k in range(6)}
    factors["person-004"] = (61.0, "female", 0)
    check_equal_to_domain(answer, vcf, pgs37, breast_predictor, factors)
    # with the scoring file's allele frequencies, missing genotypes are mean-imputed
    assert sum(s.risks[0].variants.imputed for s in answer.samples) > 0


async def test_the_package_layout_scores_like_the_pgs_catalog_file(
    layout_stub: Stub, dir_stub: Stub, pgs37: ScoringFile, breast_predictor: GenomicRiskPredictor
) -> None:
    vcf = vcf_text(pgs37, 3, seed=5)
    request = assess_request(vcf, [patient(45, "female")])
    from_layout = (await layout_stub.AssessVcf(request)).assessment
    from_file = (await dir_stub.AssessVcf(request)).assessment
    layout = layout_scoring_file(breast_predictor.layout, "GRCh37", "breast-pgs000004/score_layout.json")
    check_equal_to_domain(from_layout, vcf, layout, breast_predictor, {f"person-{k:03d}": (45.0, "female", 0)
                                                                         for k in range(3)})
    for a, b in zip(from_layout.samples, from_file.samples, strict=True):
        assert a.risks[0].score_sum == pytest.approx(b.risks[0].score_sum, abs=1e-12)
        assert a.risks[0].absolute_risk == pytest.approx(b.risks[0].absolute_risk, abs=1e-12)


async def test_the_package_alone_mean_imputes_missing_genotypes(
    layout_stub: Stub, dir_stub: Stub, pgs37: ScoringFile
) -> None:
    """The model package carries the effect-allele frequencies, so a fresh clone imputes like the PGS file does."""
    vcf = vcf_text(pgs37, 4, seed=11, missing=0.05)
    request = assess_request(vcf, [patient(58, "female")])
    from_layout = (await layout_stub.AssessVcf(request)).assessment
    from_file = (await dir_stub.AssessVcf(request)).assessment
    imputed = [s.risks[0].variants.imputed for s in from_layout.samples]
    assert sum(imputed) > 0
    assert imputed == [s.risks[0].variants.imputed for s in from_file.samples]
    for a, b in zip(from_layout.samples, from_file.samples, strict=True):
        assert a.risks[0].score_sum == pytest.approx(b.risks[0].score_sum, abs=1e-9)


async def test_one_named_sample_of_many(dir_stub: Stub, pgs37: ScoringFile) -> None:
    vcf = vcf_text(pgs37, 4, seed=8)
    answer = (await dir_stub.AssessVcf(assess_request(vcf, [patient(50, "female", sample_id="person-002")]))).assessment
    assert [s.sample_id for s in answer.samples] == ["person-002"]


async def test_bgzipped_and_streamed_uploads_give_the_same_answer(
    dir_served: Served, dir_stub: Stub, pgs37: ScoringFile, bgzip: Callable[[bytes], bytes]
) -> None:
    vcf = vcf_text(pgs37, 5, seed=9)
    request = assess_request(bgzip(vcf), [patient(58, "female")])
    plain = (await dir_stub.AssessVcf(assess_request(vcf, [patient(58, "female")]))).assessment
    compressed = (await dir_stub.AssessVcf(request)).assessment
    assert compressed == plain

    def upload() -> genomics_pb2.VcfAssessment:
        with GenomicsClient(dir_served.target, chunk_bytes=4096) as client:
            return client.upload(bgzip(vcf), request.assessment)

    assert await asyncio.to_thread(upload) == plain


async def test_a_large_vcf_is_streamed_by_the_client_library(dir_served: Served, pgs37: ScoringFile) -> None:
    vcf = vcf_text(pgs37, 1, seed=10)
    header, body = vcf.split(b"#CHROM", 1)
    # 3.2 MiB of header lines: beyond the client's one-message size, within the service's upload limit
    padding = b"".join(b"##comment=%07d%s\n" % (i, b"x" * 100) for i in range(int(3.2 * 1024 * 1024) // 118))
    large = header + padding + b"#CHROM" + body
    assert 3 * 1024 * 1024 < len(large) < MAX_UPLOAD

    def call() -> genomics_pb2.VcfAssessment:
        with GenomicsClient(dir_served.target) as client:
            return client.assess(large, "GRCh37", [patient(40, "female")])

    answer = await asyncio.to_thread(call)
    assert answer.samples[0].risks[0].score_sum == score_vcf(vcf, pgs37)[0].score_sum


async def test_grch38_vcfs_use_the_harmonized_positions(
    dir_stub: Stub, pgs38: ScoringFile, breast_predictor: GenomicRiskPredictor
) -> None:
    vcf = vcf_text(pgs38, 2, seed=12, build="GRCh38")
    answer = (await dir_stub.AssessVcf(assess_request(vcf, [patient(49, "female")], build=GRCH38))).assessment
    assert answer.build == GRCH38
    check_equal_to_domain(answer, vcf, pgs38, breast_predictor, {f"person-{k:03d}": (49.0, "female", 0)
                                                                   for k in range(2)}, build="GRCh38")


async def test_two_cancers_each_get_their_score_and_model(two_cancers_served: Served, pgs37: ScoringFile,
                                                          synthetic_scoring_file: object) -> None:
    from clinpred.pilots.genomics.scoring_file import read_scoring_file

    synthetic = read_scoring_file(synthetic_scoring_file)  # type: ignore[arg-type]
    first, second = vcf_text(pgs37, 2, seed=1), vcf_text(synthetic, 2, seed=2)
    lines = [line for line in second.decode().splitlines(keepends=True) if not line.startswith("#")]
    combined = first + "".join(lines).encode()
    async with grpc.aio.insecure_channel(two_cancers_served.target) as channel:
        stub = Stub(channel)
        scores = (await stub.ListScores(genomics_pb2.ListScoresRequest())).scores
        assert [(s.cancer, s.score.pgs_id, s.variants) for s in scores] == [
            ("breast", "PGS000004", 313), ("colorectal", SYNTHETIC_PGS, 5000)
        ]
        history = {"colorectal": 1}
        answer = (await stub.AssessVcf(assess_request(combined, [patient(55, "female", history)]))).assessment
        for sample in answer.samples:
            assert [r.cancer for r in sample.risks] == ["breast", "colorectal"]
            assert [r.variants.matched for r in sample.risks] == [282, 5000]
            relatives = "affected_first_degree_relatives"
            assert {c.feature: c.value for c in sample.risks[1].explanation.contributions}[relatives] == 1.0
            assert {c.feature: c.value for c in sample.risks[0].explanation.contributions}[relatives] == 0.0
        only = (await stub.AssessVcf(assess_request(combined, [patient(55, "female")], cancers=("colorectal",))))
        assert [r.cancer for r in only.assessment.samples[0].risks] == ["colorectal"]


async def test_outside_the_valid_ages_and_sexes_the_answer_is_failed_precondition(
    layout_stub: Stub, pgs37: ScoringFile
) -> None:
    vcf = vcf_text(pgs37, 1, seed=21)
    for person, said in ((patient(39, "female"), "valid for ages 40 to 70 only"),
                         (patient(71, "female"), "valid for ages 40 to 70 only"),
                         (patient(18, "female"), "valid for ages 40 to 70 only"),
                         (patient(50, "male"), "valid for sex female only")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await layout_stub.AssessVcf(assess_request(vcf, [person]))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "breast cancer model" in (caught.value.details() or "") and said in (caught.value.details() or "")
    # the edges of the range are answered
    for age in (40.0, 70.0):
        answer = (await layout_stub.AssessVcf(assess_request(vcf, [patient(age, "female")]))).assessment
        assert answer.samples[0].risks[0].absolute_risk > 0


async def test_the_old_yes_no_family_history_is_one_affected_relative(layout_stub: Stub, pgs37: ScoringFile) -> None:
    vcf = vcf_text(pgs37, 1, seed=22)

    async def risk(person: genomics_pb2.Patient) -> genomics_pb2.CancerRisk:
        return (await layout_stub.AssessVcf(assess_request(vcf, [person]))).assessment.samples[0].risks[0]

    old = await risk(genomics_pb2.Patient(age=55, sex=genomics_pb2.SEX_FEMALE, family_history={"breast": True}))
    one = await risk(patient(55, "female", {"breast": 1}))
    assert old == one and old.affected_first_degree_relatives == 1
    by_count = [(await risk(patient(55, "female", {"breast": n}))).absolute_risk for n in range(4)]
    assert by_count == sorted(by_count) and len(set(by_count)) == 4
    assert by_count[1] == one.absolute_risk
