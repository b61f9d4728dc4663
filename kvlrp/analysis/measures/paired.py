"""Paired comparisons over the same videos: the exact McNemar test and a paired bootstrap
interval of a difference of means.

Two evaluations of the same videos (e.g. the accuracy at two step sizes) are compared video by
video: only the *discordant* videos (right under one, wrong under the other) carry evidence, and
the bootstrap resamples videos jointly, keeping each video's pair together.
"""

from __future__ import annotations

import math

import numpy as np

from kvlrp.analysis.measures.bootstrap import N_BOOT, bootstrap_indices, percentile_interval


def mcnemar_exact(n_first_only: int, n_second_only: int) -> float:
    """Two-sided exact McNemar p-value (exact binomial test on the discordant pairs).

    Parameters
    ----------
    n_first_only, n_second_only
        Discordant counts: correct under the first evaluation only, under the second only.

    Returns
    -------
    float
        ``min(1, 2 * P[X <= min(b, c)])`` with ``X ~ Binomial(b + c, 1/2)``; 1.0 when there is
        no discordant pair.
    """
    b, c = int(n_first_only), int(n_second_only)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0; got {b}, {c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2.0 * tail / 2.0 ** n)


def discordant_counts(first: np.ndarray, second: np.ndarray) -> tuple[int, int]:
    """``(first right & second wrong, first wrong & second right)`` of paired booleans."""
    first, second = _paired(first, second)
    first, second = first.astype(bool), second.astype(bool)
    return int((first & ~second).sum()), int((~first & second).sum())


def paired_difference(
    first: np.ndarray,
    second: np.ndarray,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """``mean(second - first)`` with a paired percentile bootstrap interval over samples.

    Parameters
    ----------
    first, second
        ``[n]`` values of the same samples (e.g. 0/1 correctness per video), aligned.

    Returns
    -------
    (difference, low, high)
    """
    first, second = _paired(first, second)
    diff = second.astype(np.float64) - first.astype(np.float64)
    idx = bootstrap_indices(len(diff), n_boot, seed)
    low, high = percentile_interval(diff[idx].mean(axis=1), level)
    return float(diff.mean()), float(low), float(high)


def _paired(first, second) -> tuple[np.ndarray, np.ndarray]:
    first, second = np.asarray(first), np.asarray(second)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(f"paired samples must be 1-D of equal length; got shapes "
                         f"{first.shape} and {second.shape}")
    return first, second
