"""Percentile bootstrap: resampling indices and intervals, seeded and vectorised."""

from __future__ import annotations

import warnings

import numpy as np

#: Default number of bootstrap resamples.
N_BOOT = 1000


def bootstrap_indices(n: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Resampling indices ``[n_boot, n]``, drawn uniformly with replacement from ``range(n)``.

    The same ``(n, n_boot, seed)`` always gives the same indices, so intervals are reproducible.
    """
    if n < 1:
        raise ValueError(f"bootstrap needs at least one sample; got n={n}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def percentile_interval(
    boot_stats: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Percentile interval of bootstrap statistics along axis 0.

    Parameters
    ----------
    boot_stats
        ``[n_boot, ...]`` one statistic per resample. Non-finite values (e.g. a border score
        of a resample with an all-zero inner profile) are ignored.
    level
        Coverage, e.g. 0.95 gives the 2.5 and 97.5 percentiles (linear interpolation).

    Returns
    -------
    (low, high)
        Floats for 1-D input, arrays of the trailing shape otherwise.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level}")
    stats = np.asarray(boot_stats, dtype=np.float64)
    stats = np.where(np.isfinite(stats), stats, np.nan)
    alpha = (1.0 - level) / 2.0
    with warnings.catch_warnings():  # all-NaN columns give NaN, which is what we want
        warnings.simplefilter("ignore", RuntimeWarning)
        low = np.nanpercentile(stats, 100 * alpha, axis=0)
        high = np.nanpercentile(stats, 100 * (1 - alpha), axis=0)
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high


def bootstrap_mean_interval(
    values: np.ndarray, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Bootstrap interval of the mean of ``values`` over axis 0 (samples)."""
    values = np.asarray(values, dtype=np.float64)
    idx = bootstrap_indices(len(values), n_boot, seed)
    return percentile_interval(values[idx].mean(axis=1), level)
