"""Frame-position relevance at intermediate layers (pure numpy / pandas).

A layer's output has *token axes* (everything between the batch and the channel axis: time,
height and width of a convolution's feature map; frames and tokens of a transformer). Each
token position carries a **frame centre**: where on the input clip's frame axis it sits, in
input frames (a convolution's output at time ``j`` with stride 2 is centred at ``2 j + 0.5``
after a 2-frame pooling; a tubelet of frames 2 and 3 at 2.5), or NaN for a token that comes
from no frame (a transformer's temporal class token). How the centres are found for a Keras
model: :mod:`kvlrp.analysis.explain.layer_map`.

Relevance arriving at the layer's output is summed over the channels and over the positions
of equal centre (the layer's *time cells*); each input frame belongs to the cell whose centre
is nearest (a frame half-way between two centres half to each), and a cell's relevance is
split evenly over its frames. A cell no frame is nearest to (a padding position) gives its
relevance to the frame(s) nearest its centre. So the mapped profile keeps the layer's total
over the frame-carrying tokens; relevance at tokens without a frame is reported apart as
``unmapped_share``.

Pooled columns (``pooled_*`` in ``layer_border_scores.csv``, ``pooled_share`` in
``layer_profiles.csv``): the ratio-of-sums estimator of :mod:`kvlrp.analysis.measures.pooled`
on the layer's mapped relevance per input frame (summed over each video's clips, bootstrap over
videos, NaN where a denominator is not clear of 0), the estimator to read for signed analyzers
whose per-clip layer totals can be near zero or negative. The border table's
``attrs["pooled_notes"]`` lists, per ``(step, layer)``, why a pooled score is NaN (also
logged).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kvlrp.analysis.measures.bootstrap import N_BOOT
from kvlrp.analysis.measures.pooled import (
    CLIP_KEY,
    POOLED_COLUMNS,
    clip_relevance,
    log_notes,
    pooled_columns,
    pooled_scores,
    video_counts,
    video_sums,
)
from kvlrp.analysis.measures.profiles import summarize_group

#: Columns of ``layer_profiles.csv`` (one row per step, layer and input frame position); the
#: first six are the profile, the rest its prior, relative profile, what the mapping lost and
#: the pooled share.
PROFILE_COLUMNS = ["layer", "depth", "position", "share", "ci_low", "ci_high", "step",
                   "n_clips", "prior_share", "relative_share", "time_cells", "unmapped_share",
                   "pooled_share"]
#: Columns of ``layer_border_scores.csv`` (one row per step and layer).
LAYER_BORDER_COLUMNS = ["layer", "depth", "step", "n_clips", "time_cells", "border_score",
                        "border_ci_low", "border_ci_high", "prior_border_score",
                        "relative_border_score", "relative_border_ci_low",
                        "relative_border_ci_high", "unmapped_share", *POOLED_COLUMNS]
#: Columns of the per-clip table ``layer_relevance.csv``.
CLIP_COLUMNS = ["step", "video_id", "clip_index", "layer", "depth", "position", "relevance",
                "share", "unmapped_share", "time_cells"]
#: Columns of the partial channel sums of one step (summed over workers before
#: :func:`channel_table`).
CHANNEL_SUM_COLUMNS = ["step", "layer", "channel", "position", "relevance_sum", "n_clips"]
#: Columns of ``concept_profiles.csv`` (one row per step, channel and input frame position).
CHANNEL_COLUMNS = ["layer", "channel", "position", "relevance", "share", "step", "n_clips",
                   "channel_share", "border_share"]
#: Distance under which two centres are the same cell, in frames.
_TOL = 1e-6


def time_cells(centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cell index per position, cell centres)``: positions of equal finite centre share a
    cell (index -1: a position without a frame). ``centres`` is flattened."""
    flat = np.asarray(centres, dtype=np.float64).ravel()
    cell = np.full(flat.shape, -1, dtype=np.int64)
    finite = np.isfinite(flat)
    if not finite.any():
        return cell, np.zeros(0)
    rounded = np.round(flat[finite] / _TOL) * _TOL
    values, inverse = np.unique(rounded, return_inverse=True)
    cell[finite] = inverse
    return cell, values


def cell_weights(cell_centres: np.ndarray, length: int) -> np.ndarray:
    """``[cells, length]``: how each cell's relevance is spread over the input frames (rows
    sum to 1; see the module docstring)."""
    c = np.asarray(cell_centres, dtype=np.float64)
    frames = np.arange(length, dtype=np.float64)
    if c.size == 0:
        return np.zeros((0, length))
    dist = np.abs(frames[:, None] - c[None, :])                 # [frames, cells]
    nearest = dist <= dist.min(axis=1, keepdims=True) + _TOL
    member = nearest / nearest.sum(axis=1, keepdims=True)       # each frame sums to 1
    size = member.sum(axis=0)                                   # frames per cell
    weights = np.zeros((c.size, length))
    full = size > _TOL
    weights[full] = (member[:, full] / size[full]).T
    for k in np.flatnonzero(~full):                             # a cell no frame is nearest to
        d = np.abs(frames - c[k])
        near = d <= d.min() + _TOL
        weights[k] = near / near.sum()
    return weights


def compress(centres: np.ndarray) -> np.ndarray:
    """``centres`` with every axis along which they do not change cut to size 1 (still
    broadcastable to the same shape)."""
    c = np.asarray(centres, dtype=np.float64)
    for axis in range(c.ndim):
        if c.shape[axis] > 1:
            first = np.take(c, [0], axis=axis)
            if np.array_equal(np.broadcast_to(first, c.shape), c, equal_nan=True):
                c = first
    return c


def time_axis(centres: np.ndarray) -> int | None:
    """The first axis along which the frame centres change (the layer's time axis, batch
    excluded), None if they do not (one time cell: no frame resolution)."""
    c = compress(centres)
    varying = [a for a in range(c.ndim) if c.shape[a] > 1]
    return varying[0] if varying else None


def _collapse(relevance: np.ndarray, centres: np.ndarray,
              keep_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Relevance ``[batch, *shape]`` summed over the axes along which ``centres``
    (broadcastable to ``shape``) do not change -> ``([batch, positions(, last)], centres
    [positions])``; ``keep_last`` keeps the last axis (channels) apart."""
    r = np.asarray(relevance, dtype=np.float64)
    shape = r.shape[1:]
    c = compress(np.asarray(centres, dtype=np.float64))
    if c.ndim != len(shape) or any(k not in (1, n) for k, n in zip(c.shape, shape)):
        raise ValueError(f"layer relevance of shape {tuple(shape)} per sample does not match "
                         f"centres of shape {c.shape}")
    if keep_last and c.shape[-1] != 1:
        raise ValueError("the layer's frame centres change along its last axis: it has no "
                         "channel axis")
    axes = tuple(a + 1 for a in range(len(shape))
                 if c.shape[a] == 1 and not (keep_last and a == len(shape) - 1))
    summed = r.sum(axis=axes, keepdims=True) if axes else r
    batch = r.shape[0]
    if keep_last:
        return summed.reshape(batch, -1, shape[-1]), c.reshape(-1)
    return summed.reshape(batch, -1), c.reshape(-1)


def frames_of_layer(relevance: np.ndarray, centres: np.ndarray,
                    length: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame relevance of a layer.

    Parameters
    ----------
    relevance
        ``[batch, *output shape]`` relevance arriving at the layer's output (or that summed
        over axes along which the centres do not change, those axes kept with size 1).
    centres
        Frame centre of each element (NaN: no frame), broadcastable to the output shape.
    length
        Frames of the input clip.

    Returns
    -------
    (frame, unmapped)
        ``[batch, length]`` relevance per input frame and ``[batch]`` relevance at elements
        without a frame; together they hold the layer's total.
    """
    flat, c = _collapse(relevance, centres)
    cell, values = time_cells(c)
    onehot = (cell[:, None] == np.arange(values.size)[None, :]).astype(np.float64)
    per_cell = flat @ onehot
    unmapped = flat[:, cell < 0].sum(axis=1)
    return per_cell @ cell_weights(values, length), unmapped


def channels_by_frame(relevance: np.ndarray, centres: np.ndarray, length: int) -> np.ndarray:
    """``[batch, channels, length]``: the relevance at a layer's output ``[batch, *shape,
    channels]`` per channel and input frame (elements without a frame left out); the
    centres must not change along the channel axis."""
    flat, c = _collapse(relevance, centres, keep_last=True)
    cell, values = time_cells(c)
    onehot = (cell[:, None] == np.arange(values.size)[None, :]).astype(np.float64)
    per_cell = np.einsum("bpc,pk->bkc", flat, onehot)
    return np.einsum("bkc,kf->bcf", per_cell, cell_weights(values, length))


def layer_rows(frame: np.ndarray, unmapped: np.ndarray, step: int, video_ids: list[str],
               clip_index: list[int], layer: str, depth: int,
               cells: int | float = np.nan) -> pd.DataFrame:
    """Per-clip rows (:data:`CLIP_COLUMNS`) of one layer for one batch; ``share`` is a frame's
    relevance over the clip's frame-carrying total (NaN where that total is 0)."""
    frame = np.asarray(frame, dtype=np.float64)
    batch, length = frame.shape
    total = frame.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(total != 0, frame / total, np.nan)
        lost = unmapped / (total[:, 0] + unmapped)
    return pd.DataFrame({
        "step": step, "video_id": np.repeat(video_ids, length),
        "clip_index": np.repeat(clip_index, length), "layer": layer, "depth": depth,
        "position": np.tile(np.arange(length), batch), "relevance": frame.ravel(),
        "share": shares.ravel(), "unmapped_share": np.repeat(lost, length),
        "time_cells": cells,
    })[CLIP_COLUMNS]


def _matrix(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.pivot_table(index=["video_id", "clip_index"], columns="position",
                            values="share", aggfunc="first").sort_index()


def summarize_layers(rows: pd.DataFrame, prior: pd.DataFrame | None = None,
                     n_boot: int = N_BOOT, seed: int = 0,
                     level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``layer_profiles.csv`` and ``layer_border_scores.csv`` from the per-clip rows (and the
    re-initialised copies' rows, with a ``seed`` column), per step and layer: mean share per
    frame with a bootstrap interval over clips, the prior's share, the relative profile and
    the border scores (as :func:`~kvlrp.analysis.measures.profiles.summarize_group`), and the
    pooled share and border scores over the same clips (module docstring; NaN without a
    ``relevance`` column)."""
    profiles, borders = [], []
    notes: dict[tuple[int, str], list[str]] = {}
    for (step, depth, layer), group in rows.groupby(["step", "depth", "layer"], sort=True):
        shares = _matrix(group.dropna(subset=["share"]))
        if shares.empty:
            continue
        p, mine = None, None
        if prior is not None and not prior.empty:
            mine = prior[(prior["step"] == step) & (prior["layer"] == layer)]
            if len(mine):
                per_seed = mine.dropna(subset=["share"]).pivot_table(
                    index=["video_id", "clip_index", "seed"], columns="position",
                    values="share", aggfunc="first")
                p = per_seed.groupby(level=["video_id", "clip_index"]).mean()
                p = p.reindex(shares.index).to_numpy()
        table, border = summarize_group(shares.to_numpy(), p, n_boot=n_boot, seed=seed,
                                        level=level)
        pooled, pooled_share, why = _pooled_layer(group, mine, shares.index, int(step),
                                                  n_boot, seed, level)
        if why:
            notes[(int(step), str(layer))] = why
            log_notes(f"step {step}, layer {layer}", why)
        lost = float(group.drop_duplicates(["video_id", "clip_index"])["unmapped_share"]
                     .mean())
        cells = int(group["time_cells"].iloc[0]) if "time_cells" in group else np.nan
        table = table.rename(columns={"mean_share": "share"})
        table["layer"], table["depth"], table["step"] = layer, int(depth), int(step)
        table["time_cells"], table["unmapped_share"] = cells, lost
        table["pooled_share"] = table["position"].map(pooled_share).astype(np.float64)
        profiles.append(table)
        borders.append({"layer": layer, "depth": int(depth), "step": int(step),
                        "time_cells": cells, "unmapped_share": lost, **border, **pooled})
    if not profiles:
        empty = pd.DataFrame(columns=LAYER_BORDER_COLUMNS)
        empty.attrs["pooled_notes"] = notes
        return pd.DataFrame(columns=PROFILE_COLUMNS), empty
    table = pd.concat(profiles, ignore_index=True)[PROFILE_COLUMNS]
    table = table.sort_values(["step", "depth", "position"], kind="stable")
    border_table = (pd.DataFrame(borders)[LAYER_BORDER_COLUMNS]
                    .sort_values(["step", "depth"], kind="stable").reset_index(drop=True))
    border_table.attrs["pooled_notes"] = notes
    return table.reset_index(drop=True), border_table


def _pooled_layer(group: pd.DataFrame, prior: pd.DataFrame | None, clips: pd.Index, step: int,
                  n_boot: int, seed: int,
                  level: float) -> tuple[dict[str, float], dict[int, float], list[str]]:
    """The pooled columns of one step and layer over the clips ``clips`` (``video_id,
    clip_index``), the pooled share per position (empty where undefined) and the NaN
    reasons."""
    trained = clip_relevance(group)
    if trained is None:
        return dict.fromkeys(POOLED_COLUMNS, np.nan), {}, []
    keys = pd.MultiIndex.from_arrays(
        [np.full(len(clips), step, dtype=trained.index.get_level_values("step").dtype),
         clips.get_level_values("video_id"), clips.get_level_values("clip_index")],
        names=CLIP_KEY)
    sums, prior_sums, _ = video_sums(trained, clip_relevance(prior), keys)
    res = pooled_scores(sums, prior_sums, video_counts(len(sums), n_boot, seed), level)
    share = {} if res.shares is None else dict(zip(trained.columns, res.shares))
    return pooled_columns(res, level), share, res.notes


def channel_sum_rows(sums: np.ndarray, n_clips: int, layer: str, step: int) -> pd.DataFrame:
    """Rows (:data:`CHANNEL_SUM_COLUMNS`) of ``sums`` ``[channels, length]``, relevance per
    channel and input frame summed over ``n_clips`` clips (one worker's part of a step)."""
    sums = np.asarray(sums, dtype=np.float64)
    channels, length = sums.shape
    return pd.DataFrame({"step": int(step), "layer": layer,
                         "channel": np.repeat(np.arange(channels), length),
                         "position": np.tile(np.arange(length), channels),
                         "relevance_sum": sums.ravel(), "n_clips": int(n_clips)})


def channel_table(sum_rows: pd.DataFrame) -> pd.DataFrame:
    """``concept_profiles.csv`` from channel sum rows (:func:`channel_sum_rows`, of one or
    several workers), per step: ``relevance`` the mean over clips of a channel's relevance at
    an input frame, ``share`` its part of the total over every channel and frame,
    ``channel_share`` the channel's part of the total, ``border_share`` the channel's part
    of the relevance at the first and last frames."""
    if sum_rows.empty:
        return pd.DataFrame(columns=CHANNEL_COLUMNS)
    out = []
    for (step, layer), g in sum_rows.groupby(["step", "layer"], sort=True):
        # each worker's rows carry its clip count once per channel and position
        n_clips = int(g.groupby(["channel", "position"])["n_clips"].sum().iloc[0])
        sums = g.groupby(["channel", "position"])["relevance_sum"].sum().unstack("position")
        out.append(_channel_step(sums.sort_index().to_numpy(), n_clips, str(layer), int(step)))
    return pd.concat(out, ignore_index=True)[CHANNEL_COLUMNS]


def _channel_step(sums: np.ndarray, n_clips: int, layer: str, step: int) -> pd.DataFrame:
    channels, length = sums.shape
    mean = sums / max(int(n_clips), 1)
    total = mean.sum()
    border = mean[:, [0, length - 1]].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        share = mean / total
        channel_share = mean.sum(axis=1) / total
        border_share = mean[:, [0, length - 1]].sum(axis=1) / border
    return pd.DataFrame({
        "layer": layer, "channel": np.repeat(np.arange(channels), length),
        "position": np.tile(np.arange(length), channels), "relevance": mean.ravel(),
        "share": share.ravel(), "step": int(step), "n_clips": int(n_clips),
        "channel_share": np.repeat(channel_share, length),
        "border_share": np.repeat(border_share, length),
    })


def top_border_channels(channels: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """Per step, the ``n`` channels that carry most of the relevance at the border frames:
    ``step, channel, border_share, channel_share`` (largest first), with
    ``cumulative_border_share``."""
    per = channels.drop_duplicates(["step", "channel"])[["step", "channel", "border_share",
                                                         "channel_share"]]
    top = (per.sort_values(["step", "border_share"], ascending=[True, False])
           .groupby("step").head(n).reset_index(drop=True))
    top["cumulative_border_share"] = top.groupby("step")["border_share"].cumsum()
    return top
