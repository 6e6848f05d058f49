"""Fuzzing every RPC of the genomics service through a real in-process server.

Hostile VCFs (headers, sample names, GT/DS, long lines, truncation), bad gzip, crafted CKKS contexts and
ciphertexts, unknown fields appended as raw bytes. Property: never INTERNAL or UNKNOWN; INVALID_ARGUMENT
carries BadRequest violations; the server answers a valid call afterwards. Plus one regression test per
problem an adversarial probe found.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinpred.pilots.genomics.encrypted import (
    EncryptedScoreLayout,
    create_client_context,
    encrypt_dosages,
    public_context_bytes,
)
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.pilots.genomics.vcf import MAX_VCF_LINE_BYTES
from clinpred.services.api.genomics.v1 import genomics_pb2 as pb
from clinpred.services.genomics.client import layout_of
from clinpred.services.genomics.codec import MAX_SAMPLE_ID_LENGTH
from tests.ckks_crafting import crafted_requests
from tests.fuzz.outcomes import call, examples, hostile_text, print_tally, raw_tail, unknown_fields
from tests.integration.genomics.conftest import Served, vcf_text
from tests.support import field_violations
from tests.unit.pilots.genomics.conftest import bgzip_bytes

SERVICE = "/clinpred.genomics.v1.GenomicRiskService/"
GRCH37 = pb.GENOME_BUILD_GRCH37
TALLIED = "genomics."


@pytest.fixture(scope="module", autouse=True)
def tally() -> Iterator[None]:
    yield
    print_tally(TALLIED)


@pytest.fixture(scope="module")
def channel(layout_served: Served) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(layout_served.target) as opened:
        yield opened


@pytest.fixture(scope="module")
def base_vcf(pgs37: ScoringFile) -> bytes:
    return vcf_text(pgs37, 2, seed=5, names=("sample-a", "sample-b"))


@pytest.fixture(scope="module")
async def layout(channel: grpc.Channel) -> EncryptedScoreLayout:
    request = pb.GetScoreLayoutRequest(score="breast").SerializeToString()
    return layout_of(await in_thread(lambda: unary(channel, "GetScoreLayout")(request, timeout=30)))


def unary(channel: grpc.Channel, method: str) -> Any:
    """The method without serialisers: requests and answers are raw bytes, so anything can be sent."""
    return channel.unary_unary(SERVICE + method, response_deserializer=_response_types[method].FromString)


_response_types: dict[str, Any] = {
    "ListScores": pb.ListScoresResponse,
    "GetModelInfo": pb.GetModelInfoResponse,
    "GetScoreLayout": pb.GetScoreLayoutResponse,
    "AssessVcf": pb.AssessVcfResponse,
}


def valid_assessment(**changes: Any) -> pb.Assessment:
    fields: dict[str, Any] = {"build": GRCH37, "patients": [pb.Patient(age=52, sex=pb.SEX_FEMALE)]}
    fields.update(changes)
    return pb.Assessment(**fields)


async def in_thread(function: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(function)


async def serves_a_valid_call(channel: grpc.Channel, vcf: bytes) -> None:
    request = pb.AssessVcfRequest(assessment=valid_assessment(), vcf=vcf).SerializeToString()
    answer = await in_thread(lambda: unary(channel, "AssessVcf")(request, timeout=60))
    assert answer.assessment.samples[0].risks[0].absolute_risk > 0


# --- strategies -----------------------------------------------------------------------------------

HOSTILE_CELLS = [
    "",
    ".",
    "-1",
    "0/1/1",
    "1",
    "2/2",
    "9/9",
    "./.",
    "0|",
    "|",
    "/",
    "0/1:nan",
    "0/1:inf",
    "0/1:-0.5",
    "0/1:3",
    "0/1:1e309",
    "0/1:,",
    "0/1:0.5,0.5",
    "0/1::",
    "NaN",
    "\x00",
    "é",
    "0/-1",
    "00000000000000000001/1",
    "0/1:1e-400",
]
HOSTILE_HEADERS = [
    "##contig=<ID=1,length=abc>",
    "##contig=<ID=1,length=248956422>",
    "##contig=<ID=chr1,length=-5>",
    "##contig=<>",
    "##contig=<ID=1,length=249250621,ID=2>",
    "##reference=GRCh38",
    "##reference=hg19",
    "##reference=",
    "#CHROM",
    "##fileformat=VCFv4.2",
    "##INFO=<ID=\x00>",
    "#",
    "",
]


@st.composite
def hostile_vcf(draw: st.DrawFn, base: bytes) -> bytes:
    lines = base.decode().split("\n")
    chrom_at = next(i for i, line in enumerate(lines) if line.startswith("#CHROM"))
    for _ in range(draw(st.integers(0, 3))):
        what = draw(st.sampled_from(["cell", "field", "line", "sample", "header", "long", "drop", "format"]))
        data_line = draw(st.integers(chrom_at + 1, len(lines) - 2))
        fields = lines[data_line].split("\t")
        if what in ("cell", "field", "format") and len(fields) < 10:
            what = "line"  # an earlier change broke this line's columns
        if what == "cell":
            fields[draw(st.integers(9, len(fields) - 1))] = draw(st.one_of(st.sampled_from(HOSTILE_CELLS), hostile_text))
            lines[data_line] = "\t".join(fields)
        elif what == "field":
            fields[draw(st.integers(0, 8))] = draw(
                st.one_of(st.sampled_from(["", ".", "0", "-3", "chrZ", "A,", "N"]), hostile_text)
            )
            lines[data_line] = "\t".join(fields)
        elif what == "line":
            lines[draw(st.integers(0, len(lines) - 1))] = draw(hostile_text)
        elif what == "sample":
            header = lines[chrom_at].split("\t")
            header[draw(st.integers(min(9, len(header) - 1), len(header) - 1))] = draw(hostile_text)
            lines[chrom_at] = "\t".join(header)
        elif what == "header":
            lines.insert(draw(st.integers(0, chrom_at + 1)), draw(st.sampled_from(HOSTILE_HEADERS)))
        elif what == "long":
            lines.insert(data_line, "1\t5\t.\tA\tG\t.\tPASS\t" + "I" * draw(st.integers(1000, 300_000)))
        elif what == "drop":
            del lines[draw(st.integers(0, chrom_at))]
            chrom_at = max(0, chrom_at - 1)
        else:
            fields[8] = draw(st.sampled_from(["DS", "GT:DS", "DS:GT", "XX", "", "GT:GT"]))
            lines[data_line] = "\t".join(fields)
    text = "\n".join(lines).encode()
    if draw(st.integers(0, 3)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


@st.composite
def packed(draw: st.DrawFn, text: bytes) -> bytes:
    """The VCF as sent: plain, gzip or bgzip, possibly with a byte flipped or cut short."""
    form = draw(st.sampled_from(["plain", "gzip", "bgzip"]))
    data = text if form == "plain" else gzip.compress(text, 1) if form == "gzip" else bgzip_bytes(text)
    damage = draw(st.sampled_from(["none", "none", "flip", "cut", "garbage"]))
    if damage == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    elif damage == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "garbage":
        data = draw(st.sampled_from([b"\x1f\x8b", b"\x1f\x8b\x08\x00garbage"])) + draw(st.binary(max_size=64))
    return data


patients = st.builds(
    pb.Patient,
    sample_id=st.one_of(st.just(""), st.sampled_from(["sample-a", "sample-b"]), hostile_text),
    age=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(18, 100)),
    sex=st.integers(0, 4),
    family_history=st.dictionaries(st.one_of(st.just("breast"), hostile_text), st.booleans(), max_size=4),
    affected_first_degree_relatives=st.dictionaries(
        st.one_of(st.just("breast"), hostile_text), st.integers(0, (1 << 32) - 1), max_size=4
    ),
)
assessments = st.builds(
    pb.Assessment,
    build=st.integers(0, 4),
    patients=st.lists(patients, max_size=4),
    cancers=st.lists(st.one_of(st.just("breast"), hostile_text), max_size=3),
    top_variants=st.integers(0, 1 << 32 - 1),
)


# --- fuzzing ---------------------------------------------------------------------------------------


@examples(40)
@given(method=st.sampled_from(["ListScores", "GetModelInfo"]), raw=st.one_of(unknown_fields(1), st.binary(max_size=64)))
async def test_fuzz_list_scores_and_model_info(channel: grpc.Channel, method: str, raw: bytes) -> None:
    await in_thread(lambda: call(TALLIED + method, lambda: unary(channel, method)(raw, timeout=30)))
    await in_thread(lambda: unary(channel, method)(b"", timeout=30))


@examples(40)
@given(score=st.one_of(st.sampled_from(["breast", "PGS000004", "lung"]), hostile_text), tail=raw_tail())
async def test_fuzz_get_score_layout(channel: grpc.Channel, score: str, tail: bytes) -> None:
    raw = pb.GetScoreLayoutRequest(score=score).SerializeToString() + tail
    await in_thread(lambda: call(TALLIED + "GetScoreLayout", lambda: unary(channel, "GetScoreLayout")(raw, timeout=30)))


@examples(100)
@given(data=st.data(), tail=raw_tail())
async def test_fuzz_assess_vcf(channel: grpc.Channel, base_vcf: bytes, data: st.DataObject, tail: bytes) -> None:
    vcf = data.draw(packed(data.draw(hostile_vcf(base_vcf))))
    assessment = data.draw(st.one_of(st.just(valid_assessment()), assessments))
    raw = pb.AssessVcfRequest(assessment=assessment, vcf=vcf).SerializeToString() + tail
    await in_thread(lambda: call(TALLIED + "AssessVcf", lambda: unary(channel, "AssessVcf")(raw, timeout=60)))
    await serves_a_valid_call(channel, base_vcf)


def upload_stream(header: pb.UploadHeader, data: bytes, chunk: int) -> list[bytes]:
    messages = [pb.AssessVcfUploadRequest(header=header).SerializeToString()]
    messages += [pb.AssessVcfUploadRequest(chunk=data[i : i + chunk]).SerializeToString() for i in range(0, len(data), chunk)]
    return messages


@examples(60)
@given(data=st.data())
async def test_fuzz_assess_vcf_upload(channel: grpc.Channel, base_vcf: bytes, data: st.DataObject) -> None:
    vcf = data.draw(packed(data.draw(hostile_vcf(base_vcf))))
    length = data.draw(st.one_of(st.just(len(vcf)), st.integers(0, 1 << 64 - 1)))
    sha = data.draw(st.one_of(st.just(hashlib.sha256(vcf).hexdigest()), st.just(""), hostile_text))
    assessment = data.draw(st.one_of(st.just(valid_assessment()), assessments))
    messages = upload_stream(
        pb.UploadHeader(assessment=assessment, content_length=length, content_sha256=sha), vcf, data.draw(st.integers(1, 1 << 16))
    )
    shape = data.draw(st.sampled_from(["as is", "as is", "tail", "reorder", "drop", "garbage"]))
    if shape == "tail" and messages:
        at = data.draw(st.integers(0, len(messages) - 1))
        messages[at] += data.draw(unknown_fields(3))
    elif shape == "reorder" and len(messages) > 1:
        messages = data.draw(st.permutations(messages))
    elif shape == "drop" and messages:
        del messages[data.draw(st.integers(0, len(messages) - 1))]
    elif shape == "garbage":
        messages.insert(data.draw(st.integers(0, len(messages))), data.draw(st.binary(max_size=32)))
    method = channel.stream_unary(SERVICE + "AssessVcfUpload", response_deserializer=pb.AssessVcfUploadResponse.FromString)
    await in_thread(lambda: call(TALLIED + "AssessVcfUpload", lambda: method(iter(messages), timeout=60)))
    await serves_a_valid_call(channel, base_vcf)


def encrypted_stream(score: str, context: bytes, ciphertexts: list[bytes], chunk: int = 1 << 20) -> list[bytes]:
    header = pb.EncryptedScoreHeader(
        score=score, public_context_length=len(context), ciphertext_lengths=[len(c) for c in ciphertexts]
    )
    out = [pb.ScoreEncryptedRequest(header=header).SerializeToString()]
    out += [
        pb.ScoreEncryptedRequest(public_context_chunk=context[i : i + chunk]).SerializeToString()
        for i in range(0, len(context), chunk)
    ]
    for index, blob in enumerate(ciphertexts):
        out += [
            pb.ScoreEncryptedRequest(
                ciphertext_chunk=pb.CiphertextChunk(index=index, data=blob[i : i + chunk])
            ).SerializeToString()
            for i in range(0, len(blob), chunk)
        ]
    return out


def score_encrypted(channel: grpc.Channel, messages: list[bytes]) -> list[pb.ScoreEncryptedResponse]:
    method = channel.stream_stream(SERVICE + "ScoreEncrypted", response_deserializer=pb.ScoreEncryptedResponse.FromString)
    return list(method(iter(messages), timeout=120))


@pytest.fixture(scope="module")
def real_encrypted(layout: EncryptedScoreLayout) -> tuple[bytes, bytes]:
    client = create_client_context()
    (ciphertext,) = encrypt_dosages(client, np.ones(len(layout)), layout).ciphertexts
    return public_context_bytes(client), ciphertext


@examples(8)
@given(data=st.data())
async def test_fuzz_score_encrypted(channel: grpc.Channel, real_encrypted: tuple[bytes, bytes], data: st.DataObject) -> None:
    context, ciphertext = real_encrypted
    kind = data.draw(
        st.sampled_from(
            ["random context", "cut context", "random ciphertext", "cut ciphertext", "flipped ciphertext", "shape", "tail"]
        )
    )
    score = data.draw(st.one_of(st.just("breast"), hostile_text)) if kind == "shape" else "breast"
    contexts, ciphertexts = context, [ciphertext]
    if kind == "random context":
        contexts = data.draw(st.binary(min_size=1, max_size=256))
    elif kind == "cut context":
        contexts = context[: data.draw(st.integers(1, len(context) - 1))]
    elif kind == "random ciphertext":
        ciphertexts = [data.draw(st.binary(min_size=1, max_size=256))]
    elif kind == "cut ciphertext":
        ciphertexts = [ciphertext[: data.draw(st.integers(1, len(ciphertext) - 1))]]
    elif kind == "flipped ciphertext":
        at = data.draw(st.integers(0, len(ciphertext) - 1))
        ciphertexts = [ciphertext[:at] + bytes([ciphertext[at] ^ 0x5A]) + ciphertext[at + 1 :]]
    messages = encrypted_stream(score, contexts, ciphertexts)
    if kind == "shape":
        messages = data.draw(st.lists(st.sampled_from(messages), max_size=4))
    elif kind == "tail":
        at = data.draw(st.integers(0, len(messages) - 1))
        messages[at] += data.draw(unknown_fields(4))
    await in_thread(lambda: call(TALLIED + "ScoreEncrypted", lambda: score_encrypted(channel, messages)))
    await in_thread(lambda: unary(channel, "ListScores")(b"", timeout=30))


async def test_after_fuzzing_encrypted_scoring_still_works(channel: grpc.Channel, real_encrypted: tuple[bytes, bytes]) -> None:
    answers = await in_thread(
        lambda: score_encrypted(channel, encrypted_stream("breast", *[real_encrypted[0]], [real_encrypted[1]]))
    )
    assert answers[0].summary.variants == 313 and answers[0].summary.score_length > 0


def registration_stream(context: bytes, length: int | None = None, sha256: str = "", chunk: int = 1 << 20) -> list[bytes]:
    header = pb.EvaluationKeysHeader(
        public_context_length=len(context) if length is None else length, public_context_sha256=sha256
    )
    out = [pb.RegisterEvaluationKeysRequest(header=header).SerializeToString()]
    out += [
        pb.RegisterEvaluationKeysRequest(public_context_chunk=context[i : i + chunk]).SerializeToString()
        for i in range(0, len(context), chunk)
    ]
    return out


def register_keys(channel: grpc.Channel, messages: list[bytes]) -> pb.RegisterEvaluationKeysResponse:
    method = channel.stream_unary(
        SERVICE + "RegisterEvaluationKeys", response_deserializer=pb.RegisterEvaluationKeysResponse.FromString
    )
    return method(iter(messages), timeout=120)


def registered_stream(score: str, digest: str, ciphertexts: list[bytes], context: bytes = b"") -> list[bytes]:
    """A ScoreEncrypted stream naming a registered context (and, if given, also sending one: refused)."""
    header = pb.EncryptedScoreHeader(
        score=score, public_context_sha256=digest, public_context_length=len(context),
        ciphertext_lengths=[len(c) for c in ciphertexts],
    )
    out = [pb.ScoreEncryptedRequest(header=header).SerializeToString()]
    if context:
        out.append(pb.ScoreEncryptedRequest(public_context_chunk=context[:256]).SerializeToString())
    out += [
        pb.ScoreEncryptedRequest(ciphertext_chunk=pb.CiphertextChunk(index=i, data=blob)).SerializeToString()
        for i, blob in enumerate(ciphertexts)
    ]
    return out


@pytest.fixture(scope="module")
async def registered(channel: grpc.Channel, real_encrypted: tuple[bytes, bytes]) -> str:
    answer = await in_thread(lambda: register_keys(channel, registration_stream(real_encrypted[0])))
    assert answer.public_context_sha256 == hashlib.sha256(real_encrypted[0]).hexdigest()
    return str(answer.public_context_sha256)


@examples(8)
@given(data=st.data())
async def test_fuzz_register_evaluation_keys(
    channel: grpc.Channel, real_encrypted: tuple[bytes, bytes], data: st.DataObject
) -> None:
    context = real_encrypted[0]
    kind = data.draw(st.sampled_from(["random context", "cut context", "flipped context", "header", "shape", "tail"]))
    blob, length, sha = context, None, ""
    if kind == "random context":
        blob = data.draw(st.binary(min_size=1, max_size=256))
    elif kind == "cut context":
        blob = context[: data.draw(st.integers(1, len(context) - 1))]
    elif kind == "flipped context":
        at = data.draw(st.integers(0, 4096))  # the parameters and the start of the public key
        blob = context[:at] + bytes([context[at] ^ 0x5A]) + context[at + 1 :]
    elif kind == "header":
        length = data.draw(st.one_of(st.integers(0, (1 << 64) - 1), st.just(len(context) + 1)))
        sha = data.draw(st.one_of(hostile_text, st.just("0" * 64)))
    messages = registration_stream(blob, length, sha)
    if kind == "shape":
        messages = data.draw(st.lists(st.sampled_from(messages), max_size=4))
    elif kind == "tail":
        at = data.draw(st.integers(0, len(messages) - 1))
        messages[at] += data.draw(unknown_fields(4))
    await in_thread(lambda: call(TALLIED + "RegisterEvaluationKeys", lambda: register_keys(channel, messages)))
    await in_thread(lambda: unary(channel, "ListScores")(b"", timeout=30))


@examples(8)
@given(data=st.data())
async def test_fuzz_score_encrypted_with_a_registered_context(
    channel: grpc.Channel, real_encrypted: tuple[bytes, bytes], registered: str, data: st.DataObject
) -> None:
    ciphertext = real_encrypted[1]
    kind = data.draw(st.sampled_from(["digest", "random ciphertext", "flipped ciphertext", "context too", "tail"]))
    digest, ciphertexts, context = registered, [ciphertext], b""
    if kind == "digest":
        digest = data.draw(st.one_of(hostile_text, st.text("0123456789abcdefABCDEF", min_size=64, max_size=64)))
    elif kind == "random ciphertext":
        ciphertexts = [data.draw(st.binary(min_size=1, max_size=256))]
    elif kind == "flipped ciphertext":
        at = data.draw(st.integers(0, len(ciphertext) - 1))
        ciphertexts = [ciphertext[:at] + bytes([ciphertext[at] ^ 0x5A]) + ciphertext[at + 1 :]]
    elif kind == "context too":
        context = real_encrypted[0]
    messages = registered_stream("breast", digest, ciphertexts, context)
    if kind == "tail":
        at = data.draw(st.integers(0, len(messages) - 1))
        messages[at] += data.draw(unknown_fields(4))
    await in_thread(lambda: call(TALLIED + "ScoreEncrypted", lambda: score_encrypted(channel, messages)))
    answers = await in_thread(lambda: score_encrypted(channel, registered_stream("breast", registered, [ciphertext])))
    assert answers[0].summary.variants == 313


async def test_crafted_contexts_are_refused_at_registration_and_crafted_ciphertexts_with_a_registered_one(
    channel: grpc.Channel, layout: EncryptedScoreLayout, real_encrypted: tuple[bytes, bytes], registered: str
) -> None:
    cases = await in_thread(lambda: crafted_requests(layout))
    bad_contexts = [c for c in cases if c.context != cases[0].context and c.name != "size-3 ciphertext"
                    and c.name != "ciphertext scale 2^100"]
    assert {c.name for c in bad_contexts} >= {"global scale 0", "parameters only", "truncated context"}
    for case in bad_contexts:
        violations = await in_thread(
            lambda c=case: refused(lambda: register_keys(channel, registration_stream(c.context)))
        )
        assert violations.keys() == {"stream[*].public_context_chunk"}, (case.name, violations)
        assert case.reason in violations["stream[*].public_context_chunk"], case.name
    # The ciphertext cases were made with their own client; with the registered context only those
    # that do not depend on the client's keys apply.
    for name in ("two ciphertexts in one vector", "sizes that do not match the ciphertexts", "truncated ciphertext",
                 "encoding scale 2^100"):
        (case,) = [c for c in cases if c.name == name]
        messages = registered_stream("breast", registered, list(case.ciphertexts))
        violations = await in_thread(lambda m=messages: refused(lambda: score_encrypted(channel, m)))
        assert violations.keys() == {"stream[*].ciphertext_chunk"}, name
    unknown = registered_stream("breast", "0" * 64, [real_encrypted[1]])
    await in_thread(lambda: refused(lambda: score_encrypted(channel, unknown), grpc.StatusCode.FAILED_PRECONDITION))


# --- regressions: one per problem the adversarial probe found ----------------------------------------


def refused(invoke: Callable[[], object], code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT) -> dict[str, str]:
    with pytest.raises(grpc.RpcError) as caught:
        invoke()
    assert caught.value.code() == code, caught.value.details()
    return field_violations(caught.value)


async def test_crafted_ckks_inputs_are_refused_naming_the_field(channel: grpc.Channel, layout: EncryptedScoreLayout) -> None:
    wanted = {
        "ciphertext at the last modulus level",
        "size-3 ciphertext",
        "global scale 0",
        "global scale -1",
        "parameters only",
        "encoding scale 2^100",
        "two ciphertexts in one vector",
    }
    cases = [c for c in await in_thread(lambda: crafted_requests(layout)) if c.name in wanted]
    assert len(cases) == len(wanted)
    for case in cases:
        messages = encrypted_stream("breast", case.context, list(case.ciphertexts))
        violations = await in_thread(lambda m=messages: refused(lambda: score_encrypted(channel, m)))
        ((field, description),) = violations.items()
        assert case.reason in description, case.name
        assert field in ("stream[*].public_context_chunk", "stream[*].ciphertext_chunk"), case.name


async def test_a_newline_free_gzip_upload_is_refused_at_the_line_limit(channel: grpc.Channel, base_vcf: bytes) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = compressor.compress(b"##fileformat=VCFv4.2\n")
    bomb += b"".join(compressor.compress(b"A" * (1 << 20)) for _ in range(MAX_VCF_LINE_BYTES // (1 << 20) + 4))
    bomb += compressor.flush()
    request = pb.AssessVcfRequest(assessment=valid_assessment(), vcf=bomb).SerializeToString()
    violations = await in_thread(lambda: refused(lambda: unary(channel, "AssessVcf")(request, timeout=60)))
    assert violations == {"vcf": f"upload line 2: longer than {MAX_VCF_LINE_BYTES} bytes; reading stopped"}
    await serves_a_valid_call(channel, base_vcf)


async def test_list_scores_and_model_info_refuse_unknown_fields(channel: grpc.Channel) -> None:
    for method in ("ListScores", "GetModelInfo"):
        violations = await in_thread(lambda m=method: refused(lambda: unary(channel, m)(b"\x78\x01", timeout=30)))
        assert violations == {"request": "unknown field number 15: not part of this API version"}


async def test_caller_names_are_never_echoed(channel: grpc.Channel, base_vcf: bytes) -> None:
    secret = "SECRET-NAME-4711"
    assessment = valid_assessment(
        cancers=["breast", secret], patients=[pb.Patient(age=52, sex=pb.SEX_FEMALE, family_history={secret: True})]
    )
    request = pb.AssessVcfRequest(assessment=assessment, vcf=base_vcf).SerializeToString()
    with pytest.raises(grpc.RpcError) as caught:
        await in_thread(lambda: unary(channel, "AssessVcf")(request, timeout=30))
    violations = field_violations(caught.value)
    assert set(violations) == {"assessment.cancers[1]", "assessment.patients[0].family_history[0]"}
    assert secret not in str(violations) and secret not in (caught.value.details() or "")
    layout_request = pb.GetScoreLayoutRequest(score=secret).SerializeToString()
    with pytest.raises(grpc.RpcError) as caught:
        await in_thread(lambda: unary(channel, "GetScoreLayout")(layout_request, timeout=30))
    assert secret not in str(field_violations(caught.value)) and secret not in (caught.value.details() or "")


async def test_strings_have_a_length_limit_and_no_control_characters(channel: grpc.Channel) -> None:
    assessment = valid_assessment(
        patients=[
            pb.Patient(sample_id="s" * (MAX_SAMPLE_ID_LENGTH + 1), age=52, sex=pb.SEX_FEMALE),
            pb.Patient(sample_id="a\x00b", age=52, sex=pb.SEX_FEMALE),
        ],
        cancers=["x" * 1000],
    )
    request = pb.AssessVcfRequest(assessment=assessment, vcf=b"x").SerializeToString()
    violations = await in_thread(lambda: refused(lambda: unary(channel, "AssessVcf")(request, timeout=30)))
    assert violations == {
        "assessment.patients[0].sample_id": f"must be at most {MAX_SAMPLE_ID_LENGTH} characters",
        "assessment.patients[1].sample_id": "must not contain control or invisible characters",
        "assessment.cancers[0]": "must be at most 64 characters",
    }
    layout_request = pb.GetScoreLayoutRequest(score="breast\n").SerializeToString()
    violations = await in_thread(lambda: refused(lambda: unary(channel, "GetScoreLayout")(layout_request, timeout=30)))
    assert violations == {"score": "must not contain control or invisible characters"}


async def test_thousands_of_violations_still_reach_the_caller_as_bad_request(channel: grpc.Channel) -> None:
    """Every violation listed would exceed gRPC's 16 KiB trailer limit: the error interceptor lists the
    first ones (and counts them all in ErrorInfo), so a default client still gets INVALID_ARGUMENT."""
    assessment = valid_assessment(cancers=[f"c{i}" for i in range(5000)])
    request = pb.AssessVcfRequest(assessment=assessment, vcf=b"x").SerializeToString()
    violations = await in_thread(lambda: refused(lambda: unary(channel, "AssessVcf")(request, timeout=30)))
    assert 0 < len(violations) < 5000 and "assessment.cancers[0]" in violations
