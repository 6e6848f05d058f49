"""The genome build a genotype file's header witnesses, checked against the build its sender declares.

Why this check: a VCF lifted to another build (and the plink2 `.pvar` made from it, which keeps its
header) has nothing in its records that says so, and a build mix-up silently matches
the wrong variants. The header is the robust witness: `##contig` lines carry
chromosome lengths that differ between GRCh37 and GRCh38 for every
chromosome (chr1 249,250,621 vs 248,956,422), and every pipeline that writes
a VCF (GATK, bcftools, DeepVariant, imputation servers) writes them.
`##reference` names the FASTA (hs37d5, GRCh38...) and is used when contig
lengths are absent; a header whose two witnesses disagree is rejected. A
record whose position lies beyond its chromosome's length in the declared
build is also refused. Without any header evidence the build is reported as
unknown and matching checks the alleles instead (see `matching`).

VCFs and plink2 filesets are judged by this one `BuildWitness`, so both say the same about the same header.
"""

from __future__ import annotations

import re

from clinpred.pilots.common.errors import FailedPrecondition, InputOrigin, InvalidInput
from clinpred.pilots.genomics.scoring_file import normalise_build, normalise_chrom

GRCH37_LENGTHS = {
    "1": 249250621, "2": 243199373, "3": 198022430, "4": 191154276, "5": 180915260, "6": 171115067,
    "7": 159138663, "8": 146364022, "9": 141213431, "10": 135534747, "11": 135006516, "12": 133851895,
    "13": 115169878, "14": 107349540, "15": 102531392, "16": 90354753, "17": 81195210, "18": 78077248,
    "19": 59128983, "20": 63025520, "21": 48129895, "22": 51304566, "X": 155270560, "Y": 59373566,
}
GRCH38_LENGTHS = {
    "1": 248956422, "2": 242193529, "3": 198295559, "4": 190214555, "5": 181538259, "6": 170805979,
    "7": 159345973, "8": 145138636, "9": 138394717, "10": 133797422, "11": 135086622, "12": 133275309,
    "13": 114364328, "14": 107043718, "15": 101991189, "16": 90338345, "17": 83257441, "18": 80373285,
    "19": 58617616, "20": 64444167, "21": 46709983, "22": 50818468, "X": 156040895, "Y": 57227415,
}
CHROMOSOME_LENGTHS = {"GRCh37": GRCH37_LENGTHS, "GRCh38": GRCH38_LENGTHS}
_REFERENCE_PATTERNS = (
    ("GRCh38", re.compile(r"grch38|hg38|hs38|b38|38\.p\d", re.IGNORECASE)),
    ("GRCh37", re.compile(r"grch37|hg19|hs37|b37|g1k_v37|37\.p\d", re.IGNORECASE)),
)
_CONTIG = re.compile(r"^##contig=<(.*)>$")
def detect_build(
    contig_lengths: dict[str, int], reference: str | None, name: str = "VCF", origin: InputOrigin | None = None
) -> tuple[str | None, str]:
    """The build a VCF header witnesses, and by what; see the module docstring for why."""
    origin = origin or InputOrigin(name)
    by_contigs: set[str] = set()
    for chrom, length in contig_lengths.items():
        for build, table in CHROMOSOME_LENGTHS.items():
            if table.get(chrom) == length:
                by_contigs.add(build)
    if len(by_contigs) > 1:
        raise origin.error(InvalidInput, f"{origin.label}: ##contig lengths mix GRCh37 and GRCh38 chromosomes")
    by_reference: str | None = None
    if reference:
        for build, pattern in _REFERENCE_PATTERNS:
            if pattern.search(reference):
                by_reference = build
                break
    if by_contigs:
        build = by_contigs.pop()
        if by_reference is not None and by_reference != build:
            message = f"{origin.label}: ##reference names {by_reference} but ##contig lengths are those of {build}"
            raise origin.error(InvalidInput, message)
        return build, "contig lengths"
    if by_reference is not None:
        return by_reference, "##reference"
    return None, "none"


def contig_entry(text: str) -> tuple[str, int] | None:
    match = _CONTIG.match(text)
    if not match:
        return None
    fields = dict(part.split("=", 1) for part in re.split(r",(?=[A-Za-z_]+=)", match.group(1)) if "=" in part)
    if "ID" not in fields or "length" not in fields:
        return None
    try:
        return normalise_chrom(fields["ID"]), int(fields["length"])
    except ValueError:
        return None



class BuildWitness:
    """Collects a header's `##contig` and `##reference` lines, then settles the build and checks positions.

    `kind` names the input in messages ("VCF", "fileset"); a contradicted declaration and a position
    beyond its chromosome are refused through `build_origin` (the request field that declared the build).
    """

    def __init__(self, declared: str | None, kind: str, origin: InputOrigin, build_origin: InputOrigin | None = None):
        self.declared = normalise_build(declared)
        self.kind = kind
        self.origin = origin
        self.build_origin = build_origin or origin
        self.contigs: dict[str, int] = {}
        self.reference: str | None = None
        self.build: str | None = None
        self.evidence = "none"
        self.lengths: dict[str, int] = {}

    def read_meta_line(self, text: str) -> None:
        """Keep what a `##` line says about the build; other meta lines are ignored."""
        entry = contig_entry(text)
        if entry is not None:
            self.contigs[entry[0]] = entry[1]
        elif text.startswith("##reference="):
            self.reference = text[len("##reference="):]

    def settle(self) -> None:
        """At the end of the meta lines: the witnessed build, checked against the declared one (else that one)."""
        build, evidence = detect_build(self.contigs, self.reference, origin=self.origin)
        if self.declared is not None and build is not None and build != self.declared:
            message = f"{self.origin.label}: the {self.kind} is in {build} (by its {evidence}) but {self.declared} was declared"
            raise self.build_origin.error(FailedPrecondition, message)
        if build is None and self.declared is not None:
            build, evidence = self.declared, "declared"
        self.build, self.evidence = build, evidence
        self.lengths = CHROMOSOME_LENGTHS.get(build or "", {})

    def is_beyond(self, chrom: str, pos: int) -> bool:
        return chrom in self.lengths and pos > self.lengths[chrom]

    def check_position(self, chrom: str, pos: int, where: str) -> None:
        """Refuse a position beyond its chromosome's end in the settled build: the file is in another build."""
        if self.is_beyond(chrom, pos):
            message = (f"{where}: position lies beyond chromosome {chrom} of {self.build}; the {self.kind} is in"
                       " another build")
            raise self.build_origin.error(FailedPrecondition, message)
