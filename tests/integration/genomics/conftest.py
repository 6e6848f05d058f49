"""Genomics service on in-process servers: the model package's own layout, a PGS Catalog directory, two cancers.

Genotypes are simulated at the score's variants from the real PGS000004
file's allele frequencies (../shared/data/pgs, never copied into the repo).
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.genomics.registry import BREAST
from clinpred.pilots.genomics.risk import GenomicRiskPredictor
from clinpred.pilots.genomics.scoring_file import ScoringFile, read_scoring_file
from clinpred.pilots.genomics.training import train_genomics
from clinpred.pilots.genomics.vcf import CHROMOSOME_LENGTHS, Genotypes, VcfSite, vcf_lines
from clinpred.services.api.genomics.v1 import genomics_pb2_grpc
from clinpred.services.common.model_store import register_package
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.genomics.service import genomics_mount
from clinpred.services.genomics.settings import GenomicsSettings
from tests.conftest import SHARED, served_package
from tests.unit.pilots.genomics.conftest import bgzip_bytes

Stub = genomics_pb2_grpc.GenomicRiskServiceStub
MAX_UPLOAD = 4 * 1024 * 1024
MAX_PATIENTS = 20
SYNTHETIC_VARIANTS = 5000  # more than the 4096 slots of one ciphertext at poly_modulus_degree 8192
SYNTHETIC_PGS = "PGS900001"


@pytest.fixture(scope="session")
def pgs_file() -> Path:
    path = SHARED / "data" / "pgs" / "PGS000004_hm.txt"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the shared PGS data must sit beside the repository (../shared/data/pgs)")
    return path


@pytest.fixture(scope="session")
def pgs37(pgs_file: Path) -> ScoringFile:
    return read_scoring_file(pgs_file, build="GRCh37")


@pytest.fixture(scope="session")
def pgs38(pgs_file: Path) -> ScoringFile:
    return read_scoring_file(pgs_file, build="GRCh38")


@pytest.fixture(scope="session")
def breast_package() -> ModelPackage:
    return served_package("genomics", GenomicsSettings().model_name, GenomicsSettings().model_version)


@pytest.fixture(scope="session")
def breast_predictor(breast_package: ModelPackage) -> GenomicRiskPredictor:
    return GenomicRiskPredictor.load(breast_package)


def vcf_text(score: ScoringFile, samples: int, *, seed: int = 0, build: str = "GRCh37", missing: float = 0.0,
             names: tuple[str, ...] | None = None) -> bytes:
    """A VCF at the score's positions (REF = other allele, ALT = effect allele), genotypes from its frequencies."""
    rng = np.random.default_rng(seed)
    sites, dosages = [], []
    for i in range(len(score)):
        frequency = float(score.allele_frequency[i]) if np.isfinite(score.allele_frequency[i]) else 0.3
        drawn = rng.binomial(2, frequency, samples).astype(float)
        drawn[rng.random(samples) < missing] = np.nan
        effect = str(score.effect_allele[i])
        other = score.other_allele[i] or ("A" if effect != "A" else "C")
        sites.append(VcfSite(str(score.chrom[i]), int(score.pos[i]), other, (effect,), 0))
        dosages.append(drawn[None, :])
    order = sorted(range(len(sites)), key=lambda i: (sites[i].chrom.zfill(2), sites[i].pos))
    names = names or tuple(f"person-{k:03d}" for k in range(samples))
    genotypes = Genotypes(names, tuple(sites[i] for i in order), tuple(dosages[i] for i in order), build, "declared", "t")
    return "".join(vcf_lines(genotypes)).encode()


@pytest.fixture(scope="session")
def make_vcf() -> Callable[..., bytes]:
    return vcf_text


@pytest.fixture(scope="session")
def bgzip() -> Callable[[bytes], bytes]:
    return bgzip_bytes


@pytest.fixture(scope="session")
def synthetic_scoring_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PGS Catalog file of 5000 non-ambiguous SNVs with frequencies, for a second cancer."""
    rng = np.random.default_rng(11)
    chroms = rng.integers(1, 23, SYNTHETIC_VARIANTS)
    lines = [
        "#format_version=2.0", f"#pgs_id={SYNTHETIC_PGS}", "#pgs_name=SYNTH5000", "#trait_reported=Colorectal cancer",
        "#genome_build=GRCh37", f"#variants_number={SYNTHETIC_VARIANTS}",
        "chr_name\tchr_position\teffect_allele\tother_allele\teffect_weight\tallelefrequency_effect",
    ]
    used: set[tuple[int, int]] = set()
    pairs = [("A", "G"), ("G", "A"), ("C", "T"), ("T", "C"), ("A", "C"), ("G", "T")]
    for chrom in chroms:
        pos = int(rng.integers(1_000_000, CHROMOSOME_LENGTHS["GRCh37"][str(chrom)] - 1_000_000))
        while (int(chrom), pos) in used:
            pos += 1
        used.add((int(chrom), pos))
        effect, other = pairs[int(rng.integers(len(pairs)))]
        lines.append(f"{chrom}\t{pos}\t{effect}\t{other}\t{rng.normal(0, 0.03):.5f}\t{rng.uniform(0.05, 0.6):.4f}")
    path = tmp_path_factory.mktemp("synthetic") / f"{SYNTHETIC_PGS}.txt.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


@pytest.fixture(scope="session")
def colorectal_package(synthetic_scoring_file: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelPackage:
    """A small model package for a second cancer, built the way `clinpred train genomics --calibration` builds.

    A test fixture, not a model: the synthetic score borrows breast cancer's published figures.
    """
    return train_genomics(
        synthetic_scoring_file, cancer="colorectal", models_root=tmp_path_factory.mktemp("models"), targets=BREAST,
        cohort_size=3000, reference_size=1000, progress=False,
    )


@dataclass(frozen=True)
class Served:
    target: str
    settings: GenomicsSettings


async def _serve(settings: GenomicsSettings) -> tuple[grpc.aio.Server, Served]:
    server, port = await start_inprocess_server(genomics_mount(settings))
    return server, Served(f"127.0.0.1:{port}", settings)


@pytest.fixture(scope="session")
async def layout_served(breast_package: ModelPackage) -> AsyncIterator[Served]:
    """A fresh clone's service: no scoring directory, the model package's own score layout."""
    register_package(breast_package)
    server, served = await _serve(GenomicsSettings(max_upload_bytes=MAX_UPLOAD, max_batch_size=MAX_PATIENTS))
    yield served
    await server.stop(grace=None)


@pytest.fixture(scope="session")
def scoring_dir(pgs_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scoring")
    shutil.copy(pgs_file, folder / pgs_file.name)
    return folder


@pytest.fixture(scope="session")
async def dir_served(breast_package: ModelPackage, scoring_dir: Path) -> AsyncIterator[Served]:
    """A configured PGS Catalog directory: both builds, allele frequencies for imputation."""
    register_package(breast_package)
    settings = GenomicsSettings(scoring_dir=scoring_dir, max_upload_bytes=MAX_UPLOAD, max_batch_size=MAX_PATIENTS)
    server, served = await _serve(settings)
    yield served
    await server.stop(grace=None)


@pytest.fixture(scope="session")
async def two_cancers_served(breast_package: ModelPackage, colorectal_package: ModelPackage) -> AsyncIterator[Served]:
    register_package(breast_package)
    register_package(colorectal_package)
    settings = GenomicsSettings(additional_models=[f"{colorectal_package.identity.name}:{colorectal_package.identity.version}"])
    server, served = await _serve(settings)
    yield served
    await server.stop(grace=None)


@pytest.fixture
async def layout_stub(layout_served: Served) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(layout_served.target) as channel:
        yield Stub(channel)


@pytest.fixture
async def dir_stub(dir_served: Served) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(dir_served.target) as channel:
        yield Stub(channel)
