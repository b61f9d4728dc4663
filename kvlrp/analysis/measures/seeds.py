"""Across training seeds: the Student-t interval of a mean over a few seeds (each seed one
value; its own interval over clips or videos is not used)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["t_interval"]

#: Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom.
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t_interval(values: Sequence[float]) -> tuple[float, float, float, float]:
    """``(mean, std, low, high)``: the 95 % Student-t interval of the mean over seeds (NaN
    bounds for fewer than 2 finite values; df > 30 uses 1.96)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(v.mean())
    if len(v) < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(v.std(ddof=1))
    t = _T975[len(v) - 2] if len(v) - 1 <= len(_T975) else 1.96
    half = t * std / math.sqrt(len(v))
    return mean, std, mean - half, mean + half
