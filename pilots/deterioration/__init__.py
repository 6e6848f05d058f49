"""Paediatric deterioration pilot (oncology patients monitored at home): domain code only.

Modules: `observations` (the observation schema and one table of valid limits),
`reference_ranges` (Fleming centiles), `pews` (Bedside PEWS), `simulator`
(synthetic cohorts), `features` (windowed features), `training` (LightGBM,
calibration, conformal sets, model package), `predictor` (online scoring) and
`validation` (input checks the transport's codec calls).
"""
