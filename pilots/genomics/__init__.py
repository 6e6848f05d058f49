"""Genomic cancer risk: polygenic scores from PGS Catalog files, on plain or CKKS-encrypted genotypes.

Reading (`scoring_file`, `vcf`), matching and scoring (`matching`, `scoring`)
follow the PGS Catalog calculator (pgsc_calc) and equal `plink2 --score`
(`plink2`); `cohort` simulates populations, `training` and `risk` turn a
score into an absolute risk, `encrypted` scores CKKS ciphertexts.
"""
