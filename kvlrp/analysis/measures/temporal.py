"""Selective relevance (Hiley et al. 2020): the temporal part of a relevance map.

Hiley, Preece, Hicks, Marshall, Taylor, "Explaining motion relevance for activity recognition
in video deep learning models" (2020; their code: liamhiley/selective_relevance). The
relevance map's temporal derivative is taken with a 3x3x3 Sobel kernel along time (the frame
before minus the frame after, each smoothed spatially by ``[1, 2, 1] x [1, 2, 1]``), summed over
channels, in absolute value. Voxels where that derivative exceeds ``sigma`` standard deviations
(over the clip's voxels) hold **temporal** relevance (relevance that changes with time, i.e.
follows motion); the rest is **spatial** (relevance on static appearance).

One deviation from the reference code, on purpose: the reference pads the relevance with zeros
in time, so the first and last frames always see a large derivative (the step from the map to
the zero padding) and would be called temporal whatever the clip does. That would manufacture
a border effect in a study of border effects, so the time axis is padded here by repeating the
border frame (``temporal_padding="replicate"``, the default): a relevance map constant in time
has zero derivative everywhere and no temporal part. ``temporal_padding="zero"`` reproduces the
reference. Space is zero-padded as in the reference.
"""

from __future__ import annotations

import numpy as np

#: Default threshold in standard deviations of the clip's absolute temporal derivative.
DEFAULT_SIGMA = 1.0
PADDINGS = ("replicate", "zero")
#: Relative rounding floor of the derivative (see :func:`temporal_mask`).
RTOL = 1e-5


def _as_batch(relevance: np.ndarray) -> tuple[np.ndarray, bool]:
    r = np.asarray(relevance, dtype=np.float64)
    if r.ndim == 4:
        return r[None], True
    if r.ndim == 5:
        return r, False
    raise ValueError(
        f"relevance must be a clip [frames, H, W, C] or a batch [batch, frames, H, W, C]; got "
        f"shape {r.shape}"
    )


def temporal_derivative(relevance: np.ndarray,
                        temporal_padding: str = "replicate") -> np.ndarray:
    """Absolute temporal Sobel derivative of a relevance map, summed over channels.

    ``D[t, y, x] = | sum_c S(R[t-1, ..., c]) - S(R[t+1, ..., c]) |`` where ``S`` is the
    spatial ``[1, 2, 1] x [1, 2, 1]`` smoothing with zero padding (the 3x3x3 temporal Sobel
    kernel of the reference, applied as a cross-correlation).

    Parameters
    ----------
    relevance
        ``[frames, H, W, C]`` or ``[batch, frames, H, W, C]``.
    temporal_padding
        ``replicate`` (border frame repeated; default) or ``zero`` (the reference's padding).

    Returns
    -------
    np.ndarray
        ``[frames, H, W]`` or ``[batch, frames, H, W]``, float64, non-negative.
    """
    if temporal_padding not in PADDINGS:
        raise ValueError(f"temporal_padding must be one of {PADDINGS}; got "
                         f"{temporal_padding!r}")
    r, single = _as_batch(relevance)
    summed = r.sum(axis=-1)  # [B, T, H, W]: the kernel is the same for every channel
    padded = np.pad(summed, ((0, 0), (0, 0), (1, 1), (1, 1)))
    smooth_y = padded[:, :, :-2] + 2.0 * padded[:, :, 1:-1] + padded[:, :, 2:]
    smooth = smooth_y[..., :-2] + 2.0 * smooth_y[..., 1:-1] + smooth_y[..., 2:]
    mode = "edge" if temporal_padding == "replicate" else "constant"
    smooth = np.pad(smooth, ((0, 0), (1, 1), (0, 0), (0, 0)), mode=mode)
    deriv = np.abs(smooth[:, :-2] - smooth[:, 2:])
    return deriv[0] if single else deriv


def temporal_mask(relevance: np.ndarray, sigma: float = DEFAULT_SIGMA,
                  temporal_padding: str = "replicate") -> np.ndarray:
    """Boolean ``[.., frames, H, W]``: voxels whose absolute temporal derivative exceeds
    ``sigma`` times its standard deviation over the clip (``ddof=1``, as torch's ``std`` in
    the reference; strictly greater; a clip whose derivative is
    zero everywhere has no temporal voxel). Derivatives below ``RTOL`` times their largest
    possible value count as zero (float rounding, not change in time)."""
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite number >= 0; got {sigma}")
    deriv = temporal_derivative(relevance, temporal_padding)
    single = deriv.ndim == 3
    d = deriv[None] if single else deriv
    r, _ = _as_batch(relevance)
    # Rounding floor: a derivative below RTOL x its largest possible value (16 x the largest
    # |relevance| summed over channels, on each side) is float noise (e.g. two equal frames
    # computed by different kernels), not a change in time.
    floor = RTOL * 16.0 * np.abs(r.sum(axis=-1)).reshape(len(r), -1).max(axis=1)
    d = np.where(d > floor[:, None, None, None], d, 0.0)
    flat = d.reshape(len(d), -1)
    std = flat.std(axis=1, ddof=1) if flat.shape[1] > 1 else np.zeros(len(d))
    mask = (d > sigma * std[:, None, None, None]) & (d > 0)
    return mask[0] if single else mask


def temporal_relevance(relevance: np.ndarray, sigma: float = DEFAULT_SIGMA,
                       temporal_padding: str = "replicate") -> np.ndarray:
    """The temporal part of ``relevance`` (same shape): relevance at the voxels of
    :func:`temporal_mask`, 0 elsewhere (every channel of a voxel goes the same way). The
    spatial part is ``relevance - temporal_relevance(relevance)``."""
    r = np.asarray(relevance, dtype=np.float64)
    mask = temporal_mask(r, sigma, temporal_padding)
    return r * mask[..., None]


def temporal_frame_relevance(relevance: np.ndarray, sigma: float = DEFAULT_SIGMA,
                             temporal_padding: str = "replicate") -> np.ndarray:
    """Temporal relevance summed per frame position: ``[frames]`` or ``[batch, frames]``."""
    t = temporal_relevance(relevance, sigma, temporal_padding)
    return t.sum(axis=(-3, -2, -1))
