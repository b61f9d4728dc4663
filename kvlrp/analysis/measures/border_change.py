"""Change of the border score between steps, paired over the same videos
(``border_changes.csv``).

Each video's share profile at a step is the mean over its clips; the border score of a step
is that of the mean over videos (and, *relative*, of that mean divided by the prior's mean, as
in :mod:`kvlrp.analysis.measures.profiles`). The change ``B(step) - B(reference)`` is computed on
the
videos explained at both steps, and the bootstrap resamples those videos jointly for both steps,
so the interval reflects only how the same videos' profiles change.

The ``pooled_relative_border_change*`` columns are the same paired change of the pooled
relative border score (:mod:`kvlrp.analysis.measures.pooled`: relevance summed over the
videos' clips before dividing), with the same resampled videos for both steps and their priors;
NaN where either step's pooled relative score is undefined (the reason is logged).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kvlrp.analysis.measures.bootstrap import N_BOOT, bootstrap_indices, percentile_interval
from kvlrp.analysis.measures.pooled import (
    POOLED_CHANGE_COLUMNS,
    clip_relevance,
    log_notes,
    pooled_relative_change,
    video_sums,
)
from kvlrp.analysis.measures.profiles import relative_profile
from kvlrp.analysis.measures.shares import border_score

#: Columns of ``border_changes.csv`` (one row per step other than the reference step).
CHANGE_COLUMNS = ["step", "reference_step", "n_videos", "border_change", "border_change_ci_low",
                  "border_change_ci_high", "relative_border_change",
                  "relative_border_change_ci_low", "relative_border_change_ci_high",
                  *POOLED_CHANGE_COLUMNS]


def video_profiles(df: pd.DataFrame) -> pd.DataFrame:
    """Mean share per position over each video's clips: index ``step, video_id``, one column
    per position (a prior table is first averaged over its seeds)."""
    keys = ["step", "video_id", "clip_index", "position"]
    per_clip = df.groupby(keys)["share"].mean().reset_index()
    return per_clip.pivot_table(index=["step", "video_id"], columns="position", values="share",
                                aggfunc="mean").sort_index()


def _score(profiles: np.ndarray, prior: np.ndarray | None) -> np.ndarray:
    """Border score of the mean over axis -2 (videos), relative to the prior if given."""
    mean = profiles.mean(axis=-2)
    if prior is None:
        return border_score(mean)
    return border_score(relative_profile(mean, np.nanmean(prior, axis=-2)))


def border_changes(frame_df: pd.DataFrame, prior_df: pd.DataFrame | None, reference_step: int,
                   n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """``border_changes.csv``: the paired change of the (relative) border score of every step
    against ``reference_step`` (empty when that step was not explained)."""
    shares = video_profiles(frame_df)
    prior = None if prior_df is None or prior_df.empty else video_profiles(prior_df)
    relevance, prior_relevance = clip_relevance(frame_df), clip_relevance(prior_df)
    steps = sorted(shares.index.get_level_values("step").unique())
    if reference_step not in steps:
        return pd.DataFrame(columns=CHANGE_COLUMNS)
    ref = shares.loc[reference_step]
    rows = []
    for step in steps:
        if step == reference_step:
            continue
        cur = shares.loc[step]
        vids = ref.index.intersection(cur.index)
        if len(vids) == 0:
            continue
        a, b = ref.loc[vids].to_numpy(), cur.loc[vids].to_numpy()
        idx = bootstrap_indices(len(vids), n_boot, seed)
        change = _score(b, None) - _score(a, None)
        low, high = percentile_interval(_score(b[idx], None) - _score(a[idx], None), level)
        row = {"step": int(step), "reference_step": int(reference_step),
               "n_videos": len(vids), "border_change": float(change),
               "border_change_ci_low": low, "border_change_ci_high": high,
               "relative_border_change": np.nan, "relative_border_change_ci_low": np.nan,
               "relative_border_change_ci_high": np.nan}
        if prior is not None and {reference_step, step} <= set(
                prior.index.get_level_values("step")):
            pa = prior.loc[reference_step].reindex(vids).to_numpy()
            pb = prior.loc[step].reindex(vids).to_numpy()
            if np.isfinite(pa).any() and np.isfinite(pb).any():
                rel = _score(b, pb) - _score(a, pa)
                r_low, r_high = percentile_interval(_score(b[idx], pb[idx])
                                                    - _score(a[idx], pa[idx]), level)
                row.update(relative_border_change=float(rel),
                           relative_border_change_ci_low=r_low,
                           relative_border_change_ci_high=r_high)
        row.update(_pooled_change(relevance, prior_relevance, reference_step, int(step), vids,
                                  n_boot, seed, level))
        rows.append(row)
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


def _pooled_change(relevance: pd.DataFrame | None, prior: pd.DataFrame | None,
                   reference_step: int, step: int, vids: pd.Index, n_boot: int, seed: int,
                   level: float) -> dict[str, float]:
    """The pooled relative change of ``step`` against ``reference_step`` over the videos
    ``vids`` (NaN without relevance or prior)."""
    if relevance is None or prior is None:
        return dict.fromkeys(POOLED_CHANGE_COLUMNS, np.nan)
    pair = []
    for s in (reference_step, step):
        clips = relevance.index[(relevance.index.get_level_values("step") == s)
                                & relevance.index.get_level_values("video_id").isin(vids)]
        trained, prior_sums, videos = video_sums(relevance, prior, clips)
        if prior_sums is None or not videos.equals(pd.Index(sorted(vids), name="video_id")):
            return dict.fromkeys(POOLED_CHANGE_COLUMNS, np.nan)
        pair.append((trained, prior_sums))
    values, notes = pooled_relative_change(pair[0], pair[1], n_boot=n_boot, seed=seed,
                                           level=level)
    log_notes(f"change of step {step} against step {reference_step}", notes)
    return values
