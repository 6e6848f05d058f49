"""Normal heart and respiratory rates by age: Fleming et al., Lancet 2011;377:1011.

The published table gives the 1st/10th/50th/90th/99th centiles per age band.
We place each band's centiles at the band's midpoint and interpolate linearly
in age between midpoints (constant beyond the first and last midpoints), so
that a child's expected rate changes smoothly with age instead of jumping at
band edges.

Age-normalised z-scores use a split normal: the spread above the median is
(p90 - p50) / 1.2816 and below it (p50 - p10) / 1.2816, because the published
centiles are skewed (wider above the median in infants).
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Band limits in years; midpoints are where the centiles are anchored.
_BANDS_YEARS: Final = (
    (0.0, 0.25),
    (0.25, 0.5),
    (0.5, 0.75),
    (0.75, 1.0),
    (1.0, 1.5),
    (1.5, 2.0),
    (2.0, 3.0),
    (3.0, 4.0),
    (4.0, 6.0),
    (6.0, 8.0),
    (8.0, 12.0),
    (12.0, 15.0),
    (15.0, 18.0),
)
# Centiles 1 / 10 / 50 / 90 / 99, one row per band above.
_HEART_RATE: Final = (
    (107, 123, 143, 164, 181),
    (104, 120, 140, 159, 175),
    (98, 114, 134, 152, 168),
    (93, 109, 128, 145, 161),
    (88, 103, 123, 140, 156),
    (82, 98, 116, 135, 149),
    (76, 92, 110, 128, 142),
    (70, 86, 104, 123, 136),
    (65, 81, 98, 117, 131),
    (59, 74, 91, 111, 123),
    (52, 67, 84, 103, 115),
    (47, 62, 78, 96, 108),
    (43, 58, 73, 92, 104),
)
_RESPIRATORY_RATE: Final = (
    (25, 34, 43, 57, 66),
    (24, 33, 41, 55, 64),
    (23, 31, 39, 52, 61),
    (22, 30, 37, 50, 58),
    (21, 28, 35, 46, 53),
    (19, 25, 31, 40, 46),
    (18, 22, 28, 34, 38),
    (17, 21, 25, 29, 33),
    (17, 20, 23, 27, 29),
    (16, 18, 21, 24, 27),
    (14, 16, 19, 22, 25),
    (12, 15, 18, 21, 23),
    (11, 13, 16, 19, 22),
)
CENTILES: Final = (1, 10, 50, 90, 99)
_MIDPOINTS = np.array([(lo + hi) / 2 for lo, hi in _BANDS_YEARS])
_Z90 = 1.2815515655446004

Signal = Literal["heart_rate", "respiratory_rate"]


def _table(signal: Signal) -> npt.NDArray[np.float64]:
    return np.asarray(_HEART_RATE if signal == "heart_rate" else _RESPIRATORY_RATE, dtype=np.float64)


def fleming_band_centiles(signal: Signal, age_years: float) -> tuple[float, float, float, float, float]:
    """The published centiles (1, 10, 50, 90, 99) of the band containing `age_years` (no interpolation)."""
    index = len(_BANDS_YEARS) - 1
    for i, (_, hi) in enumerate(_BANDS_YEARS):
        if age_years < hi:
            index = i
            break
    row = _table(signal)[index]
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]), float(row[4]))


def fleming_centile(signal: Signal, centile: int, age_years: npt.ArrayLike) -> FloatArray:
    """Interpolated centile (one of 1, 10, 50, 90, 99) at each age, in breaths or beats per minute."""
    column = CENTILES.index(centile)
    ages = np.asarray(age_years, dtype=np.float64)
    return np.interp(ages, _MIDPOINTS, _table(signal)[:, column])


def fleming_z(signal: Signal, value: npt.ArrayLike, age_years: npt.ArrayLike) -> FloatArray:
    """Age-normalised z-score of a rate (NaN stays NaN), split-normal around the median."""
    values = np.asarray(value, dtype=np.float64)
    ages = np.asarray(age_years, dtype=np.float64)
    p10 = fleming_centile(signal, 10, ages)
    p50 = fleming_centile(signal, 50, ages)
    p90 = fleming_centile(signal, 90, ages)
    spread = np.where(values >= p50, (p90 - p50) / _Z90, (p50 - p10) / _Z90)
    return (values - p50) / spread


def fleming_spread(signal: Signal, age_years: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Standard deviations below and above the median at each age (split normal)."""
    ages = np.asarray(age_years, dtype=np.float64)
    p10 = fleming_centile(signal, 10, ages)
    p50 = fleming_centile(signal, 50, ages)
    p90 = fleming_centile(signal, 90, ages)
    return (p50 - p10) / _Z90, (p90 - p50) / _Z90
