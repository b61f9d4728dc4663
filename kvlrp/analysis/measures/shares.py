"""Frame relevance of a clip, its per-frame share, and the border-effect score."""

from __future__ import annotations

import numpy as np


def frame_relevance(relevance: np.ndarray) -> np.ndarray:
    """Sum relevance over height, width and channels.

    Parameters
    ----------
    relevance
        ``[batch, frames, height, width, channels]`` (or ``[frames, ...]`` for one clip).

    Returns
    -------
    np.ndarray
        ``[batch, frames]`` (or ``[frames]``), float64.
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    if relevance.ndim == 5:
        return relevance.sum(axis=(2, 3, 4))
    if relevance.ndim == 4:
        return relevance.sum(axis=(1, 2, 3))
    raise ValueError(
        f"relevance must be a clip [frames, H, W, C] or a batch [batch, frames, H, W, C]; "
        f"got shape {relevance.shape}"
    )


def clip_shares(frame_rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide each clip's frame relevance by the clip's total relevance.

    A clip whose total is zero (deep Taylor explains a negative logit as zero relevance) or not
    finite has no share profile: it is marked invalid and its shares are set to 0, so no share
    is ever NaN. Callers exclude invalid clips and count them.

    Parameters
    ----------
    frame_rel
        ``[clips, frames]`` relevance per frame position.

    Returns
    -------
    shares : np.ndarray
        ``[clips, frames]``; each valid row sums to 1, invalid rows are 0.
    valid : np.ndarray
        ``[clips]`` bool, True where the clip's total relevance is finite and non-zero.
    """
    frame_rel = np.asarray(frame_rel, dtype=np.float64)
    if frame_rel.ndim != 2:
        raise ValueError(f"frame_rel must be [clips, frames]; got shape {frame_rel.shape}")
    total = frame_rel.sum(axis=1)
    valid = np.isfinite(total) & np.all(np.isfinite(frame_rel), axis=1) & (total != 0)
    shares = np.zeros_like(frame_rel)
    shares[valid] = frame_rel[valid] / total[valid, None]
    return shares, valid


def border_score(profile: np.ndarray) -> np.ndarray | float:
    """Border-effect score ``B = mean(p[0], p[L-1]) / mean(p[1..L-2])``.

    ``B > 1`` means the borders get more relevance than the inner frames. The score is
    scale-invariant, so it is the same for a share profile and any multiple of it.

    Parameters
    ----------
    profile
        ``[frames]`` or ``[n, frames]`` (one score per row); ``frames >= 3``.

    Returns
    -------
    float or np.ndarray
        ``inf`` where the inner mean is 0 and the border mean positive, NaN where both are 0.
    """
    p = np.asarray(profile, dtype=np.float64)
    if p.shape[-1] < 3:
        raise ValueError(
            f"the border score needs at least 3 frame positions (2 borders + 1 inner); "
            f"got a profile of length {p.shape[-1]}"
        )
    border = 0.5 * (p[..., 0] + p[..., -1])
    inner = p[..., 1:-1].mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = border / inner
    return float(score) if np.ndim(score) == 0 else score
