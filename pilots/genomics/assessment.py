"""A genomic risk assessment of a VCF: what is asked (patients, cancers, build) and what is answered.

The request is decoded from the transport by the caller, which also hands in
the field paths of the VCF, its declared build and the patients, so that the
checks only the VCF's content can decide (a named sample is not in it, its
header contradicts the build) name the field they are about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from clinpred.pilots.common.errors import ViolationCollector
from clinpred.pilots.genomics.risk import CancerRisk
from clinpred.pilots.genomics.text_stream import TextSource


@dataclass(frozen=True)
class PatientFactors:
    """One patient's non-genetic factors; `sample_id` "" applies to every sample no other patient names."""

    sample_id: str
    age: float
    sex: str  # "female" or "male"
    family_history: Mapping[str, bool] = field(default_factory=dict)  # by cancer; deprecated: true = one relative
    affected_relatives: Mapping[str, int] = field(default_factory=dict)  # by cancer: affected first-degree relatives

    def has_family_history(self, cancer: str) -> bool:
        return self.relatives(cancer) > 0

    def relatives(self, cancer: str) -> int:
        """Affected first-degree relatives with `cancer`; the old yes/no counts as one."""
        count = self.affected_relatives.get(cancer, 0)
        return count if count > 0 else int(self.family_history.get(cancer, False))


@dataclass(frozen=True)
class AssessmentFields:
    """The request fields of the VCF, its declared build and the patients (e.g. "vcf", "assessment.build")."""

    vcf: str
    build: str
    patients: str


@dataclass(frozen=True)
class AssessmentRequest:
    build: str  # declared: "GRCh37" or "GRCh38"
    patients: tuple[PatientFactors, ...]
    cancers: tuple[str, ...]  # in configured order
    top_variants: int
    vcf: TextSource  # the file's bytes, or its chunks as they arrived
    fields: AssessmentFields


@dataclass(frozen=True)
class ScoreSource:
    """The score a risk was computed from: PGS Catalog id and name, the scoring file used, its build."""

    pgs_id: str
    pgs_name: str
    scoring_file: str
    build: str | None


@dataclass(frozen=True)
class SampleAssessment:
    sample_id: str
    risks: tuple[CancerRisk, ...]  # one per requested cancer, in configured order


@dataclass(frozen=True)
class VcfAssessment:
    samples: tuple[SampleAssessment, ...]  # the assessed samples, in VCF order
    build: str
    build_evidence: str  # "contig lengths", "##reference" or "declared"
    vcf_samples: int  # in the VCF, assessed or not
    sources: Mapping[str, ScoreSource]  # by cancer


def select_samples(
    patients: Sequence[PatientFactors], vcf_samples: Sequence[str], max_samples: int, field: str
) -> tuple[tuple[int, PatientFactors], ...]:
    """The VCF columns to assess, in VCF order, each with its patient's factors.

    A named sample must be in the VCF; a patient without a sample id applies to every
    sample no other patient names. `field` is the request field of `patients`.
    """
    violations = ViolationCollector()
    column_of = {name: index for index, name in enumerate(vcf_samples)}
    default: PatientFactors | None = None
    chosen: dict[int, PatientFactors] = {}
    for index, patient in enumerate(patients):
        if not patient.sample_id:
            default = patient
        elif patient.sample_id in column_of:
            chosen[column_of[patient.sample_id]] = patient
        else:
            violations.add(f"{field}[{index}].sample_id", "is not a sample of the VCF")
    if default is not None:
        for column in range(len(vcf_samples)):
            chosen.setdefault(column, default)
    if len(chosen) > max_samples:
        violations.add(
            field,
            f"applies to {len(chosen)} samples of the VCF; at most {max_samples} are assessed per call:"
            " name the samples to assess",
        )
    violations.raise_if_any()
    return tuple((column, chosen[column]) for column in sorted(chosen))
