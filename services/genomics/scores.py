"""Which scoring file each cancer model scores with, in a requested genome build.

A model package carries its score's published layout (variant ids
chrom:pos:other:effect, effect alleles, weights) in the build it was trained
in: that is a complete additive scoring file, so a fresh clone serves its
own scores with no download. A PGS Catalog file in the configured scoring
directory whose `#pgs_id` equals the model's overrides it, and brings what a
layout lacks: the other build's harmonized positions and the effect-allele
frequencies that mean-impute missing genotypes.

The directory is re-read when its files change (name, size, mtime), so a
file can be added or fixed without a restart; a broken file makes its score
unusable (FailedPrecondition naming the file and the problem), never the
service.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from clinpred.pilots.common.errors import ClinpredError, FailedPrecondition
from clinpred.pilots.common.model_package import ModelIdentity
from clinpred.pilots.genomics.assessment import ScoreSource
from clinpred.pilots.genomics.encrypted import EncryptedScoreLayout, layout_scoring_file
from clinpred.pilots.genomics.scoring_file import ScoringFile, normalise_build, read_scoring_file
from clinpred.pilots.genomics.text_stream import read_lines

if TYPE_CHECKING:
    from clinpred.pilots.genomics.risk import GenomicRiskPredictor

logger = logging.getLogger("clinpred.genomics.scores")

BUILDS = ("GRCh37", "GRCh38")
_PGS_ID = re.compile(r"^#+\s*(?:pgs_id|pgs id)\s*=\s*(\S+)", re.IGNORECASE)
_SCORING_SUFFIXES = (".txt", ".txt.gz", ".tsv", ".tsv.gz")


def header_pgs_id(path: Path) -> str:
    """The `#pgs_id` of a scoring file's header, else its file name (as `ScoringFile.pgs_id` does)."""
    for line in read_lines(path, name=path.name):
        if not line.text.startswith("#"):
            break
        found = _PGS_ID.match(line.text)
        if found:
            return found.group(1)
    return path.name[:100]


@dataclass(frozen=True)
class PublishedLayout:
    """A model and the layout its encrypted scoring uses: private when the settings name its cancer or PGS id."""

    predictor: GenomicRiskPredictor
    layout: EncryptedScoreLayout

    @classmethod
    def of(cls, predictor: GenomicRiskPredictor, private_scores: Collection[str]) -> PublishedLayout:
        private = predictor.cancer in private_scores or predictor.pgs_id in private_scores
        return cls(predictor, replace(predictor.layout, private=True) if private else predictor.layout)


@dataclass(frozen=True)
class ScoreStatus:
    """One configured score as ListScores reports it: where it is scored from, in which builds, or why not."""

    cancer: str
    source: ScoreSource  # the scoring file of the first usable build (scoring_file "" if none is usable)
    trait_reported: str
    variants: int
    builds: tuple[str, ...]
    horizon_years: float
    model: ModelIdentity
    problem: str  # "" when usable


@dataclass(frozen=True)
class _DirectoryFile:
    path: Path
    signature: tuple[int, int]
    pgs_id: str | None
    problem: str | None


class ScoringFiles:
    """The scoring files of the configured scores, cached per file version and build."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._files: dict[Path, _DirectoryFile] = {}
        self._parsed: dict[tuple[Path, tuple[int, int], str], ScoringFile | ClinpredError] = {}
        self._layouts: dict[tuple[str, str], ScoringFile] = {}

    def _scan(self) -> dict[str, list[_DirectoryFile]]:
        """The directory's scoring files by pgs_id; headers are read again only for changed files."""
        if self.directory is None:
            return {}
        if not self.directory.is_dir():
            logger.warning("scoring directory %s does not exist", self.directory)
            return {}
        current: dict[Path, _DirectoryFile] = {}
        for path in sorted(self.directory.iterdir()):
            if not path.is_file() or not path.name.lower().endswith(_SCORING_SUFFIXES):
                continue
            stat = path.stat()
            signature = (stat.st_mtime_ns, stat.st_size)
            known = self._files.get(path)
            if known is not None and known.signature == signature:
                current[path] = known
                continue
            try:
                current[path] = _DirectoryFile(path, signature, header_pgs_id(path), None)
            except ClinpredError as error:
                logger.warning("scoring file %s is unusable: %s", path.name, error.message)
                current[path] = _DirectoryFile(path, signature, None, error.message)
        self._files = current
        by_id: dict[str, list[_DirectoryFile]] = {}
        for entry in current.values():
            if entry.pgs_id is not None:
                by_id.setdefault(entry.pgs_id, []).append(entry)
        return by_id

    def _parse(self, entry: _DirectoryFile, build: str) -> ScoringFile:
        key = (entry.path, entry.signature, build)
        cached = self._parsed.get(key)
        if cached is None:
            try:
                cached = read_scoring_file(entry.path, build=build, name=entry.path.name)
            except ClinpredError as error:
                logger.warning("scoring file %s cannot be used in %s: %s", entry.path.name, build, error.message)
                cached = error
            self._parsed[key] = cached
        if isinstance(cached, ClinpredError):
            raise FailedPrecondition(f"scoring file {entry.path.name} ({build}): {cached.message}")
        return cached

    def choose(
        self, pgs_id: str, build: str, layout: EncryptedScoreLayout, layout_build: str | None, model: str, pgs_name: str = ""
    ) -> ScoringFile:
        """The scoring file of `pgs_id` in `build`: the directory's, else the model package's layout.

        Its `name` says where it comes from: a file name of the directory, or "<model>/score_layout.json".
        """
        wanted = normalise_build(build) or build
        with self._lock:
            entries = self._scan().get(pgs_id, [])
            if len(entries) > 1:
                names = ", ".join(e.path.name for e in entries)
                raise FailedPrecondition(f"several scoring files declare {pgs_id} ({names}); keep one in the scoring directory")
            if entries:
                return self._parse(entries[0], wanted)
            source = f"{model}/score_layout.json"
            if layout_build != wanted:
                raise FailedPrecondition(
                    f"{pgs_id}: the model package has positions in {layout_build or 'an unreported build'} only;"
                    f" to score {wanted} VCFs, put the PGS Catalog file harmonized to {wanted} in the scoring directory"
                    " (CLINPRED_GENOMICS_SCORING_DIR)"
                )
            key = (model, wanted)
            if key not in self._layouts:
                self._layouts[key] = layout_scoring_file(layout, wanted, source, pgs_name)
            return self._layouts[key]

    def builds(self, pgs_id: str, layout_build: str | None) -> tuple[tuple[str, ...], str]:
        """Builds `pgs_id` can be scored in, and a problem with its scoring file ("" if none)."""
        usable: list[str] = []
        problems: list[str] = []
        with self._lock:
            entries = self._scan().get(pgs_id, [])
            if len(entries) > 1:
                return (), f"several scoring files declare {pgs_id}"
            for build in BUILDS:
                if not entries:
                    if layout_build == build:
                        usable.append(build)
                    continue
                try:
                    self._parse(entries[0], build)
                    usable.append(build)
                except FailedPrecondition as error:
                    problems.append(error.message)
        if not usable and problems:
            return (), "; ".join(problems)
        return tuple(usable), ""
