"""Fixtures of the genomics tests: the real PGS000004 file, plink2, simulated genotypes, bgzip."""

from __future__ import annotations

import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from clinpred.pilots.genomics.matching import complement, is_strand_ambiguous
from clinpred.pilots.genomics.scoring_file import ScoringFile, read_scoring_file
from clinpred.pilots.genomics.text_stream import BGZF_EOF
from clinpred.pilots.genomics.vcf import Genotypes, VcfSite
from tests.unit.pilots.genomics.plink2 import PLINK2_INSTALL

REPO_ROOT = Path(__file__).resolve().parents[4]
PGS_DIR = REPO_ROOT.parent / "shared" / "data" / "pgs"


@pytest.fixture(scope="session")
def pgs000004_path() -> Path:
    path = PGS_DIR / "PGS000004_hm.txt"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the shared PGS data must sit beside the repository (../shared/data/pgs)")
    return path


@pytest.fixture(scope="session")
def pgs000004(pgs000004_path: Path) -> ScoringFile:
    return read_scoring_file(pgs000004_path)


@pytest.fixture(scope="session")
def plink2() -> str:
    found = shutil.which("plink2")
    if found is None:
        pytest.fail(f"plink2 is not on PATH; these parity tests need it: {PLINK2_INSTALL}")
    return found


SimulateGenotypes = Callable[..., Genotypes]


@pytest.fixture(scope="session")
def simulate_genotypes() -> SimulateGenotypes:
    """Genotypes at a score's positions, drawn from its allele frequencies.

    Half the sites carry the effect allele as ALT and half as REF; `flip`
    writes that share of non-ambiguous SNVs on the opposite strand;
    `missing` blanks that share of calls; `dosage` draws continuous dosages.
    """

    def simulate(
        score: ScoringFile,
        samples: int,
        *,
        seed: int = 0,
        missing: float = 0.0,
        flip: float = 0.0,
        dosage: bool = False,
        build: str | None = "GRCh37",
    ) -> Genotypes:
        rng = np.random.default_rng(seed)
        sites: list[VcfSite] = []
        dosages: list[np.ndarray] = []
        for i in range(len(score)):
            effect = str(score.effect_allele[i])
            other = score.other_allele[i] or ("A" if effect != "A" else "C")
            frequency = score.allele_frequency[i]
            frequency = 0.3 if not np.isfinite(frequency) else float(frequency)
            if dosage:
                effect_dosage = np.clip(rng.binomial(2, frequency, samples) + rng.normal(0, 0.15, samples), 0, 2)
                effect_dosage = np.round(effect_dosage, 3)
            else:
                effect_dosage = rng.binomial(2, frequency, samples).astype(float)
            if len(effect) == 1 and len(other) == 1 and not is_strand_ambiguous(effect, other) and rng.random() < flip:
                effect, other = complement(effect), complement(other)
            if i % 2:
                ref, alt, alt_dosage = other, effect, effect_dosage
            else:
                ref, alt, alt_dosage = effect, other, 2.0 - effect_dosage
            alt_dosage = alt_dosage.copy()
            alt_dosage[rng.random(samples) < missing] = np.nan
            sites.append(VcfSite(str(score.chrom[i]), int(score.pos[i]), ref, (alt,), 0))
            dosages.append(alt_dosage[None, :])
        names = tuple(f"sample{k:04d}" for k in range(samples))
        return Genotypes(names, tuple(sites), tuple(dosages), build, "declared", "simulated")

    return simulate


def bgzip_bytes(data: bytes, block: int = 4096) -> bytes:
    """BGZF: gzip members of at most 64 KiB with the BC extra field, then the EOF block."""
    out = bytearray()
    for start in range(0, len(data), block):
        chunk = data[start:start + block]
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = compressor.compress(chunk) + compressor.flush()
        size = len(payload) + 25
        out += b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00" + struct.pack("<H", size)
        out += payload + struct.pack("<II", zlib.crc32(chunk), len(chunk))
    return bytes(out + BGZF_EOF)


@pytest.fixture(scope="session")
def bgzip() -> Callable[[bytes], bytes]:
    return bgzip_bytes
