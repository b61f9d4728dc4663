"""Frame-rate resampling by frame selection: which source frames make a video at a target rate.

Output frame ``j`` shows the instant ``j / target_fps``; it is the source frame on screen at that
instant, ``floor(j * source_fps / target_fps)`` (computed with exact fractions, so 29.97 fps as
``30000/1001`` gives the same indices on every machine). A video of ``n`` frames gives
``floor(n * target_fps / source_fps)`` frames (at least 1): lowering the rate drops frames,
raising it repeats them. This is torchvision's ``_resample_video_idx`` rule.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = ["as_fraction", "resample_indices"]

#: Denominator bound when reading any other float rate as a fraction.
_MAX_DENOMINATOR = 1000
#: NTSC rates ``base * 1000 / 1001`` (23.976, 29.97, 47.952, 59.94, 119.88 fps).
_NTSC_BASES = (24, 30, 48, 60, 120)


def as_fraction(fps: float) -> Fraction:
    """A frame rate as an exact fraction: NTSC rates within 0.005 fps of ``base * 1000 / 1001``
    (``29.97``, ``29.97002997``) -> ``30000/1001``; others to the nearest fraction with a
    denominator up to 1000 (``25.0`` -> ``25``)."""
    if isinstance(fps, bool) or not (isinstance(fps, (int, float, Fraction))
                                     and math.isfinite(fps) and fps > 0):
        raise ValueError(f"a frame rate must be a positive finite number, got {fps!r}")
    for base in _NTSC_BASES:
        if abs(float(fps) - base * 1000 / 1001) < 5e-3:
            return Fraction(base * 1000, 1001)
    return Fraction(fps).limit_denominator(_MAX_DENOMINATOR)


def resample_indices(n_frames: int, source_fps: float, target_fps: float) -> list[int]:
    """Source frame indices of a video of ``n_frames`` frames at ``source_fps`` shown at
    ``target_fps``.

    Raises
    ------
    ValueError
        A rate that is not a positive finite number, or ``n_frames < 1``.
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive int, got {n_frames!r}")
    ratio = as_fraction(source_fps) / as_fraction(target_fps)  # source frames per output frame
    n_out = max(1, math.floor(n_frames / ratio))
    return [min(n_frames - 1, math.floor(j * ratio)) for j in range(n_out)]
