"""Reading PGS Catalog scoring files: the real PGS000004, older formats, and every rejection."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from clinpred.pilots.common.errors import FailedPrecondition, InvalidInput
from clinpred.pilots.genomics.scoring_file import ScoringFile, read_scoring_file

HEADER = "###PGS CATALOG SCORING FILE\n#format_version=2.0\n#pgs_id=PGS999999\n#genome_build=GRCh37\n"


def small_file(rows: list[str], columns: str = "chr_name\tchr_position\teffect_allele\tother_allele\teffect_weight",
               header: str = HEADER) -> bytes:
    return (header + columns + "\n" + "".join(r + "\n" for r in rows)).encode()


def test_pgs000004_loads_with_header_metadata(pgs000004: ScoringFile) -> None:
    assert pgs000004.pgs_id == "PGS000004"
    assert pgs000004.header.pgs_name == "PRS313_BC"
    assert pgs000004.header.variants_number == 313 == len(pgs000004)
    assert pgs000004.header.weight_type == "NR"
    assert pgs000004.header.harmonized_build == "GRCh38"
    assert pgs000004.build == "GRCh37"
    assert pgs000004.position_columns == ("chr_name", "chr_position")
    assert pgs000004.has_allele_frequency
    first = pgs000004.variant(0)
    assert (first.chrom, first.pos, first.effect_allele, first.other_allele) == ("1", 100880328, "T", "A")
    assert first.effect_weight == pytest.approx(0.0373)
    assert first.allele_frequency == pytest.approx(0.4097)
    indel = [pgs000004.variant(i) for i in range(len(pgs000004)) if pgs000004.effect_allele[i] == "TTCTGAAACAGGG"]
    assert len(indel) == 1 and indel[0].other_allele == "T"


def test_build_selects_source_or_harmonized_positions(pgs000004_path: Path) -> None:
    grch38 = read_scoring_file(pgs000004_path, build="hg38")
    assert grch38.build == "GRCh38"
    assert grch38.position_columns == ("hm_chr", "hm_pos")
    assert grch38.pos[0] == 100414772
    grch37 = read_scoring_file(pgs000004_path, build="GRCh37")
    assert grch37.pos[0] == 100880328
    with pytest.raises(FailedPrecondition, match="NCBI36"):
        read_scoring_file(pgs000004_path, build="hg18")


def test_gzipped_and_streamed_files_equal_plain(pgs000004_path: Path, pgs000004: ScoringFile) -> None:
    raw = pgs000004_path.read_bytes()
    packed = gzip.compress(raw)
    from_gzip = read_scoring_file(packed, name="PGS000004_hm.txt.gz")
    streamed = read_scoring_file(iter([packed[i:i + 333] for i in range(0, len(packed), 333)]))
    for parsed in (from_gzip, streamed):
        assert np.array_equal(parsed.effect_weight, pgs000004.effect_weight)
        assert np.array_equal(parsed.pos, pgs000004.pos)
        assert list(parsed.effect_allele) == list(pgs000004.effect_allele)


def test_format_1_with_reference_allele_and_no_frequencies() -> None:
    text = (
        "### PGS CATALOG SCORING FILE - see www.pgscatalog.org/downloads/#dl_ftp for additional information\n"
        "## POLYGENIC SCORE (PGS) INFORMATION\n# PGS ID = PGS000001\n# Reported Trait = Breast Cancer\n"
        "# Original Genome Build = GRCh37\n# Number of Variants = 2\n"
        "rsID\tchr_name\tchr_position\teffect_allele\treference_allele\teffect_weight\n"
        "rs1\t1\t100\tA\tG\t0.5\nrs2\tchr2\t200\tc\tt\t-0.25\n"
    )
    parsed = read_scoring_file(text.encode())
    assert parsed.pgs_id == "PGS000001"
    assert parsed.header.trait_reported == "Breast Cancer"
    assert parsed.build == "GRCh37"
    assert list(parsed.other_allele) == ["G", "T"]
    assert list(parsed.chrom) == ["1", "2"]
    assert not parsed.has_allele_frequency
    assert parsed.variant(1).variant_id == "2:200:T:C"


def test_harmonized_rows_without_position_are_kept_as_unplaced() -> None:
    columns = "chr_name\tchr_position\teffect_allele\tother_allele\teffect_weight\thm_chr\thm_pos"
    header = HEADER + "#HmPOS_build=GRCh38\n"
    parsed = read_scoring_file(small_file(["1\t100\tA\tG\t0.1\t1\t150", "1\t200\tC\tT\t0.2\t\t"], columns, header),
                               build="GRCh38")
    assert list(parsed.pos) == [150, -1]
    assert parsed.chrom[1] is None


def test_missing_other_allele_uses_single_inferred_allele() -> None:
    columns = "chr_name\tchr_position\teffect_allele\tother_allele\teffect_weight\thm_chr\thm_pos\thm_inferOtherAllele"
    rows = ["1\t100\tA\t\t0.1\t1\t100\tG", "1\t200\tC\t\t0.2\t1\t200\tT/G"]
    parsed = read_scoring_file(small_file(rows, columns))
    assert list(parsed.other_allele) == ["G", None]


@pytest.mark.parametrize(
    ("content", "error", "pattern"),
    [
        (small_file(["1\t100\tA\tG\t0.1", "1\t100\tA\tG\t0.2"]), InvalidInput, r"line 7: duplicate variant .*line 6"),
        (small_file(["1\t100\tA\tG"], "chr_name\tchr_position\teffect_allele\tother_allele"), InvalidInput,
         "no effect_weight column"),
        (small_file(["1\t100\tA\tG\tabc"]), InvalidInput, r"line 6, column effect_weight: 'abc' is not a number"),
        (small_file(["1\t100\tG\t0.1"], "chr_name\tchr_position\tother_allele\teffect_weight"), InvalidInput,
         "no effect_allele column"),
        (small_file(["1\t100\t\tG\t0.1"]), InvalidInput, r"line 6, column effect_allele: missing allele"),
        (small_file(["rs1\tA\tG\t0.1"], "rsID\teffect_allele\tother_allele\teffect_weight"), FailedPrecondition,
         "rsID only"),
        (small_file(["1\t100\tA\tG\t0.1\tTrue"], "chr_name\tchr_position\teffect_allele\tother_allele\teffect_weight"
                    "\tis_interaction"), FailedPrecondition, r"line 6, column is_interaction: interaction terms"),
        (small_file(["1\t100\tA\tG\t0\t0.1\t0.3"], "chr_name\tchr_position\teffect_allele\tother_allele\t"
                    "dosage_0_weight\tdosage_1_weight\tdosage_2_weight"), FailedPrecondition, "dosage weights"),
        (small_file(["1\t100\tA\tG\t0.1\tTrue"], "chr_name\tchr_position\teffect_allele\tother_allele\teffect_weight"
                    "\tis_recessive"), FailedPrecondition, "recessive"),
        (small_file(["1\t100\tA\tG\t0.1"], header=HEADER + "#variants_number=2\n"), InvalidInput,
         "variants_number=2 but the file has 1"),
        (small_file(["1\t100\tA\tG\t1.2"], header=HEADER + "#weight_type=OR\n"), FailedPrecondition, "not log-scale"),
        (small_file(["6\t100\tHLA-DRB1*15\tG\t0.1"]), FailedPrecondition, "not a DNA sequence"),
        (small_file(["1\tabc\tA\tG\t0.1"]), InvalidInput, r"column chr_position: 'abc' is not an integer"),
        (small_file(["1\t100\tA\tG\t0.1\t0.1"]), InvalidInput, "6 columns, the header has 5"),
        (small_file(["1\t100\tA\tG\t0.1"]) + b"1\t200\tC", InvalidInput, "truncated"),
        (b"#pgs_id=PGS1\n#genome_build=GRCh37\n", InvalidInput, "no column header line"),
    ],
    ids=["duplicate", "no-weight-column", "non-numeric-weight", "no-effect-allele-column", "empty-effect-allele",
         "rsid-only", "interaction", "dosage-weights", "recessive", "variant-count", "odds-ratio-weights",
         "hla-allele", "bad-position", "extra-column", "truncated-last-line", "not-a-scoring-file"],
)
def test_unscorable_files_are_rejected_naming_the_problem(content: bytes, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern) as caught:
        read_scoring_file(content, name="user.txt")
    if "line" in pattern:
        assert "user.txt" in str(caught.value)
