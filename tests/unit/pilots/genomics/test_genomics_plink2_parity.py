"""Our score sums equal `plink2 --score` on the same VCF and scoring file (plink2 must be installed).

plink2 2.00a3.5 prints 6 significant digits, so each of its numbers is known
to half a unit of its 6th digit; the sums are compared within 1e-6 plus that,
and the per-variant run (one score column per variant) checks every
contribution within that precision.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from clinpred.pilots.genomics.matching import match_variants
from clinpred.pilots.genomics.scoring import FrequencySource, effect_dosages, sample_scores
from clinpred.pilots.genomics.scoring_file import ScoringFile, read_scoring_file
from clinpred.pilots.genomics.vcf import Genotypes, read_vcf, vcf_lines
from tests.unit.pilots.genomics.plink2 import run_plink2_score

SimulateGenotypes = Callable[..., Genotypes]


def printed_precision(value: float) -> float:
    """Half a unit in the 6th significant digit: how exactly plink2's printed number is known."""
    return 0.0 if value == 0 else 0.5 * 10 ** (math.floor(math.log10(abs(value))) - 5)


def assert_plink2_parity(vcf_path: Path, score: ScoringFile, work: Path, *, read_freq: bool = True,
                         frequency: FrequencySource = "auto") -> float:
    genotypes = read_vcf(vcf_path)
    effect = effect_dosages(match_variants(score, genotypes), frequency)
    ours = {s.sample: s for s in sample_scores(effect)}
    sums = run_plink2_score(effect, vcf_path, work / "sum", read_freq=read_freq)
    per_variant = run_plink2_score(effect, vcf_path, work / "per_variant", per_variant=True, read_freq=read_freq)
    assert set(sums) == set(ours)
    worst = 0.0
    for sample, columns in sums.items():
        plink = columns[f"{score.pgs_id}_SUM"]
        difference = abs(ours[sample].score_sum - plink)
        worst = max(worst, difference)
        assert difference <= 1e-6 + printed_precision(plink), (sample, ours[sample].score_sum, plink)
        terms = [per_variant[sample][f"V{i}_SUM"] for i in range(len(effect.match.matches))]
        for term, contribution in zip(terms, ours[sample].contributions, strict=True):
            assert abs(term - contribution.contribution) <= 1e-12 + printed_precision(term)
        assert abs(sum(terms) - ours[sample].score_sum) <= 1e-6 + sum(printed_precision(t) for t in terms)
    return worst


def write_vcf(genotypes: Genotypes, path: Path, *, with_dosage: bool = False,
              bgzip: Callable[[bytes], bytes] | None = None) -> Path:
    data = "".join(vcf_lines(genotypes, with_dosage=with_dosage)).encode()
    path.write_bytes(bgzip(data) if bgzip else data)
    return path


def test_pgs000004_hard_calls_with_missing_and_flipped_alleles(
    plink2: str, pgs000004: ScoringFile, simulate_genotypes: SimulateGenotypes, tmp_path: Path
) -> None:
    genotypes = simulate_genotypes(pgs000004, 80, seed=11, missing=0.05, flip=0.3)
    vcf = write_vcf(genotypes, tmp_path / "cohort.vcf")
    match = match_variants(pgs000004, read_vcf(vcf))
    assert match.overlap.matched == 282
    assert {"refalt", "altref", "refalt_flip", "altref_flip"} <= set(match.overlap.match_types)
    assert effect_dosages(match).missing.any()
    assert assert_plink2_parity(vcf, pgs000004, tmp_path) <= 5e-6


def test_pgs000004_dosages_bgzipped(
    plink2: str, pgs000004: ScoringFile, simulate_genotypes: SimulateGenotypes, tmp_path: Path,
    bgzip: Callable[[bytes], bytes],
) -> None:
    genotypes = simulate_genotypes(pgs000004, 60, seed=12, missing=0.03, flip=0.2, dosage=True)
    vcf = write_vcf(genotypes, tmp_path / "dosages.vcf.gz", with_dosage=True, bgzip=bgzip)
    parsed = read_vcf(vcf)
    assert any(not np.allclose(d[np.isfinite(d)], np.round(d[np.isfinite(d)])) for d in parsed.dosages)
    assert_plink2_parity(vcf, pgs000004, tmp_path)


def test_cohort_frequencies_when_the_file_has_none(
    plink2: str, pgs000004_path: Path, simulate_genotypes: SimulateGenotypes, tmp_path: Path
) -> None:
    lines = pgs000004_path.read_text().splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.startswith("chr_name"))
    drop = lines[header_at].split("\t").index("allelefrequency_effect")
    stripped = lines[:header_at] + ["\t".join(c for k, c in enumerate(line.split("\t")) if k != drop)
                                    for line in lines[header_at:]]
    score = read_scoring_file(("\n".join(stripped) + "\n").encode(), name="PGS000004_nofreq.txt")
    assert not score.has_allele_frequency
    genotypes = simulate_genotypes(read_scoring_file(pgs000004_path), 70, seed=13, missing=0.08, flip=0.1)
    vcf = write_vcf(genotypes, tmp_path / "cohort.vcf")
    # plink2 estimates the frequencies itself here (no --read-freq), from the 70 samples' dosages.
    assert_plink2_parity(vcf, score, tmp_path, read_freq=False)


def test_synthetic_score_with_indels_and_multiallelic_neighbours(
    plink2: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    score_rows = []
    vcf_rows = []
    samples = [f"s{i}" for i in range(55)]
    for k in range(40):
        pos = 1000 + 100 * k
        kind = k % 4
        effect, other, ref, alt = {
            0: ("A", "G", "A", "G"), 1: ("CTT", "C", "C", "CTT"), 2: ("G", "A", "C", "T"), 3: ("T", "TA", "T", "TA"),
        }[kind]
        weight = round(float(rng.normal(0, 0.2)), 5)
        score_rows.append(f"3\t{pos}\t{effect}\t{other}\t{weight}\t{rng.uniform(0.05, 0.95):.4f}")
        calls = rng.choice(["0/0", "0/1", "1/1", "./.", "0|1", "1|0"], size=len(samples), p=[.3, .3, .2, .05, .1, .05])
        vcf_rows.append(f"3\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\t.\tGT\t" + "\t".join(calls))
    # A multiallelic record at its own position, not in the score: plink2 and we both ignore it.
    vcf_rows.append("3\t99999\t.\tA\tC,G\t.\tPASS\t.\tGT\t" + "\t".join(["1/2"] * len(samples)))
    score_text = ("#pgs_id=PGS_SYN\n#genome_build=GRCh37\nchr_name\tchr_position\teffect_allele\tother_allele\t"
                  "effect_weight\tallelefrequency_effect\n" + "\n".join(score_rows) + "\n")
    vcf_text = ("##fileformat=VCFv4.2\n##contig=<ID=3,length=198022430>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\t"
                "INFO\tFORMAT\t" + "\t".join(samples) + "\n" + "\n".join(vcf_rows) + "\n")
    vcf = tmp_path / "synthetic.vcf"
    vcf.write_text(vcf_text)
    score = read_scoring_file(score_text.encode())
    match = match_variants(score, read_vcf(vcf))
    assert match.overlap.matched == 40
    assert match.overlap.match_types == {"refalt": 20, "altref": 10, "refalt_flip": 10}
    assert_plink2_parity(vcf, score, tmp_path)
