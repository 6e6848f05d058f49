"""The vectorised VCF record reader gives exactly what the cell-by-cell reader gives, or hands the line to it."""

from __future__ import annotations

import numpy as np
import pytest

from clinpred.pilots.common.errors import ClinpredError
from clinpred.pilots.genomics.genome_build import BuildWitness
from clinpred.pilots.genomics.text_stream import InputOrigin
from clinpred.pilots.genomics.vcf import (
    _EXACT,
    GRCH37_LENGTHS,
    _CallBlock,
    _Deferred,
    _Exact,
    _GenotypeParser,
    _parse_record,
    _vectorised_record,
    read_vcf,
)

SAMPLES = 40
GT_CELLS = ["0/0", "0/1", "1/0", "1/1", "0|1", "1|1", "./.", ".|.", "0/.", "./1", ".", "1", "0", "2/1", "0/2", "2|2",
            "10/1", "0/1/1", "a/1", "", "0-1"]
DS_CELLS = [".", "0", "2", "1.5", "0.998", "1e-3", "2.5", "-0.1", "nan", "x", "1_0", "0.33333333333"]
FORMATS = ["GT", "GT:DP", "GT:DS", "DS", "DP:GT", "GT:DS:DP", "DS:GT"]


def _random_record(rng: np.random.Generator, common: bool) -> str:
    """A record of ordinary calls (`common`), or one with any FORMAT and ALT and a share of odd cells."""
    chrom = str(rng.choice(["1", "chr1", "X", "22"]))
    alts = str(rng.choice(["G", "G,T", "."])) if not common else "G"
    fmt = str(rng.choice(FORMATS[:3] if common else FORMATS))
    odd_share = 0.0 if common else float(rng.choice([0.0, 0.0, 0.03, 0.5]))
    cells = []
    for _ in range(SAMPLES):
        odd = rng.random() < odd_share
        gt_pool = GT_CELLS if odd else GT_CELLS[:8]
        gt = str(gt_pool[rng.integers(len(gt_pool))])
        ds_pool = DS_CELLS if odd else DS_CELLS[:6]
        ds = str(ds_pool[rng.integers(len(ds_pool))]) if rng.random() < 0.8 else f"{rng.uniform(0, 2):.{rng.integers(1, 6)}f}"
        values = {"GT": gt, "DS": ds, "DP": str(rng.integers(0, 50))}
        cell = ":".join(values[key] for key in fmt.split(":"))
        if odd and rng.random() < 0.2:
            cell = cell.split(":")[0]  # trailing keys dropped, as VCF allows
        cells.append(cell)
    return "\t".join([chrom, str(int(rng.integers(1, 10_000))), ".", "A", alts, ".", "PASS", ".", fmt, *cells])


class _HandedOver(Exception):
    pass


def _fast(text: str, number: int) -> object:
    """What the vectorised reader makes of one line, its block decoded; `_EXACT` if it hands the line over."""
    raw = text.encode()
    parsed = _vectorised_record(raw, number, SAMPLES, None, GRCH37_LENGTHS, "auto")
    if not isinstance(parsed, _Deferred):
        return parsed
    block = _CallBlock()
    block.add(parsed, raw)

    def hand_over(raw: bytes, number: int, n_samples: int) -> None:
        raise _HandedOver

    try:
        (record,) = block.decode(hand_over)
    except _HandedOver:
        return _EXACT
    return record


def _exact(text: str, number: int) -> tuple[object, ...]:
    origin = InputOrigin("test.vcf")
    try:
        witness = BuildWitness("GRCh37", "VCF", origin)
        witness.settle()
        parsed = _parse_record(text, number, SAMPLES, origin, witness, None, "auto", _GenotypeParser(origin))
    except ClinpredError as error:
        return ("refused", type(error), str(error))
    assert parsed is not None
    site, values = parsed
    return ("parsed", site, values)


@pytest.mark.parametrize("common", [True, False])
def test_vectorised_records_equal_the_cell_by_cell_reader(common: bool) -> None:
    rng = np.random.default_rng(17 if common else 18)
    vectorised = 0
    for number in range(1, 401):
        text = _random_record(rng, common)
        fast = _fast(text, number)
        if isinstance(fast, _Exact):
            continue
        vectorised += 1
        assert isinstance(fast, tuple)
        kind, site, values = _exact(text, number)
        assert kind == "parsed", (text, site)
        assert fast[0] == site
        assert isinstance(values, np.ndarray)
        np.testing.assert_array_equal(fast[1], values)
    # Ordinary calls take the vectorised path; odd spellings mostly do not, and still agree when they do.
    if common:
        assert vectorised >= 300
    else:
        assert vectorised >= 40


def test_fixed_width_and_variable_width_calls_on_one_line() -> None:
    cells = ["0/1", "1|1", "./.", "0/."] * 10
    text = "\t".join(["X", "500", ".", "C", "T", ".", "PASS", ".", "GT", *cells])
    fast = _fast(text, 9)
    assert isinstance(fast, tuple)
    np.testing.assert_array_equal(fast[1][0, :4], [1, 2, np.nan, np.nan])
    assert isinstance(_vectorised_record(text.encode(), 9, SAMPLES, None, GRCH37_LENGTHS, "auto"), _Deferred)
    haploid = text.replace("\t0/.", "\t1")  # haploid calls on X count as homozygous
    fast = _fast(haploid, 9)
    assert isinstance(fast, tuple)
    np.testing.assert_array_equal(fast[1][0, :4], [1, 2, np.nan, 2])
    # On an autosome the same call is refused by the exact reader, so the vectorised one hands it over.
    autosome = haploid.replace("X\t500", "1\t500", 1)
    assert _fast(autosome, 9) is _EXACT


def test_sites_outside_the_filter_are_dropped_but_still_checked() -> None:
    header = ("##fileformat=VCFv4.2\n##contig=<ID=1,length=249250621>\n"
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\n")
    kept = "1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1\n"
    skipped = "1\t200\t.\tA\tG\t.\tPASS\t.\tGT\tgarbage\t1/1\n"  # cells of a skipped site are not read
    genotypes = read_vcf((header + kept + skipped).encode(), sites={("1", 100)})
    assert [s.pos for s in genotypes.sites] == [100]
    short = "1\t300\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n"
    with pytest.raises(ClinpredError, match="line 6: 10 columns, the #CHROM header has 11"):
        read_vcf((header + kept + skipped + short).encode(), sites={("1", 100)})
    beyond = "1\t249250622\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t0/0\n"
    with pytest.raises(ClinpredError, match="beyond chromosome 1 of GRCh37"):
        read_vcf((header + beyond).encode(), sites={("1", 100)})
    not_utf8 = b"1\t400\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t\xff\n"
    with pytest.raises(ClinpredError, match="line 4: not valid UTF-8 text"):
        read_vcf(header.encode() + not_utf8, sites={("1", 100)})


def test_blocks_keep_file_order_and_the_first_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("clinpred.pilots.genomics.vcf.BLOCK_LINES", 3)
    header = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\n"
    calls = ["0/1\t1/1", "0/0\t./.", "1|0\t0|0", "0/1:5\t1/1:3", "1/1\t0/1"]  # the fourth has a DP key
    records = [f"1\t{100 + k}\t.\tA\tG\t.\tPASS\t.\t{'GT:DP' if ':' in c else 'GT'}\t{c}\n" for k, c in enumerate(calls)]
    genotypes = read_vcf((header + "".join(records * 2)).encode())
    assert [s.line for s in genotypes.sites] == list(range(3, 13))
    np.testing.assert_array_equal(np.concatenate(genotypes.dosages)[:5], [[1, 2], [0, np.nan], [1, 0], [1, 2], [2, 1]])
    # A bad call in a block that is not yet full is refused before a later line's error is reached.
    monkeypatch.setattr("clinpred.pilots.genomics.vcf.BLOCK_LINES", 10)
    broken = [*records[:2], records[2].replace("1|0", "2|0"), records[4].replace("\t1/1", "")]
    with pytest.raises(ClinpredError, match="line 5, column 10: GT allele index exceeds the ALT alleles"):
        read_vcf((header + "".join(broken)).encode())
    with pytest.raises(ClinpredError, match="line 5: 10 columns"):
        read_vcf((header + "".join(broken[:2] + broken[3:])).encode())
