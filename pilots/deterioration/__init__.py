"""Paediatric deterioration pilot (oncology patients monitored at home): domain code only.

Modules: `observations` (the observation schema and one table of valid limits),
`reference_ranges` (Fleming centiles), `pews` (Bedside PEWS), `simulator` and
`cohort` (synthetic cohorts, tables on disk), `features` (windowed features),
`training` (LightGBM, calibration, conformal sets, model package),
`package_format` (what a package holds, for training and serving), `predictor`
(online scoring), `validation` (input checks), `stored_score` (a score as
stored, versioned), `store` (patients, observations and scores in SQL) and
`requests` (what callers ask and get). Serving never imports `training`,
`simulator` or `cohort`.
"""
