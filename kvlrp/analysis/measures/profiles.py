"""Frame-position profiles: mean share per position with bootstrap intervals, the position prior,
the relative profile and border scores, built from the long ``frame_relevance.csv`` table.

Normalisation of the relative profile: ``ratio[t] = mean_share[t] / prior_share[t]``, then
``relative_share = ratio / mean(ratio)``, so a profile identical to the architecture's prior is
1.0 at every position and a value of 1.2 means "20 % more than the prior gives this position".
Border scores are scale-invariant, so the normalisation does not change them.

Temporal columns (selective relevance, :mod:`kvlrp.analysis.measures.temporal`), from the frame
table's
``temporal_share`` (a clip's temporal relevance at a position over the clip's total relevance):
``temporal_clip_share`` is its mean over clips; ``temporal_share = temporal_clip_share /
mean_share``, the share of the relevance at that position that is temporal, with a bootstrap
interval (``temporal_ci_low/high``) over clips; ``temporal_fraction`` (border table) is the
share of all relevance that is temporal, and ``temporal_border_score`` the border score of the
temporal part's own profile.

Pooled columns (``pooled_*``, :mod:`kvlrp.analysis.measures.pooled`): the ratio-of-sums
border scores with a bootstrap over videos, defined also for signed analyzers whose clip totals
can be near zero; the returned border table's ``attrs["pooled_notes"]`` lists, per ``(step,
class)``, why a pooled score is NaN (also logged).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from kvlrp.analysis.measures.bootstrap import N_BOOT, bootstrap_indices, percentile_interval
from kvlrp.analysis.measures.pooled import (
    CLIP_KEY,
    POOLED_COLUMNS,
    clip_relevance,
    log_notes,
    pooled_border,
    video_sums,
)
from kvlrp.analysis.measures.shares import border_score

#: Columns of ``frame_relevance.csv`` (one row per clip and frame position).
FRAME_COLUMNS = [
    "video_id", "label", "predicted", "clip_index", "clip_start", "step", "position",
    "relevance", "share", "analyzer", "temporal_relevance", "temporal_share",
]
#: Columns of ``frame_relevance_summary.csv``; ``class`` is ``all`` or a true label.
SUMMARY_COLUMNS = [
    "step", "class", "position", "mean_share", "std_share", "ci_low", "ci_high", "n_clips",
    "prior_share", "relative_share", "temporal_clip_share", "temporal_share",
    "temporal_ci_low", "temporal_ci_high",
]
#: Columns of ``border_scores.csv`` (one row per step and class).
BORDER_COLUMNS = [
    "step", "class", "n_clips", "border_score", "border_ci_low", "border_ci_high",
    "prior_border_score", "relative_border_score", "relative_border_ci_low",
    "relative_border_ci_high", "temporal_fraction", "temporal_border_score",
    "temporal_border_ci_low", "temporal_border_ci_high", *POOLED_COLUMNS,
]
_CLIP_KEY = CLIP_KEY


def share_matrix(frame_df: pd.DataFrame) -> pd.DataFrame:
    """Pivot the long table to one row per clip (index ``step, video_id, clip_index``) and one
    column per frame position, holding the share."""
    missing = set(_CLIP_KEY + ["position", "share"]) - set(frame_df.columns)
    if missing:
        raise ValueError(f"frame table lacks columns {sorted(missing)}; has {list(frame_df)}")
    return frame_df.pivot_table(index=_CLIP_KEY, columns="position", values="share",
                                aggfunc="first").sort_index()


def prior_matrix(prior_df: pd.DataFrame) -> pd.DataFrame:
    """Per-clip prior profile: the mean share over the seeds whose relevance was non-zero."""
    per_seed = prior_df.pivot_table(index=_CLIP_KEY + ["seed"], columns="position",
                                    values="share", aggfunc="first")
    return per_seed.groupby(level=_CLIP_KEY).mean().sort_index()


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def relative_profile(mean_share: np.ndarray, prior_share: np.ndarray) -> np.ndarray:
    """``(mean_share / prior_share)`` scaled to mean 1 (see the module docstring)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(mean_share, dtype=np.float64) / np.asarray(prior_share, np.float64)
        return ratio / np.mean(ratio, axis=-1, keepdims=True)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(a, dtype=np.float64) / np.asarray(b, dtype=np.float64)


def summarize_group(
    shares: np.ndarray,
    prior: np.ndarray | None = None,
    temporal: np.ndarray | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[pd.DataFrame, dict]:
    """Summarise the share profiles of one group of clips.

    Parameters
    ----------
    shares
        ``[clips, frames]`` shares of valid clips (rows sum to 1).
    prior
        ``[clips, frames]`` prior profile of the same clips (NaN rows: no valid prior seed), or
        None.
    temporal
        ``[clips, frames]`` temporal relevance over each clip's total relevance (the frame
        table's ``temporal_share``), or None (temporal columns NaN).
    n_boot, seed, level
        Bootstrap over clips (the same resamples serve every statistic; the prior is resampled
        jointly with the trained profile since both come from the same clips).

    Returns
    -------
    table : DataFrame
        ``position, mean_share, std_share, ci_low, ci_high, n_clips, prior_share,
        relative_share``.
    border : dict
        ``n_clips, border_score, border_ci_low, border_ci_high, prior_border_score,
        relative_border_score, relative_border_ci_low, relative_border_ci_high``.
    """
    shares = np.asarray(shares, dtype=np.float64)
    n, length = shares.shape
    mean = shares.mean(axis=0)
    std = shares.std(axis=0, ddof=1) if n > 1 else np.zeros(length)
    idx = bootstrap_indices(n, n_boot, seed)
    boot_means = shares[idx].mean(axis=1)  # [n_boot, frames]
    ci_low, ci_high = percentile_interval(boot_means, level)
    b_low, b_high = percentile_interval(border_score(boot_means), level)
    table = pd.DataFrame({
        "position": np.arange(length), "mean_share": mean, "std_share": std,
        "ci_low": ci_low, "ci_high": ci_high, "n_clips": n,
    })
    border = {"n_clips": n, "border_score": border_score(mean),
              "border_ci_low": b_low, "border_ci_high": b_high}
    _temporal_columns(table, border, temporal, mean, boot_means, idx, level)
    if prior is None or not np.isfinite(prior).any():
        table["prior_share"] = np.nan
        table["relative_share"] = np.nan
        border.update(prior_border_score=np.nan, relative_border_score=np.nan,
                      relative_border_ci_low=np.nan, relative_border_ci_high=np.nan)
        return table, border
    prior = np.asarray(prior, dtype=np.float64)
    prior_mean = _nanmean(prior, axis=0)
    relative = relative_profile(mean, prior_mean)
    boot_rel = relative_profile(boot_means, _nanmean(prior[idx], axis=1))
    r_low, r_high = percentile_interval(border_score(boot_rel), level)
    table["prior_share"] = prior_mean
    table["relative_share"] = relative
    border.update(prior_border_score=border_score(prior_mean),
                  relative_border_score=border_score(relative),
                  relative_border_ci_low=r_low, relative_border_ci_high=r_high)
    return table, border


def _temporal_columns(table: pd.DataFrame, border: dict, temporal: np.ndarray | None,
                      mean: np.ndarray, boot_means: np.ndarray, idx: np.ndarray,
                      level: float) -> None:
    """Add the ``temporal_*`` columns/keys in place (NaN without a temporal matrix)."""
    keys = ("temporal_fraction", "temporal_border_score", "temporal_border_ci_low",
            "temporal_border_ci_high")
    if temporal is None or not np.isfinite(temporal).any():
        for col in ("temporal_clip_share", "temporal_share", "temporal_ci_low",
                    "temporal_ci_high"):
            table[col] = np.nan
        border.update(dict.fromkeys(keys, np.nan))
        return
    temporal = np.asarray(temporal, dtype=np.float64)
    t_mean = temporal.mean(axis=0)
    boot_t = temporal[idx].mean(axis=1)  # [n_boot, frames], the same resamples
    t_low, t_high = percentile_interval(_ratio(boot_t, boot_means), level)
    table["temporal_clip_share"] = t_mean
    table["temporal_share"] = _ratio(t_mean, mean)
    table["temporal_ci_low"] = t_low
    table["temporal_ci_high"] = t_high
    tb_low, tb_high = percentile_interval(border_score(boot_t), level)
    border.update(temporal_fraction=float(t_mean.sum()),
                  temporal_border_score=border_score(t_mean),
                  temporal_border_ci_low=tb_low, temporal_border_ci_high=tb_high)


def summarize_profiles(
    frame_df: pd.DataFrame,
    prior_df: pd.DataFrame | None = None,
    by_class: bool = True,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build ``frame_relevance_summary.csv`` and ``border_scores.csv`` from the long tables.

    Groups: every step, overall (``class == "all"``) and, if ``by_class``, per true label.

    Parameters
    ----------
    frame_df
        Rows of ``frame_relevance.csv`` (valid clips only).
    prior_df
        Rows ``step, seed, video_id, clip_index, position, share`` of the re-initialised models
        (valid clips only), or None. The pooled columns need a ``relevance`` column in both
        tables (NaN without it).
    """
    if frame_df.empty:
        raise ValueError("no clip with non-zero relevance to summarise (frame table is empty)")
    shares = share_matrix(frame_df)
    temporal = None
    if "temporal_share" in frame_df.columns and frame_df["temporal_share"].notna().any():
        temporal = frame_df.pivot_table(index=_CLIP_KEY, columns="position",
                                        values="temporal_share", aggfunc="first")
        temporal = temporal.reindex(shares.index)
    prior = None
    if prior_df is not None and not prior_df.empty:
        prior = prior_matrix(prior_df).reindex(shares.index)
    relevance = clip_relevance(frame_df)
    prior_relevance = clip_relevance(prior_df)
    notes: dict[tuple[int, str], list[str]] = {}
    labels = frame_df.drop_duplicates(_CLIP_KEY).set_index(_CLIP_KEY)["label"]
    labels = labels.reindex(shares.index)
    tables, borders = [], []
    for step in sorted(shares.index.get_level_values("step").unique()):
        in_step = shares.index.get_level_values("step") == step
        groups = [("all", in_step)]
        if by_class:
            groups += [(str(c), in_step & (labels.to_numpy() == c))
                       for c in sorted(labels[in_step].unique())]
        for name, mask in groups:
            table, border = summarize_group(
                shares.to_numpy()[mask],
                None if prior is None else prior.to_numpy()[mask],
                None if temporal is None else temporal.to_numpy()[mask],
                n_boot=n_boot, seed=seed, level=level,
            )
            table.insert(0, "class", name)
            table.insert(0, "step", step)
            tables.append(table)
            pooled = dict.fromkeys(POOLED_COLUMNS, np.nan)
            if relevance is not None:
                trained, prior_sums, _ = video_sums(relevance, prior_relevance,
                                                    shares.index[mask])
                pooled, why = pooled_border(trained, prior_sums, n_boot=n_boot, seed=seed,
                                            level=level)
                if why:
                    notes[(int(step), name)] = why
                    log_notes(f"step {step}, class {name}", why)
            borders.append({"step": step, "class": name, **border, **pooled})
    border_table = pd.DataFrame(borders)[BORDER_COLUMNS]
    border_table.attrs["pooled_notes"] = notes
    return pd.concat(tables, ignore_index=True)[SUMMARY_COLUMNS], border_table
