"""Genomic cancer risk: polygenic scores from PGS Catalog files, on plain or CKKS-encrypted genotypes.

Reading (`scoring_file`, `vcf`), matching and scoring (`matching`, `scoring`)
follow the PGS Catalog calculator (pgsc_calc) and equal `plink2 --score`
(the parity tests run plink2: tests/unit/pilots/genomics/plink2.py);
`assessment` is what a VCF assessment asks and answers; `cohort` simulates
populations, `training` and `risk` turn a score into an absolute risk
(`package_format`: what a model package holds), `encrypted` scores CKKS
ciphertexts, `example_vcf` writes VCFs for trying the service.
"""
