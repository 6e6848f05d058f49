"""Choosing the VCF samples to assess, with refusals naming the request field handed in; example VCFs."""

from __future__ import annotations

import pytest

from clinpred.pilots.common.errors import InvalidInput
from clinpred.pilots.genomics.assessment import PatientFactors, select_samples
from clinpred.pilots.genomics.cohort import reference_distribution
from clinpred.pilots.genomics.encrypted import layout_scoring_file, score_layout
from clinpred.pilots.genomics.example_vcf import simulated_vcf
from clinpred.pilots.genomics.scoring import score_vcf
from clinpred.pilots.genomics.scoring_file import ScoringFile

VCF_SAMPLES = ("s1", "s2", "s3", "s4")
FIELD = "stream[0].header.assessment.patients"


def factors(sample_id: str = "", age: float = 50.0) -> PatientFactors:
    return PatientFactors(sample_id, age, "female", {})


def test_named_samples_and_a_default_cover_the_vcf_in_its_order() -> None:
    named, default = factors("s3", 61), factors("", 45)
    chosen = select_samples([named, default], VCF_SAMPLES, 10, FIELD)
    assert chosen == ((0, default), (1, default), (2, named), (3, default))
    assert select_samples([factors("s4"), factors("s2")], VCF_SAMPLES, 10, FIELD) == ((1, factors("s2")), (3, factors("s4")))


def test_a_sample_not_in_the_vcf_and_too_many_samples_name_the_patients_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        select_samples([factors("s1"), factors("PATIENT-SECRET")], VCF_SAMPLES, 10, FIELD)
    assert [(v.field, v.description) for v in caught.value.violations] == [
        (f"{FIELD}[1].sample_id", "is not a sample of the VCF")
    ]
    assert "PATIENT-SECRET" not in caught.value.message
    with pytest.raises(InvalidInput) as caught:
        select_samples([factors()], VCF_SAMPLES, 3, FIELD)
    ((violation),) = caught.value.violations
    assert violation.field == FIELD and "applies to 4 samples of the VCF; at most 3" in violation.description


def test_example_vcfs_carry_every_layout_variant_at_plausible_percentiles(pgs000004: ScoringFile) -> None:
    layout = score_layout(pgs000004)
    reference = reference_distribution(pgs000004, 5000, seed=3)
    vcf = simulated_vcf(layout, "GRCh37", samples=3, seed=4, reference=reference)
    assert vcf == simulated_vcf(layout, "GRCh37", samples=3, seed=4, reference=reference)
    scored = score_vcf(vcf, layout_scoring_file(layout, "GRCh37", "layout"), build="GRCh37")
    assert [s.sample for s in scored] == ["example-1", "example-2", "example-3"]
    # every variant is in the VCF; only the strand-ambiguous ones are not matched, as pgsc_calc does
    assert all(s.variants_matched == 282 and s.overlap.unmatched["strand_ambiguous"] == 31 for s in scored)
    # nudged to a random percentile between 10 and 90: a plausible person, not an outlier
    assert all(9.0 <= reference.percentile(s.score_sum) <= 91.0 for s in scored), [s.score_sum for s in scored]
    (single,) = score_vcf(simulated_vcf(layout, "GRCh37"), layout_scoring_file(layout, "GRCh37", "layout"))
    assert single.sample == "example"
