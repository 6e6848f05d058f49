"""The genomics codec alone: every request kind decoded or refused with each violation's path, answers encoded whole."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import pytest
from google.protobuf.message import Message

from clinpred.pilots.common.errors import ClinpredError, FailedPrecondition, InvalidInput, ResourceExhausted
from clinpred.pilots.common.explanation import Contribution, Explanation, Reason
from clinpred.pilots.common.model_package import ModelIdentity
from clinpred.pilots.common.schema import RangeFlag
from clinpred.pilots.genomics.assessment import PatientFactors, SampleAssessment, ScoreSource, VcfAssessment
from clinpred.pilots.genomics.encrypted import EncryptedScore, EncryptedScoreAnswer
from clinpred.pilots.genomics.evaluation_keys import Registration
from clinpred.pilots.genomics.matching import Overlap
from clinpred.pilots.genomics.risk import CancerRisk, GenomicRiskPredictor
from clinpred.pilots.genomics.scoring import VariantContribution
from clinpred.services.api.common.v1 import prediction_pb2 as common_pb2
from clinpred.services.api.genomics.v1 import genomics_pb2 as pb
from clinpred.services.genomics.client import published_parameters
from clinpred.services.genomics.codec import (
    ENCRYPTED_FIELDS,
    SINGLE_MESSAGE_FIELDS,
    UPLOAD_FIELDS,
    GenomicsCodec,
)
from clinpred.services.genomics.scores import PublishedLayout, ScoreStatus
from clinpred.services.genomics.settings import GenomicsSettings
from tests.conftest import MODELS

M = TypeVar("M", bound=Message)
R = TypeVar("R")
GRCH37 = pb.GENOME_BUILD_GRCH37
SETTINGS = GenomicsSettings(
    max_batch_size=3, max_upload_bytes=1000, max_top_variants=20, max_context_bytes=100, max_ciphertext_bytes=50,
    response_chunk_bytes=1024,
)
CODEC = GenomicsCodec(SETTINGS, ["breast", "colorectal"], ["breast", "colorectal", "PGS000004", "PGS900001"])
MODEL = ModelIdentity("breast-pgs000004", "1.1.0", "ab" * 32)


def refused(error: type[ClinpredError], call: Callable[[M], object], request: M) -> dict[str, str]:
    """The field violations of a refused decode, field -> description."""
    with pytest.raises(error) as caught:
        call(request)
    return {v.field: v.description for v in caught.value.violations}


async def refused_stream(
    error: type[ClinpredError],
    receive: Callable[[AsyncIterator[M]], Awaitable[R]],
    messages: Sequence[M],
    decode: Callable[[R], object] | None = None,
) -> dict[str, str]:
    """The field violations of a refused stream: while it is received, or (with `decode`) once it has been."""
    with pytest.raises(error) as caught:
        received = await receive(stream(messages))
        if decode is not None:
            decode(received)
    return {v.field: v.description for v in caught.value.violations}


async def stream(messages: Sequence[M]) -> AsyncIterator[M]:
    for message in messages:
        yield message


def with_unknown_field(message: M) -> M:
    """The message as a newer client would send it: with a field (number 15) this API version lacks."""
    return type(message).FromString(message.SerializeToString() + b"\x78\x01")


def patient(age: float = 52, sex: pb.Sex = pb.SEX_FEMALE, sample_id: str = "", relatives: dict[str, int] | None = None,
            **history: bool) -> pb.Patient:
    return pb.Patient(sample_id=sample_id, age=age, sex=sex, family_history=history,
                      affected_first_degree_relatives=relatives or {})


def assessment(*patients: pb.Patient, cancers: Sequence[str] = (), top_variants: int = 0) -> pb.Assessment:
    return pb.Assessment(build=GRCH37, patients=list(patients) or [patient()], cancers=list(cancers),
                         top_variants=top_variants)


# --- AssessVcf ---------------------------------------------------------------------------------------


def test_an_assessment_decodes_to_the_domain_request() -> None:
    request = pb.AssessVcfRequest(
        assessment=assessment(patient(61.5, pb.SEX_MALE, "s2", colorectal=True), patient(40), cancers=["colorectal", "breast"]),
        vcf=b"##fileformat=VCFv4.2\n",
    )
    decoded = CODEC.decode_assess(request)
    assert decoded.build == "GRCh37" and decoded.vcf == request.vcf and decoded.fields == SINGLE_MESSAGE_FIELDS
    assert decoded.patients == (PatientFactors("s2", 61.5, "male", {"colorectal": True}), PatientFactors("", 40, "female", {}))
    assert decoded.patients[0].has_family_history("colorectal") and not decoded.patients[0].has_family_history("breast")
    assert decoded.patients[0].relatives("colorectal") == 1  # the old yes/no is one relative
    counted = CODEC.decode_assess(pb.AssessVcfRequest(assessment=assessment(patient(50, relatives={"breast": 3})), vcf=b"x"))
    assert counted.patients[0].relatives("breast") == 3 and counted.patients[0].relatives("colorectal") == 0
    assert decoded.cancers == ("breast", "colorectal")  # configured order, whatever order they were asked in
    assert decoded.top_variants == 10  # unset: the default
    only = CODEC.decode_assess(pb.AssessVcfRequest(assessment=assessment(cancers=["colorectal"], top_variants=20), vcf=b"x"))
    assert only.cancers == ("colorectal",) and only.top_variants == 20


def test_every_field_of_an_assessment_is_checked_at_once() -> None:
    bad = pb.Assessment(
        patients=[patient(12, pb.SEX_UNSPECIFIED, lung=True), patient(float("nan")),
                  patient(50, relatives={"breast": 51, "ovary": 1})],
        cancers=["pancreas", "breast", "breast"], top_variants=21,
    )
    violations = refused(InvalidInput, CODEC.decode_assess, pb.AssessVcfRequest(assessment=bad, vcf=b"x"))
    assert violations == {
        "assessment.build": "is required: GENOME_BUILD_GRCH37 or GENOME_BUILD_GRCH38, the VCF's build",
        "assessment.patients[0].age": "must be between 18 and 100 years",
        "assessment.patients[0].sex": "is required: SEX_FEMALE or SEX_MALE",
        "assessment.patients[0].family_history[0]":
            "unknown cancer name; configured: breast, colorectal (key 0 in code-point order)",
        "assessment.patients[1].age": "must be a finite number of years",
        "assessment.patients[2].affected_first_degree_relatives[1]":
            "unknown cancer name; configured: breast, colorectal (key 1 in code-point order)",
        "assessment.patients[2].affected_first_degree_relatives[0]": "must be 0 to 50 (key 0 in code-point order)",
        "assessment.patients[1].sample_id": "more than one patient applies to every sample",
        "assessment.patients[2].sample_id": "more than one patient applies to every sample",
        "assessment.cancers[0]": "unknown cancer name; configured: breast, colorectal",
        "assessment.cancers[2]": "lists a cancer a second time",
        "assessment.top_variants": "at most 20",
    }
    with pytest.raises(InvalidInput) as caught:
        CODEC.decode_assess(pb.AssessVcfRequest(assessment=bad, vcf=b"x"))
    # caller-supplied names are never echoed
    assert "pancreas" not in str(caught.value.violations) and "lung" not in str(caught.value.violations)
    assert "ovary" not in str(caught.value.violations)


def test_patients_count_samples_and_the_vcf_are_checked() -> None:
    named = [patient(sample_id="s1"), patient(sample_id="s1")]
    assert refused(InvalidInput, CODEC.decode_assess, pb.AssessVcfRequest(assessment=assessment(*named), vcf=b"x")) == {
        "assessment.patients[1].sample_id": "names a sample twice"}
    too_many = [patient(sample_id=f"s{k}") for k in range(4)]
    violations = refused(InvalidInput, CODEC.decode_assess, pb.AssessVcfRequest(assessment=assessment(*too_many), vcf=b"x"))
    assert violations == {"assessment.patients": "holds 4 items; at most 3 are accepted per call"}
    empty = pb.Assessment(build=GRCH37)
    assert refused(InvalidInput, CODEC.decode_assess, pb.AssessVcfRequest(assessment=empty, vcf=b"x")) == {
        "assessment.patients": "must contain at least one item"}
    assert set(refused(InvalidInput, CODEC.decode_assess, pb.AssessVcfRequest())) == {"assessment", "vcf"}
    large = pb.AssessVcfRequest(assessment=assessment(), vcf=b"x" * 1001)
    assert refused(InvalidInput, CODEC.decode_assess, large) == {"vcf": "holds 1001 bytes; at most 1000 are accepted"}


def test_unknown_fields_are_refused_where_they_are() -> None:
    request = pb.AssessVcfRequest(assessment=assessment(), vcf=b"x")
    violations = refused(InvalidInput, CODEC.decode_assess, with_unknown_field(request))
    assert violations == {"request": "unknown field number 15: not part of this API version"}
    nested = pb.AssessVcfRequest(assessment=with_unknown_field(assessment()), vcf=b"x")
    assert set(refused(InvalidInput, CODEC.decode_assess, nested)) == {"assessment"}
    assert set(refused(InvalidInput, CODEC.decode_empty, with_unknown_field(pb.ListScoresRequest()))) == {"request"}
    assert set(refused(InvalidInput, CODEC.decode_layout, with_unknown_field(pb.GetScoreLayoutRequest(score="breast")))) == {
        "request"}
    CODEC.decode_empty(pb.GetModelInfoRequest())


def test_a_layout_is_asked_by_cancer_or_pgs_id() -> None:
    assert CODEC.decode_layout(pb.GetScoreLayoutRequest(score="PGS000004")) == "PGS000004"
    assert CODEC.decode_layout(pb.GetScoreLayoutRequest(score="colorectal")) == "colorectal"
    assert "is required" in refused(InvalidInput, CODEC.decode_layout, pb.GetScoreLayoutRequest())["score"]
    unknown = refused(InvalidInput, CODEC.decode_layout, pb.GetScoreLayoutRequest(score="lung"))
    assert unknown == {"score": "unknown score; configured: PGS000004, PGS900001, breast, colorectal"}


# --- AssessVcfUpload ---------------------------------------------------------------------------------


def upload(data: bytes, *, length: int | None = None, sha256: str | None = None, chunk: int = 300,
           header: pb.Assessment | None = None) -> list[pb.AssessVcfUploadRequest]:
    digest = hashlib.sha256(data).hexdigest() if sha256 is None else sha256
    first = pb.UploadHeader(assessment=header or assessment(), content_length=len(data) if length is None else length,
                            content_sha256=digest)
    return [pb.AssessVcfUploadRequest(header=first)] + [
        pb.AssessVcfUploadRequest(chunk=data[i:i + chunk]) for i in range(0, len(data), chunk)]


async def test_an_upload_is_received_and_decoded() -> None:
    data = bytes(range(256)) * 3
    received = await CODEC.receive_upload(stream(upload(data)))
    decoded = CODEC.decode_upload(received)
    assert decoded.vcf == (data[:300], data[300:600], data[600:])  # the chunks as they arrived
    assert decoded.fields == UPLOAD_FIELDS and decoded.patients == (PatientFactors("", 52, "female", {}),)
    # the SHA-256 is optional, and accepted in capitals
    unhashed = CODEC.decode_upload(await CODEC.receive_upload(stream(upload(data, sha256=""))))
    assert unhashed.vcf == decoded.vcf
    capitals = hashlib.sha256(data).hexdigest().upper()
    shouted = CODEC.decode_upload(await CODEC.receive_upload(stream(upload(data, sha256=capitals))))
    assert shouted.vcf == decoded.vcf


async def test_an_upload_must_be_a_header_then_chunks() -> None:
    messages = upload(b"x" * 600)
    receive = CODEC.receive_upload
    assert set(await refused_stream(InvalidInput, receive, messages[1:])) == {"stream[0].header"}
    assert "only chunks" in (await refused_stream(InvalidInput, receive, [messages[0], messages[0]]))["stream[1]"]
    assert "is empty" in (await refused_stream(InvalidInput, receive, [], CODEC.decode_upload))["stream"]
    violations = await refused_stream(InvalidInput, receive, [messages[0], with_unknown_field(messages[1])])
    assert "unknown field number 15" in violations["stream[1]"]
    header = await refused_stream(InvalidInput, receive, upload(b"x", header=assessment(patient(age=10))))
    assert set(header) == {"stream[0].header.assessment.patients[0].age"}
    empty_header = [pb.AssessVcfUploadRequest(header=pb.UploadHeader(content_sha256="xyz"))]
    assert set(await refused_stream(InvalidInput, receive, empty_header)) == {
        "stream[0].header.assessment", "stream[0].header.content_length", "stream[0].header.content_sha256"}


async def test_upload_sizes_are_enforced_as_the_bytes_arrive() -> None:
    receive = CODEC.receive_upload
    # declared beyond the limit: refused at the header, before any chunk
    violations = await refused_stream(ResourceExhausted, receive, upload(b"x" * 1001)[:1])
    assert violations == {"stream[0].header.content_length": "1001 bytes exceed the limit of 1000 bytes"}
    # understated: refused at the chunk that passes the limit
    violations = await refused_stream(ResourceExhausted, receive, upload(b"x" * 1200, length=1000))
    assert violations == {"stream[4].chunk": "1200 bytes exceed the limit of 1000 bytes"}
    violations = await refused_stream(InvalidInput, receive, upload(b"x" * 700, length=500))
    assert violations == {"stream[2].chunk": "the upload exceeds its content_length of 500 bytes"}
    # cut short, or other bytes than hashed
    violations = await refused_stream(InvalidInput, receive, upload(b"x" * 900, length=950)[:3], CODEC.decode_upload)
    assert violations == {"stream[3]": "the upload ended after 600 of its 950 bytes: truncated; send it again"}
    wrong = hashlib.sha256(b"other").hexdigest()
    violations = await refused_stream(InvalidInput, receive, upload(b"x" * 900, sha256=wrong), CODEC.decode_upload)
    assert violations == {"stream[0].header.content_sha256": "does not match the bytes received"}


# --- ScoreEncrypted ----------------------------------------------------------------------------------


def encrypted(score: str = "breast", context: bytes = b"c" * 70, ciphertexts: Sequence[bytes] = (b"a" * 40, b"b" * 10),
              chunk: int = 30, context_length: int | None = None,
              lengths: Sequence[int] | None = None) -> list[pb.ScoreEncryptedRequest]:
    header = pb.EncryptedScoreHeader(
        score=score, public_context_length=len(context) if context_length is None else context_length,
        ciphertext_lengths=[len(c) for c in ciphertexts] if lengths is None else list(lengths),
    )
    out = [pb.ScoreEncryptedRequest(header=header)]
    out += [pb.ScoreEncryptedRequest(public_context_chunk=context[i:i + chunk]) for i in range(0, len(context), chunk)]
    for index, blob in enumerate(ciphertexts):
        out += [pb.ScoreEncryptedRequest(ciphertext_chunk=pb.CiphertextChunk(index=index, data=blob[i:i + chunk]))
                for i in range(0, len(blob), chunk)]
    return out


async def test_an_encrypted_request_is_reassembled() -> None:
    decoded = CODEC.decode_encrypted(await CODEC.receive_encrypted(stream(encrypted("PGS000004"))))
    assert decoded.score == "PGS000004" and decoded.public_context == b"c" * 70
    assert decoded.ciphertexts == (b"a" * 40, b"b" * 10) and decoded.fields == ENCRYPTED_FIELDS


async def test_the_encrypted_header_is_checked() -> None:
    receive = CODEC.receive_encrypted
    assert set(await refused_stream(InvalidInput, receive, encrypted()[1:])) == {"stream[0].header"}
    assert "unknown score" in (await refused_stream(InvalidInput, receive, encrypted("lung")))["stream[0].header.score"]
    bare = [pb.ScoreEncryptedRequest(header=pb.EncryptedScoreHeader(ciphertext_lengths=[0]))]
    assert await refused_stream(InvalidInput, receive, bare) == {
        "stream[0].header.score": "is required: a PGS id or cancer (PGS000004, PGS900001, breast, colorectal)",
        "stream[0].header.public_context_sha256": "is required: the SHA-256 of a context registered with"
        " RegisterEvaluationKeys (or send the whole context and its public_context_length)",
        "stream[0].header.ciphertext_lengths": "a ciphertext cannot be empty",
    }
    both = pb.EncryptedScoreHeader(
        score="breast", public_context_sha256="x" * 64, public_context_length=5, ciphertext_lengths=[1]
    )
    assert await refused_stream(InvalidInput, receive, [pb.ScoreEncryptedRequest(header=both)]) == {
        "stream[0].header.public_context_sha256": "must be a SHA-256: 64 hexadecimal digits",
        "stream[0].header.public_context_length": "must be 0 when public_context_sha256 names a registered context",
    }
    none = [pb.ScoreEncryptedRequest(header=pb.EncryptedScoreHeader(score="breast", public_context_length=1))]
    assert set(await refused_stream(InvalidInput, receive, none)) == {"stream[0].header.ciphertext_lengths"}
    assert await refused_stream(ResourceExhausted, receive, encrypted(context_length=101)[:1]) == {
        "stream[0].header.public_context_length": "101 bytes exceed the limit of 100 bytes"}
    assert await refused_stream(ResourceExhausted, receive, encrypted(lengths=[10, 51])[:1]) == {
        "stream[0].header.ciphertext_lengths[1]": "51 bytes exceed the limit of 50 bytes"}
    assert "unknown field number 15" in (await refused_stream(
        InvalidInput, receive, [with_unknown_field(encrypted()[0])]))["stream[0]"]


async def test_context_and_ciphertexts_must_arrive_in_order_and_size() -> None:
    receive = CODEC.receive_encrypted
    full = encrypted()  # header, 3 context chunks (30+30+10), ciphertext 0 in 2 chunks, ciphertext 1 in 1
    assert len(full) == 7
    violations = await refused_stream(InvalidInput, receive, encrypted(context_length=50))
    assert violations == {"stream[2]": "the public context exceeds its declared length of 50 bytes"}
    violations = await refused_stream(InvalidInput, receive, [*full[:2], full[4]])
    assert violations == {"stream[2]": "the public context ended after 30 of 70 bytes"}
    violations = await refused_stream(InvalidInput, receive, [*full[:5], full[1]])
    assert violations == {"stream[5]": "public context chunks must all come before the ciphertexts"}
    violations = await refused_stream(InvalidInput, receive, [*full[:4], full[6]])
    assert violations == {"stream[4].ciphertext_chunk.index": "ciphertexts must be sent in order of index"}
    violations = await refused_stream(InvalidInput, receive, [*full[:5], full[6]])
    assert violations == {"stream[5].ciphertext_chunk.index": "ciphertexts[0] is incomplete"}
    stray = pb.ScoreEncryptedRequest(ciphertext_chunk=pb.CiphertextChunk(index=2, data=b"z"))
    violations = await refused_stream(InvalidInput, receive, [*full, stray])
    assert violations == {"stream[7].ciphertext_chunk.index": "the header declares 2 ciphertext(s)"}
    violations = await refused_stream(InvalidInput, receive, encrypted(lengths=[40, 5]))
    assert violations == {"stream[6]": "ciphertexts[1] exceeds its declared length of 5 bytes"}
    violations = await refused_stream(InvalidInput, receive, [*full, full[0]])
    assert "only public_context_chunk and ciphertext_chunk" in violations["stream[7]"]
    violations = await refused_stream(InvalidInput, receive, full[:-1], CODEC.decode_encrypted)
    assert set(violations) == {"stream[6]"} and "ended early" in violations["stream[6]"]
    assert "is empty" in (await refused_stream(InvalidInput, receive, [], CODEC.decode_encrypted))["stream"]


# --- answers -----------------------------------------------------------------------------------------


def a_risk(cancer: str = "breast") -> CancerRisk:
    contributions = (Contribution("polygenic_score_z", 1.25, 0.4), Contribution("age", 52.0, 0.1),
                     Contribution("male", 0.0, -0.05), Contribution("family_history", 1.0, 0.3))
    reasons = (
        Reason("polygenic_score_z", 1.25, "SD", "raises", 0.4, "polygenic score z 1.25 SD raises the likelihood"),
        Reason("family_history", 1.0, "1 = yes", "raises", 0.3, "family history raises the likelihood"),
        Reason("male", 0.0, "1 = male", "lowers", -0.05, "female sex lowers the likelihood"),
    )
    return CancerRisk(
        cancer=cancer, pgs_id="PGS000004", horizon_years=10.0, score_sum=0.75, z_score=1.25, percentile=89.4,
        absolute_risk=0.046, risk_interval=(0.039, 0.054), interval_level=0.95,
        interval_method="delta method on the Platt calibration parameters", population_average_risk=0.03,
        relative_risk=1.53,
        top_variants=(VariantContribution("1:100:A:G", "G", 0.2, 2.0, False, 0.4),
                      VariantContribution("2:300:C:T", "T", -0.1, 0.6, True, -0.06)),
        model_inputs=(1.25, 52.0, 0.0, 1.0), affected_first_degree_relatives=2, variants_total=313,
        variants_matched=282, variants_missing=3, variants_imputed=2,
        overlap=Overlap("PGS000004", 313, 282, {"strand_ambiguous": 31}, {"refalt": 150, "altref": 132}),
        model=MODEL, out_of_range=(RangeFlag("polygenic_score_z", 5.5, -4.0, 4.5),),
        odds_ratio_per_sd=1.577, unmeasured_variance_fraction=0.12, score_effect_note="OR per SD 1.577 as matched",
        explanation=Explanation("breast cancer within 10 years", "log-odds", -3.0, -2.25, contributions, reasons,
                                "TreeSHAP"),
    )


def test_an_assessment_encodes_every_field() -> None:
    risk = a_risk()
    source = ScoreSource("PGS000004", "PRS313_BC", "PGS000004_hm.txt", "GRCh37")
    result = VcfAssessment((SampleAssessment("s1", (risk,)),), "GRCh37", "contig lengths", 4, {"breast": source})
    answer = pb.AssessVcfResponse.FromString(CODEC.encode_assess(result).SerializeToString()).assessment
    assert (answer.build, answer.build_evidence, answer.vcf_samples) == (GRCH37, "contig lengths", 4)
    ((sample,),) = [answer.samples]
    assert sample.sample_id == "s1"
    (encoded,) = sample.risks
    assert encoded.score == pb.ScoreSource(pgs_id="PGS000004", pgs_name="PRS313_BC", scoring_file="PGS000004_hm.txt",
                                           build=GRCH37)
    assert (encoded.cancer, encoded.horizon_years, encoded.score_sum, encoded.z_score, encoded.percentile) == (
        "breast", 10.0, 0.75, 1.25, 89.4)
    assert (encoded.absolute_risk, encoded.population_average_risk, encoded.relative_risk) == (0.046, 0.03, 1.53)
    interval = encoded.risk_interval
    assert (interval.lower, interval.upper, interval.coverage) == (0.039, 0.054, 0.95)
    assert interval.statement == "95% confidence interval of the 10-year risk: 3.90% to 5.40%"
    assert interval.method == "delta method on the Platt calibration parameters"
    assert [(v.variant_id, v.effect_allele, v.effect_weight, v.dosage, v.imputed, v.contribution)
            for v in encoded.top_variants] == [("1:100:A:G", "G", 0.2, 2.0, False, 0.4),
                                                ("2:300:C:T", "T", -0.1, 0.6, True, -0.06)]
    explanation = encoded.explanation
    assert (explanation.explained_class, explanation.output_space, explanation.base_value, explanation.margin,
            explanation.method) == ("breast cancer within 10 years", "log-odds", -3.0, -2.25, "TreeSHAP")
    assert [(c.feature, c.value, c.shap_value) for c in explanation.contributions] == [
        (c.feature, c.value, c.shap_value) for c in risk.explanation.contributions]
    assert [(r.feature, r.value, r.unit, r.direction, r.shap_value, r.text) for r in explanation.top_reasons] == [
        (r.feature, r.value, r.unit, {"raises": common_pb2.DIRECTION_RAISES, "lowers": common_pb2.DIRECTION_LOWERS}[r.direction],
         r.shap_value, r.text) for r in risk.explanation.top_reasons]
    assert [r.direction for r in explanation.top_reasons] == [
        common_pb2.DIRECTION_RAISES, common_pb2.DIRECTION_RAISES, common_pb2.DIRECTION_LOWERS]
    counts = encoded.variants
    assert (counts.total, counts.matched, counts.missing, counts.imputed) == (313, 282, 3, 2)
    assert dict(counts.unmatched) == {"strand_ambiguous": 31} and dict(counts.match_types) == {"refalt": 150, "altref": 132}
    assert [(f.feature, f.value, f.training_min, f.training_max) for f in encoded.out_of_range] == [
        ("polygenic_score_z", 5.5, -4.0, 4.5)]
    assert (encoded.model.name, encoded.model.version, encoded.model.sha256) == (MODEL.name, MODEL.version, MODEL.sha256)
    assert (encoded.affected_first_degree_relatives, encoded.odds_ratio_per_sd, encoded.unmeasured_variance_fraction,
            encoded.score_effect_note) == (2, 1.577, 0.12, "OR per SD 1.577 as matched")
    upload_answer = CODEC.encode_upload(result)
    assert upload_answer.assessment == answer


def test_scores_encode_their_source_and_problem() -> None:
    usable = ScoreStatus("breast", ScoreSource("PGS000004", "PRS313_BC", "PGS000004_hm.txt", "GRCh37"), "Breast cancer",
                         313, ("GRCh37", "GRCh38"), 10.0, MODEL, "")
    broken = ScoreStatus("colorectal", ScoreSource("PGS900001", "", "", None), "", 5000, (), 10.0, MODEL,
                         "duplicate variant")
    answer = CODEC.encode_scores([usable, broken])
    assert answer.max_upload_bytes == 1000
    first, second = answer.scores
    assert (first.cancer, first.score.scoring_file, first.score.build, first.trait_reported, first.variants) == (
        "breast", "PGS000004_hm.txt", GRCH37, "Breast cancer", 313)
    assert list(first.builds) == [GRCH37, pb.GENOME_BUILD_GRCH38] and not first.problem
    assert second.score.build == pb.GENOME_BUILD_UNSPECIFIED and not second.builds and second.problem == "duplicate variant"


def test_an_encrypted_answer_is_chunked_and_reassembles() -> None:
    score = bytes(range(256)) * 10  # 2560 bytes: 3 chunks of at most 1024
    contributions = (b"\x01" * 3000, b"\x02" * 10)
    answer = EncryptedScoreAnswer(EncryptedScore("PGS000004", score, contributions), 313, MODEL)
    messages = CODEC.encode_encrypted(answer)
    assert [m.WhichOneof("part") for m in messages] == ["summary", *["score_chunk"] * 3, *["contribution_chunk"] * 4]
    assert max(len(m.score_chunk.data) + len(m.contribution_chunk.data) for m in messages) == 1024
    summary = messages[0].summary
    assert (summary.pgs_id, summary.variants, summary.score_length, list(summary.contribution_lengths)) == (
        "PGS000004", 313, 2560, [3000, 10])
    assert summary.model.sha256 == MODEL.sha256
    assert b"".join(m.score_chunk.data for m in messages if m.WhichOneof("part") == "score_chunk") == score
    parts: dict[int, bytes] = {}
    for message in messages:
        if message.WhichOneof("part") == "contribution_chunk":
            chunk = message.contribution_chunk
            parts[chunk.index] = parts.get(chunk.index, b"") + chunk.data
    assert tuple(parts[i] for i in sorted(parts)) == contributions


@pytest.fixture(scope="module")
def predictor() -> GenomicRiskPredictor:
    return GenomicRiskPredictor.load(sorted((MODELS / "genomics" / "breast-pgs000004").iterdir())[-1])


def test_model_info_and_layout_encode_the_package(predictor: GenomicRiskPredictor) -> None:
    (info,) = CODEC.encode_model_info([predictor]).models
    assert (info.cancer, info.pgs_id, info.horizon_years, info.interval_level) == ("breast", "PGS000004", 10.0, 0.95)
    assert [f.name for f in info.features] == ["polygenic_score_z", "age", "affected_first_degree_relatives"]
    assert info.metrics["calibration_max_relative_error"] == predictor.metrics["calibration_max_relative_error"]
    assert info.model.sha256 == predictor.identity.sha256
    assert (info.min_age, info.max_age, list(info.sexes)) == (40.0, 70.0, [pb.SEX_FEMALE])
    assert dict(info.transparency) == predictor.transparency and "intended_use" in info.transparency
    # the published parameters are the package's file byte for byte, and the manifest hashes to the identity
    assert info.risk_parameters_json.encode() == predictor.package.file("risk_parameters.json").read_bytes()
    assert hashlib.sha256(info.package_manifest.encode()).hexdigest() == predictor.identity.sha256
    assert published_parameters(info) == predictor.parameters
    tampered = pb.ModelInfo()
    tampered.CopyFrom(info)
    tampered.risk_parameters_json = info.risk_parameters_json.replace('"horizon_years": 10.0', '"horizon_years": 5.0')
    with pytest.raises(FailedPrecondition, match="not the package's"):
        published_parameters(tampered)
    tampered.CopyFrom(info)
    tampered.model.sha256 = "0" * 64
    with pytest.raises(FailedPrecondition, match="does not match its SHA-256"):
        published_parameters(tampered)
    old = GenomicRiskPredictor.load(MODELS / "genomics" / "breast-pgs000004" / "1.1.0")
    (old_info,) = CODEC.encode_model_info([old]).models
    assert not old_info.risk_parameters_json and (old_info.min_age, old_info.max_age) == (18.0, 100.0)
    assert not old_info.transparency
    with pytest.raises(FailedPrecondition, match="publishes no risk parameters"):
        published_parameters(old_info)
    layout = CODEC.encode_layout(PublishedLayout.of(predictor, ()))
    assert (layout.pgs_id, layout.cancer, layout.build) == ("PGS000004", "breast", GRCH37)
    assert list(layout.variant_ids) == list(predictor.layout.variant_ids) and len(layout.weights) == 313
    assert not layout.private_weights
    private = CODEC.encode_layout(PublishedLayout.of(predictor, ("PGS000004",)))
    assert private.private_weights and list(private.weights) == []
    assert list(private.variant_ids) == list(layout.variant_ids) and list(private.effect_alleles) == list(layout.effect_alleles)
    assert list(layout.poly_modulus_degrees) == [8192, 16384] and layout.min_scale_bits == 30
    assert list(layout.reference.quantiles) == list(predictor.reference.quantiles)


def registration(context: bytes = b"k" * 70, length: int | None = None, sha256: str = "",
                 chunk: int = 30) -> list[pb.RegisterEvaluationKeysRequest]:
    header = pb.EvaluationKeysHeader(public_context_length=len(context) if length is None else length,
                                     public_context_sha256=sha256)
    out = [pb.RegisterEvaluationKeysRequest(header=header)]
    return out + [pb.RegisterEvaluationKeysRequest(public_context_chunk=context[i:i + chunk])
                  for i in range(0, len(context), chunk)]


async def test_a_registration_stream_is_checked_as_it_arrives_and_once_complete() -> None:
    receive, decode = CODEC.receive_evaluation_keys, CODEC.decode_evaluation_keys
    full = registration(sha256=hashlib.sha256(b"k" * 70).hexdigest())
    request = decode(await receive(stream(full)))
    assert request.public_context == b"k" * 70 and request.field == "stream[*].public_context_chunk"
    assert await refused_stream(InvalidInput, receive, full[1:]) == {"stream[0].header": "the first message must be the header"}
    assert await refused_stream(InvalidInput, receive, registration(length=0)) == {
        "stream[0].header.public_context_length": "is required: the number of bytes of the public context that follows"}
    too_large = await refused_stream(InvalidInput, receive, registration(length=101))
    assert too_large == {"stream[0].header.public_context_length":
                         "101 bytes exceed the limit of 100 bytes for one registered context"}
    assert await refused_stream(InvalidInput, receive, registration(sha256="z")) == {
        "stream[0].header.public_context_sha256": "must be a SHA-256: 64 hexadecimal digits"}
    assert await refused_stream(InvalidInput, receive, registration(length=50)) == {
        "stream[2]": "the public context exceeds its declared length of 50 bytes"}
    assert await refused_stream(InvalidInput, receive, [*full, full[0]]) == {
        "stream[4]": "after the header only public_context_chunk may follow"}
    assert await refused_stream(InvalidInput, receive, full[:-1], decode) == {
        "stream[3]": "the stream ended after 60 of the public context's 70 bytes (truncated)"}
    assert await refused_stream(InvalidInput, receive, registration(sha256="0" * 64), decode) == {
        "stream[0].header.public_context_sha256": "does not match the bytes received"}
    assert await refused_stream(InvalidInput, receive, [], decode) == {
        "stream": "is empty: send the header, then the public context in chunks"}
    encoded = CODEC.encode_evaluation_keys(Registration("ab" * 32, 70, 3600.0))
    assert (encoded.public_context_sha256, encoded.public_context_length, encoded.expires_after_idle_seconds) == (
        "ab" * 32, 70, 3600.0)
