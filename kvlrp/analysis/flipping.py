"""Frame flipping: a faithfulness check of frame relevance.

Frames of a clip are replaced, one more at a time, in the order given by a per-frame score
(most relevant first) and the model's softmax probability of the explained class is recorded
after each replacement. A replaced frame is filled with the clip's **mean frame** (the average
over the clip's frames), which keeps the clip's appearance but removes that frame's temporal
information. The curve has ``L + 1`` points (0..L frames replaced); its area (trapezoid over the
fraction replaced, in [0, 1]) is lower when the ordering finds the frames the model needs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Columns of ``frame_flipping.csv`` (mean curve per method and step).
CURVE_COLUMNS = ["method", "step", "n_flipped", "fraction_flipped", "mean_score", "n_clips",
                 "auc"]
FILLS = ("mean", "zero")


def flip_order(frame_scores: np.ndarray) -> np.ndarray:
    """Frame positions per clip, highest score first (stable for ties). ``[N, L]`` -> ``[N, L]``."""
    return np.argsort(-np.asarray(frame_scores, dtype=np.float64), axis=1, kind="stable")


def flipped_variants(clip: np.ndarray, order: np.ndarray, fill: str = "mean") -> np.ndarray:
    """``L + 1`` copies of ``clip`` ``[L, H, W, C]`` with the first 0..L frames of ``order``
    replaced by the fill frame (``mean``: the clip's mean frame; ``zero``: 0, the mid value of
    a symmetric normalisation)."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}; got {fill!r}")
    length = clip.shape[0]
    fill_frame = clip.mean(axis=0) if fill == "mean" else np.zeros_like(clip[0])
    out = np.repeat(clip[None], length + 1, axis=0)
    for k in range(1, length + 1):
        out[k:, order[k - 1]] = fill_frame
    return out


def flip_curves(
    model,
    clips: np.ndarray,
    targets: np.ndarray,
    frame_scores: np.ndarray,
    fill: str = "mean",
    batch_size: int = 64,
) -> np.ndarray:
    """Score of the target class after replacing 0..L frames, most relevant first.

    Parameters
    ----------
    model
        Keras model whose output is class probabilities ``[N, K]``.
    clips
        ``[N, L, H, W, C]`` model inputs.
    targets
        ``[N]`` class index whose probability is tracked (the explained class).
    frame_scores
        ``[N, L]`` per-frame scores giving the order.

    Returns
    -------
    np.ndarray
        ``[N, L + 1]`` probabilities.
    """
    clips = np.asarray(clips, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int64)
    orders = flip_order(frame_scores)
    n, length = clips.shape[:2]
    variants = np.concatenate([flipped_variants(c, o, fill) for c, o in zip(clips, orders)])
    probs = np.concatenate([
        np.asarray(model(variants[i:i + batch_size], training=False))
        for i in range(0, len(variants), batch_size)
    ])
    probs = probs.reshape(n, length + 1, -1)
    return probs[np.arange(n), :, targets]


def curve_auc(curves: np.ndarray) -> np.ndarray:
    """Trapezoid area under each curve ``[N, L + 1]`` over the fraction replaced (0..1)."""
    curves = np.asarray(curves, dtype=np.float64)
    steps = curves.shape[-1] - 1
    return (curves[..., :-1] + curves[..., 1:]).sum(axis=-1) / (2.0 * steps)


def random_scores(n: int, length: int, seed: int = 0) -> np.ndarray:
    """Seeded random frame scores (the random-order baseline)."""
    return np.random.default_rng(seed).random((n, length))


def frame_flipping_table(
    model,
    clips: np.ndarray,
    targets: np.ndarray,
    orderings: dict[str, np.ndarray],
    step: int,
    fill: str = "mean",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run frame flipping for several orderings.

    Parameters
    ----------
    orderings
        Method name -> ``[N, L]`` frame scores (e.g. deep Taylor frame relevance, summed
        absolute gradient, random).

    Returns
    -------
    curves : DataFrame
        ``frame_flipping.csv`` rows: mean curve per method, ``auc`` = mean per-clip area.
    per_clip : DataFrame
        ``method, step, clip, n_flipped, score`` for every clip.
    """
    curve_rows, clip_rows = [], []
    for method, scores in orderings.items():
        curves = flip_curves(model, clips, targets, scores, fill=fill)
        aucs = curve_auc(curves)
        length = curves.shape[1] - 1
        for k in range(length + 1):
            curve_rows.append({
                "method": method, "step": step, "n_flipped": k, "fraction_flipped": k / length,
                "mean_score": float(curves[:, k].mean()), "n_clips": len(curves),
                "auc": float(aucs.mean()),
            })
        for i, curve in enumerate(curves):
            clip_rows += [{"method": method, "step": step, "clip": i, "n_flipped": k,
                           "score": float(s)} for k, s in enumerate(curve)]
    return pd.DataFrame(curve_rows, columns=CURVE_COLUMNS), pd.DataFrame(clip_rows)
