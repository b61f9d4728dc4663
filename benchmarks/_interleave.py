"""Interleaved timing in one process: round orders and paired ratios against a baseline.

Timing a baseline and the methods compared with it in separate processes (or one after the
other) measures them at different moments of a shared machine; interleaving them round by round
in the same process exposes each to the same load. Pure Python, no TensorFlow.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def round_orders(methods: Sequence[str], repeats: int) -> list[list[str]]:
    """Order of the timed calls: ``repeats`` rounds, each calling every method once.

    Round ``r`` is ``methods`` rotated left by ``r``, so no method always runs first (or
    right after the same neighbour) in a round.

    Parameters
    ----------
    methods : sequence of str
        Distinct method names.
    repeats : int
        Number of rounds (>= 1).

    Returns
    -------
    list of list of str
        One list per round.

    Raises
    ------
    ValueError
        If ``repeats < 1``, ``methods`` is empty or names a method twice.
    """
    methods = list(methods)
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if not methods:
        raise ValueError("methods is empty: give at least one method to time")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods names a method twice: {methods}")
    n = len(methods)
    return [methods[r % n:] + methods[:r % n] for r in range(repeats)]


def paired_ratios(times: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Per round: a method's time over the baseline's time in the same round.

    Parameters
    ----------
    times, baseline : sequence of float
        Seconds per round, same length, baseline times > 0.

    Returns
    -------
    list of float

    Raises
    ------
    ValueError
        If the lengths differ or a baseline time is not positive.
    """
    if len(times) != len(baseline):
        raise ValueError(f"{len(times)} times against {len(baseline)} baseline times: one "
                         "of each per round is needed")
    if any(b <= 0 for b in baseline):
        raise ValueError(f"baseline times must be > 0, got {list(baseline)}")
    return [t / b for t, b in zip(times, baseline)]


def summarize(times: Sequence[float], baseline: Sequence[float] | None = None) -> dict:
    """Median (and spread) of ``times``; with ``baseline``, also the ratio of the medians and
    the median of the per-round :func:`paired_ratios`.

    Returns
    -------
    dict
        ``median_s``, ``min_s``, ``max_s``, ``times``; with a baseline also
        ``ratio_of_medians``, ``paired_ratios`` and ``median_paired_ratio``.
    """
    if not times:
        raise ValueError("times is empty: time at least one call")
    out = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
           "times": list(times)}
    if baseline is not None:
        ratios = paired_ratios(times, baseline)
        out["ratio_of_medians"] = out["median_s"] / statistics.median(baseline)
        out["paired_ratios"] = ratios
        out["median_paired_ratio"] = statistics.median(ratios)
    return out
