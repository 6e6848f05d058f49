"""Reading VCFs: GT and DS, plain, gzip and bgzip, streamed; build checks; every malformed input."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import numpy as np
import pytest

from clinpred.pilots.common.errors import ClinpredError, FailedPrecondition, InvalidInput, ResourceExhausted
from clinpred.pilots.genomics.vcf import GRCH37_LENGTHS, GRCH38_LENGTHS, detect_build, read_vcf

COLUMNS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP1\tP2\tP3\n"


def vcf_text(records: list[str], *, contigs: dict[str, int] | None = None, reference: str | None = None) -> str:
    header = "##fileformat=VCFv4.2\n"
    if reference:
        header += f"##reference={reference}\n"
    for chrom, length in (contigs or {}).items():
        header += f"##contig=<ID={chrom},length={length},assembly=x>\n"
    return header + COLUMNS + "".join(r + "\n" for r in records)


RECORDS = [
    "1\t100\trs1\tA\tG\t.\tPASS\t.\tGT\t0/0\t0|1\t1/1",
    "chr1\t200\t.\tC\tT,G\t.\tPASS\t.\tGT:DP\t1/2:10\t./.:3\t0/2",
    "2\t300\t.\tG\tA\t.\tPASS\t.\tGT:DS\t0/1:0.95\t1/1:.\t0/0:0.1",
    "X\t400\t.\tT\tC\t.\tPASS\t.\tGT\t1\t0/1\t0/.",
]


def test_gt_ds_multiallelic_haploid_and_half_calls() -> None:
    genotypes = read_vcf(vcf_text(RECORDS).encode())
    assert genotypes.samples == ("P1", "P2", "P3")
    assert [(s.chrom, s.pos, s.ref, s.alts) for s in genotypes.sites] == [
        ("1", 100, "A", ("G",)), ("1", 200, "C", ("T", "G")), ("2", 300, "G", ("A",)), ("X", 400, "T", ("C",))]
    np.testing.assert_array_equal(genotypes.dosages[0], [[0, 1, 2]])
    np.testing.assert_array_equal(genotypes.dosages[1], [[1, np.nan, 0], [1, np.nan, 1]])
    # DS is rounded to plink2's 1/16384 units; a missing DS falls back to GT, as plink2 does.
    np.testing.assert_allclose(genotypes.dosages[2], [[15565 / 16384, 2, 1638 / 16384]])
    # A haploid call on X counts as homozygous; a half call is missing.
    np.testing.assert_array_equal(genotypes.dosages[3], [[2, 1, np.nan]])


def test_gt_only_mode_ignores_ds() -> None:
    genotypes = read_vcf(vcf_text(RECORDS).encode(), dosage="GT")
    np.testing.assert_array_equal(genotypes.dosages[2], [[1, 2, 0]])


def test_plain_gzip_bgzip_and_streamed_chunks_agree(bgzip: Callable[[bytes], bytes]) -> None:
    raw = vcf_text(RECORDS * 1).encode()
    expected = read_vcf(raw)
    sources: list[object] = [gzip.compress(raw), bgzip(raw), bgzip(raw)[:5] + bgzip(raw)[5:],
                             (raw[i:i + 7] for i in range(0, len(raw), 7)),
                             (raw.decode()[i:i + 11] for i in range(0, len(raw), 11))]
    blob = bgzip(raw)
    sources.append(blob[i:i + 3] for i in range(0, len(blob), 3))
    for source in sources:
        parsed = read_vcf(source)  # type: ignore[arg-type]
        assert parsed.samples == expected.samples
        for got, want in zip(parsed.dosages, expected.dosages, strict=True):
            np.testing.assert_array_equal(got, want)


def test_sites_filter_keeps_only_requested_positions() -> None:
    genotypes = read_vcf(vcf_text(RECORDS).encode(), sites={("1", 200), ("X", 400)})
    assert [s.pos for s in genotypes.sites] == [200, 400]


def test_build_detected_from_contig_lengths_and_reference() -> None:
    assert detect_build({"1": GRCH37_LENGTHS["1"]}, None) == ("GRCh37", "contig lengths")
    assert detect_build({"chr1": 0, "2": GRCH38_LENGTHS["2"]}, "file:///ref/GRCh38.fa") == ("GRCh38", "contig lengths")
    assert detect_build({}, "ftp://x/hs37d5.fa.gz") == ("GRCh37", "##reference")
    assert detect_build({}, None) == (None, "none")
    with pytest.raises(InvalidInput, match="mix"):
        detect_build({"1": GRCH37_LENGTHS["1"], "2": GRCH38_LENGTHS["2"]}, None)
    with pytest.raises(InvalidInput, match="##reference names GRCh37"):
        detect_build({"1": GRCH38_LENGTHS["1"]}, "hg19.fa")


def test_vcf_in_another_build_than_declared_is_refused() -> None:
    grch38 = vcf_text(RECORDS, contigs={"chr1": GRCH38_LENGTHS["1"], "chr2": GRCH38_LENGTHS["2"]}).encode()
    assert read_vcf(grch38).build == "GRCh38"
    with pytest.raises(FailedPrecondition, match=r"in GRCh38 \(by its contig lengths\) but GRCh37 was declared"):
        read_vcf(grch38, declared_build="GRCh37")
    by_reference = vcf_text(RECORDS, reference="GRCh37.primary_assembly.fa").encode()
    with pytest.raises(FailedPrecondition, match="GRCh37"):
        read_vcf(by_reference, declared_build="hg38")
    beyond = vcf_text(["1\t249000000\t.\tA\tG\t.\t.\t.\tGT\t0/0\t0/1\t1/1"]).encode()
    with pytest.raises(FailedPrecondition, match="beyond chromosome 1 of GRCh38"):
        read_vcf(beyond, declared_build="GRCh38")
    assert read_vcf(beyond, declared_build="GRCh37").build == "GRCh37"


@pytest.mark.parametrize(
    ("records", "pattern"),
    [
        (["1\t100\t.\tA\tG\t.\t.\t.\tGT\t0/0\t0/1"], r"line 3: 11 columns, the #CHROM header has 12"),
        (["1\tx\t.\tA\tG\t.\t.\t.\tGT\t0/0\t0/1\t1/1"], r"line 3, column POS"),
        (["1\t100\t.\tA\tG\t.\t.\t.\tGT\t0/0\t0/1/1\t1/1"], r"line 3, column 11: GT is not diploid"),
        (["1\t100\t.\tA\tG\t.\t.\t.\tGT\t0/0\t1\t1/1"], r"line 3, column 11: haploid GT on an autosome"),
        (["1\t100\t.\tA\tG\t.\t.\t.\tGT\t0/0\t0/3\t1/1"], r"line 3, column 11: GT allele index exceeds"),
        (["1\t100\t.\tA\tG\t.\t.\t.\tGT\t0/0\ta/b\t1/1"], r"line 3, column 11: GT allele is not a number"),
        (["1\t100\t.\tA\tG\t.\t.\t.\tDS\t0.1\t2.5\t1"], r"line 3, column 11: DS outside"),
        (["1\t100\t.\tA\tG\t.\t.\t.\tDS\t0.1\tx\t1"], r"line 3, column 11: DS is not a number"),
        (["1\t100\t.\tA\tG\t.\t.\t.\tDP\t1\t2\t3"], r"line 3, column FORMAT: neither GT nor DS"),
        (["1\t100\t.\tAXZ\tG\t.\t.\t.\tGT\t0/0\t0/1\t1/1"], r"line 3, column REF"),
    ],
    ids=["columns", "pos", "triploid", "haploid-autosome", "allele-index", "allele-text", "ds-range", "ds-text",
         "no-genotypes", "ref"],
)
def test_malformed_records_name_line_and_column(records: list[str], pattern: str) -> None:
    with pytest.raises(InvalidInput, match=pattern) as caught:
        read_vcf(vcf_text(records).encode(), name="patient.vcf")
    assert "patient.vcf" in str(caught.value)
    assert "P2" not in str(caught.value)  # sample identifiers stay out of messages


def test_truncated_inputs_are_detected(bgzip: Callable[[bytes], bytes]) -> None:
    raw = vcf_text(RECORDS).encode()
    with pytest.raises(InvalidInput, match="truncated"):
        read_vcf(raw[:-12])
    packed = gzip.compress(raw)
    with pytest.raises(InvalidInput, match="gzip stream is truncated"):
        read_vcf(packed[: len(packed) // 2])
    blocks = bgzip(raw)
    with pytest.raises(InvalidInput, match="no end-of-file block"):
        read_vcf(blocks[:-28])
    with pytest.raises(InvalidInput, match="no end-of-file block"):
        read_vcf(blocks[:-28][i:i + 5] for i in range(0, len(blocks) - 28, 5))
    with pytest.raises(InvalidInput, match="no #CHROM header line"):
        read_vcf(raw[: raw.index(b"#CHROM")])
    with pytest.raises(InvalidInput, match="corrupt gzip"):
        read_vcf(packed[:20] + b"\x00" * 40 + packed[60:])


def test_other_rejections() -> None:
    with pytest.raises(InvalidInput, match="not a VCF"):
        read_vcf(b"chr\tpos\n")
    with pytest.raises(InvalidInput, match="no FORMAT column"):
        read_vcf(b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    with pytest.raises(InvalidInput, match="not unique"):
        read_vcf(vcf_text([]).replace("P3", "P1").encode())
    with pytest.raises(InvalidInput, match="empty"):
        read_vcf(b"")
    with pytest.raises(InvalidInput, match=r"^text: no such file") as caught:
        read_vcf(vcf_text(RECORDS))  # content given as a str is taken for a path, and never echoed
    assert "0/1" not in str(caught.value)
    with pytest.raises(ResourceExhausted, match="limit"):
        read_vcf(vcf_text(RECORDS).encode(), max_bytes=100)
    bomb = gzip.compress(b"##fileformat=VCFv4.2\n" + b"##" + b"x" * 5_000_000 + b"\n")
    with pytest.raises(ResourceExhausted, match="decompressed size"):
        read_vcf(bomb, max_bytes=1_000_000)


@pytest.mark.parametrize(
    ("source", "kind", "reason"),
    [
        (vcf_text(["1\t1x\t.\tA\tG\t.\tPASS\t.\tGT\t0/0\t0/1\t1/1"]).encode(), InvalidInput, "column POS: not an integer"),
        (vcf_text(["1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/0\t0/1"]).encode(), InvalidInput, "the #CHROM header has 12"),
        (vcf_text(["1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1/1\t0/1\t1/1"]).encode(), InvalidInput, "GT is not diploid"),
        (vcf_text(["1\t100\t.\tA\tG\t.\tPASS\t.\tDS\t3\t0\t0"]).encode(), InvalidInput, "DS outside [0, 2]"),
        (b"\x1f\x8b\x08\x00garbage", InvalidInput, "gzip"),
        (b"hello\n", InvalidInput, "not a VCF"),
        (gzip.compress(b"##fileformat=VCFv4.2\n" + b"##x\n" * 300_000), ResourceExhausted, "decompressed size exceeds"),
    ],
)
def test_content_errors_name_the_field_the_caller_hands_in(source: bytes, kind: type[ClinpredError], reason: str) -> None:
    with pytest.raises(kind) as caught:
        read_vcf(source, name="upload", max_bytes=1_000_000, field="stream[*].chunk", build_field="header.build")
    error = caught.value
    ((violation),) = error.violations
    assert violation.field == "stream[*].chunk" and reason in violation.description
    assert violation.description == error.message and error.message.startswith("upload")
    # offline (no request field), the same error carries no field violation
    with pytest.raises(kind) as offline:
        read_vcf(source, name="upload", max_bytes=1_000_000)
    assert offline.value.violations == ()


def test_a_contradicted_build_names_the_build_field() -> None:
    b38 = vcf_text(RECORDS, contigs={"1": GRCH38_LENGTHS["1"]}).encode()
    with pytest.raises(FailedPrecondition) as caught:
        read_vcf(b38, declared_build="GRCh37", field="vcf", build_field="assessment.build")
    assert [v.field for v in caught.value.violations] == ["assessment.build"]
    assert "in GRCh38 (by its contig lengths) but GRCh37 was declared" in caught.value.violations[0].description
    beyond = vcf_text([f"1\t{GRCH37_LENGTHS['1'] + 10}\t.\tA\tG\t.\tPASS\t.\tGT\t0/0\t0/1\t1/1"]).encode()
    with pytest.raises(FailedPrecondition) as caught:
        read_vcf(beyond, declared_build="GRCh37", field="vcf", build_field="assessment.build")
    assert [v.field for v in caught.value.violations] == ["assessment.build"]
    # contig lengths of two builds contradict each other, not the declared build: that is the VCF's content
    mixed = vcf_text(RECORDS, contigs={"1": GRCH37_LENGTHS["1"], "2": GRCH38_LENGTHS["2"]}).encode()
    with pytest.raises(InvalidInput) as invalid:
        read_vcf(mixed, declared_build="GRCh37", field="vcf", build_field="assessment.build")
    assert [v.field for v in invalid.value.violations] == ["vcf"]
