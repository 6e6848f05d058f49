"""Bad genotypes, uploads and scoring files get INVALID_ARGUMENT or FAILED_PRECONDITION naming the problem;
messages never echo sample ids or genotypes; the service keeps serving."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest

from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.services.api.genomics.v1 import genomics_pb2
from clinpred.services.genomics.client import patient
from clinpred.services.genomics.settings import GenomicsSettings
from tests.integration.genomics.conftest import MAX_UPLOAD, Served, Stub, _serve, vcf_text
from tests.support import field_violations

GRCH37 = genomics_pb2.GENOME_BUILD_GRCH37
SECRET_SAMPLE = "PATIENT-SECRET-4711"


def request(vcf: bytes, build: int = GRCH37, **patient_fields: object) -> genomics_pb2.AssessVcfRequest:
    person = patient(52, "female") if not patient_fields else genomics_pb2.Patient(**patient_fields)  # type: ignore[arg-type]
    return genomics_pb2.AssessVcfRequest(assessment=genomics_pb2.Assessment(build=build, patients=[person]), vcf=vcf)


async def refused(call: object, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT) -> tuple[str, dict[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    error = caught.value
    assert error.code() == code, error.details()
    details = error.details() or ""
    assert SECRET_SAMPLE not in details and "0/1" not in details
    return details, field_violations(error)


async def still_serving(stub: Stub, pgs37: ScoringFile) -> None:
    answer = await stub.AssessVcf(request(vcf_text(pgs37, 1, seed=99)))
    assert answer.assessment.samples[0].risks[0].absolute_risk > 0


@pytest.fixture(scope="module")
def good_vcf(pgs37: ScoringFile) -> bytes:
    return vcf_text(pgs37, 2, seed=4, names=(SECRET_SAMPLE, "other"))


def replace_line(vcf: bytes, number: int, change: Callable[[list[str]], list[str]]) -> bytes:
    lines = vcf.decode().split("\n")
    data = [i for i, line in enumerate(lines) if line and not line.startswith("#")]
    fields = lines[data[number]].split("\t")
    lines[data[number]] = "\t".join(change(fields))
    return "\n".join(lines).encode()


def line_number(vcf: bytes, number: int) -> int:
    lines = vcf.decode().split("\n")
    return [i for i, line in enumerate(lines) if line and not line.startswith("#")][number] + 1


async def test_a_malformed_vcf_line_is_named(dir_stub: Stub, good_vcf: bytes, pgs37: ScoringFile) -> None:
    bad = replace_line(good_vcf, 10, lambda f: [f[0], "12x", *f[2:]])
    _details, violations = await refused(dir_stub.AssessVcf(request(bad)))
    assert f"line {line_number(good_vcf, 10)}, column POS: not an integer" in violations["vcf"]
    await still_serving(dir_stub, pgs37)


async def test_wrong_column_count_is_named(dir_stub: Stub, good_vcf: bytes) -> None:
    bad = replace_line(good_vcf, 3, lambda f: f[:-1])
    _, violations = await refused(dir_stub.AssessVcf(request(bad)))
    assert "columns, the #CHROM header has 11" in violations["vcf"]


@pytest.mark.parametrize(("genotype", "reason"), [("0/1/1", "not diploid"), ("1", "haploid GT on an autosome")])
async def test_non_diploid_genotypes_are_refused(
    dir_stub: Stub, good_vcf: bytes, pgs37: ScoringFile, genotype: str, reason: str
) -> None:
    bad = replace_line(good_vcf, 5, lambda f: [*f[:9], genotype, f[10]])
    _, violations = await refused(dir_stub.AssessVcf(request(bad)))
    assert reason in violations["vcf"]
    await still_serving(dir_stub, pgs37)


async def test_a_vcf_in_another_build_than_declared(dir_stub: Stub, pgs38: ScoringFile, pgs37: ScoringFile) -> None:
    vcf38 = vcf_text(pgs38, 1, seed=2, build="GRCh38")
    _details, violations = await refused(dir_stub.AssessVcf(request(vcf38)), grpc.StatusCode.FAILED_PRECONDITION)
    assert "the VCF is in GRCh38 (by its contig lengths) but GRCh37 was declared" in violations["assessment.build"]
    # without header evidence, positions beyond a GRCh37 chromosome betray the build
    headerless = b"\n".join(line for line in vcf38.split(b"\n") if not line.startswith(b"##contig"))
    bad = replace_line(headerless, 0, lambda f: [f[0], "249250999", *f[2:]])
    _, violations = await refused(dir_stub.AssessVcf(request(bad)), grpc.StatusCode.FAILED_PRECONDITION)
    assert "beyond chromosome 1 of GRCh37" in violations["assessment.build"]
    await still_serving(dir_stub, pgs37)


async def test_no_overlap_with_the_score(dir_stub: Stub, good_vcf: bytes, pgs37: ScoringFile) -> None:
    shifted = good_vcf
    lines = shifted.decode().split("\n")
    moved = [
        "\t".join([f[0], str(int(f[1]) + 1), *f[2:]]) if (f := line.split("\t")) and line and not line.startswith("#")
        else line
        for line in lines
    ]
    _details, violations = await refused(
        dir_stub.AssessVcf(request("\n".join(moved).encode())), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert "only 0 of 313 variants (0.0%) match upload, fewer than the 75% required" in violations["vcf"]
    await still_serving(dir_stub, pgs37)


async def test_a_named_sample_missing_from_the_vcf(dir_stub: Stub, good_vcf: bytes) -> None:
    details, violations = await refused(dir_stub.AssessVcf(request(
        good_vcf, sample_id="NOT-THERE-1234", age=50, sex=genomics_pb2.SEX_FEMALE)))
    assert violations == {"assessment.patients[0].sample_id": "is not a sample of the VCF"}
    assert "NOT-THERE-1234" not in details


async def test_request_fields_are_checked_together(dir_stub: Stub, good_vcf: bytes) -> None:
    assessment = genomics_pb2.Assessment(
        patients=[genomics_pb2.Patient(age=12, family_history={"lung": True})], cancers=["pancreas"], top_variants=500
    )
    _, violations = await refused(dir_stub.AssessVcf(genomics_pb2.AssessVcfRequest(assessment=assessment, vcf=good_vcf)))
    assert set(violations) == {
        "assessment.build", "assessment.patients[0].age", "assessment.patients[0].sex",
        "assessment.patients[0].family_history[0]", "assessment.cancers[0]", "assessment.top_variants",
    }
    assert "between 18 and 100" in violations["assessment.patients[0].age"]
    _, violations = await refused(dir_stub.AssessVcf(genomics_pb2.AssessVcfRequest()))
    assert set(violations) == {"assessment", "vcf"}


async def test_not_a_vcf(dir_stub: Stub) -> None:
    _, violations = await refused(dir_stub.AssessVcf(request(b"hello\tworld\n")))
    assert "not a VCF" in violations["vcf"]
    _, violations = await refused(dir_stub.AssessVcf(request(b"\x1f\x8b\x08\x00garbage")))
    assert "gzip" in violations["vcf"]


def upload_messages(assessment: genomics_pb2.Assessment, data: bytes, declared: int | None = None,
                    sha256: str = "", chunk: int = 64 * 1024) -> list[genomics_pb2.AssessVcfUploadRequest]:
    header = genomics_pb2.UploadHeader(
        assessment=assessment, content_length=len(data) if declared is None else declared, content_sha256=sha256
    )
    return [genomics_pb2.AssessVcfUploadRequest(header=header)] + [
        genomics_pb2.AssessVcfUploadRequest(chunk=data[i:i + chunk]) for i in range(0, len(data), chunk)
    ]


async def stream(messages: list[genomics_pb2.AssessVcfUploadRequest]) -> AsyncIterator[genomics_pb2.AssessVcfUploadRequest]:
    for message in messages:
        yield message


def assessment() -> genomics_pb2.Assessment:
    return genomics_pb2.Assessment(build=GRCH37, patients=[patient(52, "female")])


async def test_a_truncated_upload_is_refused(dir_stub: Stub, good_vcf: bytes, pgs37: ScoringFile,
                                             bgzip: Callable[[bytes], bytes]) -> None:
    cut = good_vcf[: len(good_vcf) // 2]
    _details, violations = await refused(dir_stub.AssessVcfUpload(stream(upload_messages(assessment(), cut, len(good_vcf)))))
    (field, reason), = violations.items()
    assert field.startswith("stream[") and f"ended after {len(cut)} of its {len(good_vcf)} bytes: truncated" in reason
    # a file that was already cut before it was sent: bgzip knows its end
    compressed = bgzip(good_vcf)
    _, violations = await refused(dir_stub.AssessVcfUpload(stream(upload_messages(assessment(), compressed[:-40]))))
    assert "truncated" in violations["stream[*].chunk"]
    # and a plain VCF cut mid-line
    _, violations = await refused(dir_stub.AssessVcfUpload(stream(upload_messages(assessment(), good_vcf[:-3]))))
    assert "truncated" in violations["stream[*].chunk"]
    wrong = hashlib.sha256(b"other").hexdigest()
    _, violations = await refused(dir_stub.AssessVcfUpload(stream(upload_messages(assessment(), good_vcf, sha256=wrong))))
    assert violations == {"stream[0].header.content_sha256": "does not match the bytes received"}
    await still_serving(dir_stub, pgs37)


async def test_an_oversized_upload_is_refused(dir_stub: Stub, good_vcf: bytes, pgs37: ScoringFile) -> None:
    big = good_vcf + b"#" * MAX_UPLOAD
    # declared up front: refused before any byte is read
    _, violations = await refused(
        dir_stub.AssessVcfUpload(stream(upload_messages(assessment(), big)[:1])), grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert f"exceed the limit of {MAX_UPLOAD} bytes" in violations["stream[0].header.content_length"]
    # understated: refused as soon as the bytes received pass the limit
    _, violations = await refused(
        dir_stub.AssessVcfUpload(stream(upload_messages(assessment(), big, declared=MAX_UPLOAD))),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    (field, reason), = violations.items()
    assert field.endswith(".chunk") and f"limit of {MAX_UPLOAD} bytes" in reason
    _, violations = await refused(dir_stub.AssessVcfUpload(stream(upload_messages(assessment(), good_vcf, declared=100))))
    assert any("exceeds its content_length of 100 bytes" in v for v in violations.values())
    await still_serving(dir_stub, pgs37)


async def test_a_decompression_bomb_is_refused(dir_served: Served, pgs37: ScoringFile) -> None:
    settings = dir_served.settings.model_copy(update={"max_vcf_bytes": 1_000_000})
    server, served = await _serve(settings)
    try:
        bomb = gzip.compress(b"##fileformat=VCFv4.2\n" + b"##x\n" * 2_000_000)
        async with grpc.aio.insecure_channel(served.target) as channel:
            _, violations = await refused(Stub(channel).AssessVcf(request(bomb)), grpc.StatusCode.RESOURCE_EXHAUSTED)
    finally:
        await server.stop(grace=None)
    assert "decompressed size exceeds the limit of 1000000 bytes" in violations["vcf"]


async def test_an_upload_must_start_with_its_header(dir_stub: Stub, good_vcf: bytes) -> None:
    messages = upload_messages(assessment(), good_vcf)
    _, violations = await refused(dir_stub.AssessVcfUpload(stream(messages[1:])))
    assert "first message must be the header" in violations["stream[0].header"]
    _, violations = await refused(dir_stub.AssessVcfUpload(stream([messages[0], messages[0]])))
    assert "only chunks" in violations["stream[1]"]
    _, violations = await refused(dir_stub.AssessVcfUpload(stream([])))
    assert "empty" in violations["stream"]


async def test_broken_scoring_files_are_named_and_the_service_keeps_serving(
    dir_served: Served, pgs_file: Path, pgs37: ScoringFile, tmp_path: Path
) -> None:
    folder = tmp_path / "scoring"
    folder.mkdir()
    target = folder / pgs_file.name
    settings: GenomicsSettings = dir_served.settings.model_copy(update={"scoring_dir": folder})
    server, served = await _serve(settings)
    text = pgs_file.read_text()
    lines = text.splitlines(keepends=True)
    header_at = next(i for i, line in enumerate(lines) if line.startswith("chr_name"))
    vcf = vcf_text(pgs37, 1, seed=3)
    try:
        async with grpc.aio.insecure_channel(served.target) as channel:
            stub = Stub(channel)
            # a duplicated variant (and the count adjusted, so the duplicate is what is wrong)
            duplicated = "".join([*lines[:header_at + 2], lines[header_at + 1], *lines[header_at + 2:]])
            target.write_text(duplicated.replace("#variants_number=313", "#variants_number=314"))
            details, _ = await refused(stub.AssessVcf(request(vcf)), grpc.StatusCode.FAILED_PRECONDITION)
            assert f"scoring file {pgs_file.name} (GRCh37)" in details
            assert f"line {header_at + 3}: duplicate variant (same position and alleles as line {header_at + 2})" in details
            listed = (await stub.ListScores(genomics_pb2.ListScoresRequest())).scores[0]
            assert "duplicate variant" in listed.problem and not listed.builds

            # no effect_weight column
            target.write_text(text.replace("\teffect_weight\t", "\tweight\t"))
            details, _ = await refused(stub.AssessVcf(request(vcf)), grpc.StatusCode.FAILED_PRECONDITION)
            assert "no effect_weight column" in details

            # fixed without a restart
            shutil.copy(pgs_file, target)
            answer = await stub.AssessVcf(request(vcf))
            assert answer.assessment.samples[0].risks[0].score.scoring_file == pgs_file.name
    finally:
        await server.stop(grace=None)


async def test_unknown_fields_and_undecodable_bytes(dir_served: Served, dir_stub: Stub, good_vcf: bytes) -> None:
    foreign = genomics_pb2.AssessVcfRequest.FromString(request(good_vcf).SerializeToString() + b"\x78\x01")
    _, violations = await refused(dir_stub.AssessVcf(foreign))
    assert "unknown field number 15" in violations["request"]
    async with grpc.aio.insecure_channel(dir_served.target) as channel:
        raw = channel.stream_unary("/clinpred.genomics.v1.GenomicRiskService/AssessVcfUpload")

        async def items() -> AsyncIterator[bytes]:
            yield b"\xff\xff\xff\x01"

        _, violations = await refused(raw(items()))
        assert "stream[0]" in violations


async def test_concurrent_calls_keep_flowing_during_a_bad_upload(dir_stub: Stub, pgs37: ScoringFile) -> None:
    bad = asyncio.create_task(refused(dir_stub.AssessVcfUpload(stream(upload_messages(assessment(), b"x" * 1000, 5000)))))
    await still_serving(dir_stub, pgs37)
    await bad
