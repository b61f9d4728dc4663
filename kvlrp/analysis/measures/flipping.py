"""Frame flipping: a faithfulness check of frame relevance, as deletion and insertion curves.

**Deletion**: the frames of a clip are removed one more at a time, in the order given by a
per-frame score (most relevant first), and the model's softmax probability of the explained
class is recorded after each removal; a lower area means the order found the frames the model
needs. **Insertion**: the clip starts with every frame removed and the frames are restored in
the same order (most relevant first); a higher area means the order found them. Each curve has
``L + 1`` points (0..L frames removed, resp. restored); its area is the trapezoid over the
fraction in [0, 1].

A removed frame is filled by (``fill``):

- ``mean``: the clip's mean frame (appearance roughly kept, the frame's content lost);
- ``zero``: 0, the mid value of a symmetric normalisation;
- ``freeze``: its predecessor, the nearest earlier frame that is not removed (the first kept
  frame for removed frames before it; every frame removed: the clip's first frame throughout).
  Appearance is kept and motion removed: a clip whose frames are all removed is a still.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from kvlrp.analysis.measures.bootstrap import N_BOOT, bootstrap_indices, percentile_interval
from kvlrp.analysis.measures.paired import paired_difference

#: Columns of ``frame_flipping.csv`` (mean curve per method, curve kind and step);
#: ``n_flipped`` counts the frames removed (deletion) or restored (insertion).
CURVE_COLUMNS = ["method", "curve", "step", "n_flipped", "fraction_flipped", "mean_score",
                 "n_clips", "auc"]
#: Columns of ``frame_flipping_auc.csv``.
AUC_COLUMNS = ["step", "curve", "method", "n_clips", "auc", "auc_ci_low", "auc_ci_high",
               "diff_vs_random", "diff_vs_random_ci_low", "diff_vs_random_ci_high",
               "diff_vs_gradient_abs", "diff_vs_gradient_abs_ci_low",
               "diff_vs_gradient_abs_ci_high", "rank"]
FILLS = ("mean", "zero", "freeze")
CURVES = ("deletion", "insertion")


def flip_order(frame_scores: np.ndarray) -> np.ndarray:
    """Frame positions per clip, highest score first (stable for ties). ``[N, L]`` -> ``[N, L]``."""
    return np.argsort(-np.asarray(frame_scores, dtype=np.float64), axis=1, kind="stable")


def fill_removed(clip: np.ndarray, removed: np.ndarray, fill: str = "mean") -> np.ndarray:
    """A copy of ``clip`` ``[L, H, W, C]`` whose frames where ``removed`` ``[L]`` (bool) is True
    are filled as ``fill`` says (see the module docstring)."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}; got {fill!r}")
    removed = np.asarray(removed, dtype=bool)
    out = np.array(clip, copy=True)
    if not removed.any():
        return out
    if fill == "mean":
        out[removed] = clip.mean(axis=0)
    elif fill == "zero":
        out[removed] = 0
    else:
        kept = np.flatnonzero(~removed)
        for t in np.flatnonzero(removed):
            before = kept[kept < t]
            source = before[-1] if len(before) else (kept[0] if len(kept) else 0)
            out[t] = clip[source]
    return out


def flipped_variants(clip: np.ndarray, order: np.ndarray, fill: str = "mean",
                     curve: str = "deletion") -> np.ndarray:
    """``L + 1`` copies of ``clip`` ``[L, H, W, C]``: copy ``k`` has the first ``k`` frames of
    ``order`` removed (``deletion``) or only those restored, the rest removed
    (``insertion``)."""
    if curve not in CURVES:
        raise ValueError(f"curve must be one of {CURVES}; got {curve!r}")
    length = clip.shape[0]
    out = []
    for k in range(length + 1):
        first_k = np.zeros(length, dtype=bool)
        first_k[np.asarray(order)[:k]] = True
        out.append(fill_removed(clip, first_k if curve == "deletion" else ~first_k, fill))
    return np.stack(out)


def flip_curves(
    model,
    clips: np.ndarray,
    targets: np.ndarray,
    frame_scores: np.ndarray,
    fill: str = "mean",
    batch_size: int = 64,
    curve: str = "deletion",
) -> np.ndarray:
    """Score of the target class along a deletion or insertion curve.

    Parameters
    ----------
    model
        Keras model whose output is class probabilities ``[N, K]``.
    clips
        ``[N, L, H, W, C]`` model inputs.
    targets
        ``[N]`` class index whose probability is tracked (the explained class).
    frame_scores
        ``[N, L]`` per-frame scores giving the order (highest first).
    curve
        ``deletion`` or ``insertion``.

    Returns
    -------
    np.ndarray
        ``[N, L + 1]`` probabilities.
    """
    clips = np.asarray(clips, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int64)
    orders = flip_order(frame_scores)
    n, length = clips.shape[:2]
    variants = np.concatenate([flipped_variants(c, o, fill, curve)
                               for c, o in zip(clips, orders)])
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
    curves: Sequence[str] = CURVES,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run frame flipping for several orderings.

    Parameters
    ----------
    orderings
        Method name -> ``[N, L]`` frame scores (e.g. deep Taylor frame relevance, summed
        absolute gradient, random).
    curves
        Which curves: ``deletion``, ``insertion`` or both.

    Returns
    -------
    curves : DataFrame
        ``frame_flipping.csv`` rows: mean curve per method and curve, ``auc`` = mean per-clip
        area.
    per_clip : DataFrame
        ``method, curve, step, clip, n_flipped, score`` for every clip.
    """
    curve_rows, clip_rows = [], []
    for kind in curves:
        for method, scores in orderings.items():
            values = flip_curves(model, clips, targets, scores, fill=fill, curve=kind)
            aucs = curve_auc(values)
            length = values.shape[1] - 1
            for k in range(length + 1):
                curve_rows.append({
                    "method": method, "curve": kind, "step": step, "n_flipped": k,
                    "fraction_flipped": k / length, "mean_score": float(values[:, k].mean()),
                    "n_clips": len(values), "auc": float(aucs.mean()),
                })
            for i, curve in enumerate(values):
                clip_rows += [{"method": method, "curve": kind, "step": step, "clip": i,
                               "n_flipped": k, "score": float(s)} for k, s in enumerate(curve)]
    return pd.DataFrame(curve_rows, columns=CURVE_COLUMNS), pd.DataFrame(clip_rows)


def auc_table(per_clip: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0,
              level: float = 0.95) -> pd.DataFrame:
    """``frame_flipping_auc.csv``: per step, curve and method the mean area with a bootstrap
    interval over clips, its paired difference (same clips) to ``random`` and to
    ``gradient_abs`` with paired bootstrap intervals, and the method's rank (1 = best: lowest
    deletion area, highest insertion area).

    Parameters
    ----------
    per_clip
        Rows of ``frame_flipping_clips.csv`` (a table without ``curve`` is all deletion).
    """
    if per_clip.empty:
        return pd.DataFrame(columns=AUC_COLUMNS)
    df = per_clip if "curve" in per_clip.columns else per_clip.assign(curve="deletion")
    rows = []
    for (step, kind), group in df.groupby(["step", "curve"], sort=True):
        wide = group.pivot_table(index=["method", "clip"], columns="n_flipped",
                                 values="score", aggfunc="first")
        areas = {m: curve_auc(wide.loc[m].sort_index().to_numpy())
                 for m in dict.fromkeys(group["method"])}
        block = []
        for method, area in areas.items():
            idx = bootstrap_indices(len(area), n_boot, seed)
            low, high = percentile_interval(area[idx].mean(axis=1), level)
            row = {"step": step, "curve": kind, "method": method, "n_clips": len(area),
                   "auc": float(area.mean()), "auc_ci_low": float(low),
                   "auc_ci_high": float(high)}
            for ref in ("random", "gradient_abs"):
                if ref in areas and ref != method and len(areas[ref]) == len(area):
                    d, d_low, d_high = paired_difference(areas[ref], area, n_boot, seed, level)
                else:
                    d = d_low = d_high = np.nan
                row.update({f"diff_vs_{ref}": d, f"diff_vs_{ref}_ci_low": d_low,
                            f"diff_vs_{ref}_ci_high": d_high})
            block.append(row)
        aucs = pd.Series([r["auc"] for r in block])
        ranks = (aucs if kind == "deletion" else -aucs).rank(method="min").astype(int)
        for row, rank in zip(block, ranks):
            row["rank"] = int(rank)
        rows += block
    return pd.DataFrame(rows, columns=AUC_COLUMNS)
