"""Line-length and decompression limits of every text reader, and deadlines that stop parsing early.

Regression: a 521 KB gzip of 512 MiB without a newline kept a worker busy for 159 s and took +1 GB,
because lines were buffered without a limit by appending to a growing string.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pytest

from clinpred.pilots.common.cancellation import Deadline
from clinpred.pilots.common.errors import DeadlineExceeded, InvalidInput, ResourceExhausted
from clinpred.pilots.genomics.scoring_file import MAX_SCORING_LINE_BYTES, read_scoring_file
from clinpred.pilots.genomics.text_stream import DEADLINE_EVERY_LINES, read_lines
from clinpred.pilots.genomics.vcf import MAX_VCF_LINE_BYTES, read_vcf

MIB = 1 << 20
HEADER = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\n"


def gzip_of(parts: Iterator[bytes]) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join(compressor.compress(part) for part in parts) + compressor.flush()


def test_the_probes_gzip_bomb_without_a_newline_is_refused_at_the_line_limit() -> None:
    # 512 gzip members of 1 MiB each, as bgzip writes them: one compression, repeated.
    bomb = gzip_of(iter([b"##fileformat=VCFv4.2\n"])) + gzip_of(iter([b"A" * MIB])) * 512
    assert len(bomb) < 600_000
    with pytest.raises(InvalidInput) as caught:
        read_vcf(bomb, name="upload", field="vcf")
    ((violation),) = caught.value.violations
    assert violation.field == "vcf"
    assert violation.description == f"upload line 2: longer than {MAX_VCF_LINE_BYTES} bytes; reading stopped"


def test_reading_stops_as_soon_as_a_line_is_too_long() -> None:
    sent = []

    def chunks() -> Iterator[bytes]:
        yield b"first line\n"
        for _ in range(1000):
            sent.append(1)
            yield b"x" * MIB

    with pytest.raises(InvalidInput, match="line 2: longer than 4194304 bytes"):
        list(read_lines(chunks(), name="upload", max_line_bytes=4 * MIB))
    assert len(sent) == 5  # the fifth MiB crossed the limit; nothing after it was read


def test_lines_up_to_the_limit_are_read_and_crlf_is_not_counted() -> None:
    limit = 1000
    text = b"a" * limit + b"\r\n" + b"b" * limit + b"\n" + b"c" * limit
    lines = list(read_lines(text, name="t", max_line_bytes=limit))
    assert [(line.number, len(line.text), line.terminated) for line in lines] == [
        (1, limit, True),
        (2, limit, True),
        (3, limit, False),
    ]
    with pytest.raises(InvalidInput, match="t line 3: longer than 1000 bytes"):
        list(read_lines(text + b"c", name="t", max_line_bytes=limit))


def test_a_long_line_split_across_many_small_chunks_is_read_whole() -> None:
    line = b"y" * 100_000
    pieces = [line[i : i + 7] for i in range(0, len(line), 7)] + [b"\nz\n"]
    assert [len(x.text) for x in read_lines(pieces, name="t")] == [100_000, 1]


def test_vcf_lines_for_many_samples_fit_the_vcf_limit() -> None:
    samples = 200_000
    header = b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + b"\t".join(b"s%d" % i for i in range(samples))
    record = b"1\t1000\t.\tA\tG\t.\tPASS\t.\tGT:DS\t" + b"\t".join([b"0|1:0.998"] * samples)
    assert len(record) > MIB
    genotypes = read_vcf(b"##fileformat=VCFv4.2\n" + header + b"\n" + record + b"\n", name="t")
    assert genotypes.n_samples == samples and float(genotypes.dosages[0][0, 5]) == pytest.approx(0.998, abs=1e-4)


def test_a_scoring_file_line_is_bounded() -> None:
    header = b"#pgs_id=PGS_T\nchr_name\tchr_position\teffect_allele\tother_allele\teffect_weight\n"
    with pytest.raises(InvalidInput, match=f"line 3: longer than {MAX_SCORING_LINE_BYTES} bytes"):
        read_scoring_file(header + b"1\t100\tA\tG\t0.1" + b"0" * MAX_SCORING_LINE_BYTES + b"\n", name="t")


def test_the_decompressed_size_is_bounded() -> None:
    # Short lines, so the line limit never fires: the decompression limit does.
    bomb = gzip_of(iter([b"##fileformat=VCFv4.2\n"])) + gzip_of(iter([(b"##" + b"x" * 1021 + b"\n") * 1024])) * 64
    assert len(bomb) < 200_000
    with pytest.raises(ResourceExhausted) as caught:
        read_vcf(bomb, name="upload", field="vcf", max_bytes=16 * MIB)
    ((violation),) = caught.value.violations
    assert violation == violation.__class__("vcf", f"upload: decompressed size exceeds the limit of {16 * MIB} bytes")


def test_a_deadline_that_passes_mid_parse_stops_a_large_vcf_early() -> None:
    produced = [0]

    def lines() -> Iterator[bytes]:
        yield HEADER
        for position in range(1, 200_001):
            produced[0] += 1
            yield b"1\t%d\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n" % position

    deadline = Deadline(should_stop=lambda: produced[0] >= 10_000)
    with pytest.raises(DeadlineExceeded):
        read_vcf(lines(), name="t", deadline=deadline)
    # Stopped within one check interval after the deadline passed, far from the 200,000 lines.
    assert 10_000 <= produced[0] <= 10_000 + DEADLINE_EVERY_LINES


def test_a_deadline_stops_reading_a_scoring_file() -> None:
    rows = b"".join(b"1\t%d\tA\tG\t0.1\n" % i for i in range(1, 20_001))
    text = b"#pgs_id=PGS_T\nchr_name\tchr_position\teffect_allele\tother_allele\teffect_weight\n" + rows
    with pytest.raises(DeadlineExceeded):
        read_scoring_file(text, name="t", deadline=Deadline.after(-1.0))


def test_a_deadline_is_checked_by_bytes_when_lines_are_long() -> None:
    checks = [0]

    def should_stop() -> bool:
        checks[0] += 1
        return False

    long_lines = (b"z" * 100_000 + b"\n") * 50  # 5 MB in 50 lines, one chunk
    assert len(list(read_lines(long_lines, name="t", deadline=Deadline(should_stop=should_stop)))) == 50
    assert checks[0] >= 5  # about once per MiB, though far fewer than DEADLINE_EVERY_LINES lines were read
