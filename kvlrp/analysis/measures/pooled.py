"""Pooled (ratio-of-sums) border scores, with a bootstrap over videos.

The per-clip estimator (:mod:`kvlrp.analysis.measures.profiles`) averages each clip's shares
``R_k / sum_k R_k``. For signed analyzers (``cp_lrp``, ``attnlrp``, ``lrp.epsilon``) a clip's
total can be near zero or negative, its shares explode and so does their mean. The pooled
estimator sums first and divides once:

- pooled shares ``p_k = sum_clips R_k / sum_clips sum_k R_k`` over the clips of a group (step
  and class); ``pooled_border_score = B(p)``;
- the prior's pooled shares ``q``: the same for each re-initialised copy (seed) over the same
  clips, averaged over the seeds (each copy an equal draw of the architecture, whatever the
  scale of its relevance); ``pooled_relative_border_score = B(p / q)``.

Intervals are percentile bootstraps that resample **videos** (all clips of a drawn video go
together), the prior jointly with the trained model (it explains the same clips); a paired
change between steps uses the same resampled videos for both steps.

Rule for undefined values (NaN, with the reason logged): a ratio is reported only where its
denominator is clearly away from zero, i.e. its bootstrap interval (same level) excludes 0 and
the point estimate lies on the same side: the pooled total (for ``p``), the inner mean of ``p``
(``B``'s denominator), and for the relative score each seed's pooled total (a seed failing it
is left out of ``q``), every prior pooled share ``q_k`` and the inner mean of ``p / q``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kvlrp.analysis.measures.bootstrap import N_BOOT, bootstrap_indices, percentile_interval
from kvlrp.analysis.measures.shares import border_score

log = logging.getLogger(__name__)

#: Columns appended to ``border_scores.csv``.
POOLED_COLUMNS = [
    "pooled_border_score", "pooled_border_ci_low", "pooled_border_ci_high",
    "pooled_relative_border_score", "pooled_relative_border_ci_low",
    "pooled_relative_border_ci_high",
]
#: Columns appended to ``border_changes.csv``.
POOLED_CHANGE_COLUMNS = ["pooled_relative_border_change", "pooled_relative_border_change_ci_low",
                         "pooled_relative_border_change_ci_high"]
#: The estimator and its NaN rule in one sentence (``summary.json``).
POOLED_NOTE = (
    "pooled (ratio-of-sums) shares p_k = sum_clips R_k / sum_clips sum_k R_k per step and "
    "class; pooled B = B(p), pooled relative B = B(p / q) with q the mean over prior seeds of "
    "each seed's pooled shares on the same clips; 95 % percentile bootstrap resampling videos "
    "(prior and paired steps resampled jointly); NaN where a denominator (pooled total, inner "
    "mean, a prior seed's total or pooled share) has a bootstrap interval including 0")
CLIP_KEY = ["step", "video_id", "clip_index"]


def clip_relevance(df: pd.DataFrame | None) -> pd.DataFrame | None:
    """Relevance per clip (rows ``step, video_id, clip_index`` and, for a prior table,
    ``seed``) and frame position (columns); None without a ``relevance`` column."""
    if df is None or df.empty or "relevance" not in df.columns:
        return None
    index = CLIP_KEY + (["seed"] if "seed" in df.columns else [])
    return df.pivot_table(index=index, columns="position", values="relevance",
                          aggfunc="first").sort_index()


def video_sums(trained: pd.DataFrame, prior: pd.DataFrame | None,
               clips: pd.Index) -> tuple[np.ndarray, np.ndarray | None, pd.Index]:
    """Relevance summed over each video's clips, for the clips ``clips`` of one group.

    Parameters
    ----------
    trained
        :func:`clip_relevance` of the frame table.
    prior
        :func:`clip_relevance` of the prior table, or None.
    clips
        The group's clips (a MultiIndex ``step, video_id, clip_index``).

    Returns
    -------
    trained : np.ndarray
        ``[videos, frames]``.
    prior : np.ndarray or None
        ``[seeds, videos, frames]`` (a clip a seed left out counts 0), None without a prior.
    videos : pd.Index
        The video ids, in the rows' order.
    """
    rel = trained.reindex(clips).fillna(0.0)
    sums = rel.groupby(level="video_id", sort=True).sum()
    videos = sums.index
    if prior is None:
        return sums.to_numpy(np.float64), None, videos
    keys = prior.index.droplevel("seed")
    chosen = prior[keys.isin(clips)]
    if chosen.empty:
        return sums.to_numpy(np.float64), None, videos
    per_seed = chosen.groupby(level=["seed", "video_id"]).sum()
    seeds = sorted(per_seed.index.get_level_values("seed").unique())
    stacked = np.stack([per_seed.xs(s, level="seed").reindex(videos, columns=sums.columns)
                        .fillna(0.0).to_numpy(np.float64) for s in seeds])
    return sums.to_numpy(np.float64), stacked, videos


def pooled_profiles(frame: pd.DataFrame, prior: pd.DataFrame | None,
                    step: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The pooled shares ``p`` of one step's clips (all classes) and the prior's ``q`` (each
    re-initialised seed's pooled shares over the same clips, averaged over the seeds), for a
    plot of the profiles behind the pooled scores (no interval, no NaN rule)."""
    trained = clip_relevance(frame[frame["step"] == step])
    if trained is None:
        return np.array([]), None
    rows = None if prior is None or prior.empty else prior[prior["step"] == step]
    sums, prior_sums, _ = video_sums(trained, clip_relevance(rows), trained.index)
    p = sums.sum(axis=0) / sums.sum()
    if prior_sums is None:
        return p, None
    per_seed = prior_sums.sum(axis=1)
    return p, np.mean(per_seed / per_seed.sum(axis=1, keepdims=True), axis=0)


def video_counts(n_videos: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """``[n_boot, n_videos]``: how often each video is drawn in each bootstrap resample
    (from :func:`~kvlrp.analysis.measures.bootstrap.bootstrap_indices`)."""
    idx = bootstrap_indices(n_videos, n_boot, seed)
    counts = np.zeros((n_boot, n_videos))
    np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1.0)
    return counts


@dataclass
class Pooled:
    """Pooled border scores of one group: point values and their bootstrap replicates
    (NaN where the rule in the module docstring says undefined; ``notes`` say why), and the
    pooled shares ``p`` (None where the pooled total is not clear of 0)."""

    border: float
    boot_border: np.ndarray
    relative: float
    boot_relative: np.ndarray
    notes: list[str] = field(default_factory=list)
    shares: np.ndarray | None = None


def _clear_of_zero(point: np.ndarray | float, boot: np.ndarray,
                   level: float) -> np.ndarray | bool:
    """Where the bootstrap interval of ``point`` excludes 0 with ``point`` on the same side."""
    low, high = percentile_interval(boot, level)
    point = np.asarray(point, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = ((point > 0) & (np.asarray(low) > 0)) | ((point < 0) & (np.asarray(high) < 0))
    return bool(ok) if np.ndim(ok) == 0 else ok


def _shares(sums: np.ndarray, counts: np.ndarray,
            level: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """Pooled shares of ``[videos, frames]`` sums, their replicates, and whether the pooled
    total is clear of zero."""
    total_by_pos = sums.sum(axis=0)
    boot = counts @ sums  # [n_boot, frames]
    total, boot_total = total_by_pos.sum(), boot.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (total_by_pos / total, boot / boot_total[:, None],
                _clear_of_zero(total, boot_total, level))


def _inner(profile: np.ndarray) -> np.ndarray:
    return np.asarray(profile)[..., 1:-1].mean(axis=-1)


def pooled_scores(trained: np.ndarray, prior: np.ndarray | None, counts: np.ndarray,
                  level: float = 0.95) -> Pooled:
    """Pooled B and pooled relative B of one group, with bootstrap replicates.

    Parameters
    ----------
    trained
        ``[videos, frames]`` relevance summed over each video's clips.
    prior
        ``[seeds, videos, frames]`` the same for the re-initialised copies, or None.
    counts
        ``[n_boot, videos]`` from :func:`video_counts` (the same for groups to be paired).
    level
        Interval level of the NaN rule.
    """
    n_boot = len(counts)
    nan = np.full(n_boot, np.nan)
    out = Pooled(np.nan, nan, np.nan, nan)
    p, boot_p, total_ok = _shares(np.asarray(trained, np.float64), counts, level)
    if not total_ok:
        out.notes.append(f"pooled total {float(trained.sum()):.3g} not clear of 0")
        return out
    out.shares = p
    if not _clear_of_zero(_inner(p), _inner(boot_p), level):
        out.notes.append("inner mean of the pooled shares not clear of 0")
        return out
    out.border, out.boot_border = border_score(p), border_score(boot_p)
    if prior is None or len(prior) == 0:
        return out
    kept = [_shares(s, counts, level) for s in np.asarray(prior, np.float64)]
    dropped = len(kept) - sum(ok for _, _, ok in kept)
    kept = [(q, bq) for q, bq, ok in kept if ok]
    if dropped:
        out.notes.append(f"{dropped} prior seed(s) left out: pooled total not clear of 0")
    if not kept:
        return out
    q = np.mean([k[0] for k in kept], axis=0)
    boot_q = np.mean([k[1] for k in kept], axis=0)
    bad = np.flatnonzero(~_clear_of_zero(q, boot_q, level))
    if len(bad):
        out.notes.append(f"prior pooled share not clear of 0 at position(s) {bad.tolist()}")
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        r, boot_r = p / q, boot_p / boot_q
    if not _clear_of_zero(_inner(r), _inner(boot_r), level):
        out.notes.append("inner mean of p / q not clear of 0")
        return out
    out.relative, out.boot_relative = border_score(r), border_score(boot_r)
    return out


def pooled_border(trained: np.ndarray, prior: np.ndarray | None, n_boot: int = N_BOOT,
                  seed: int = 0, level: float = 0.95) -> tuple[dict[str, float], list[str]]:
    """The :data:`POOLED_COLUMNS` of one group (videos resampled), and the NaN reasons.

    ``trained``, ``prior``: as in :func:`pooled_scores`.
    """
    res = pooled_scores(trained, prior, video_counts(len(trained), n_boot, seed), level)
    return pooled_columns(res, level), res.notes


def pooled_columns(res: Pooled, level: float = 0.95) -> dict[str, float]:
    """The :data:`POOLED_COLUMNS` of :func:`pooled_scores`' result: point values and
    percentile intervals (NaN where undefined)."""
    b_low, b_high = (percentile_interval(res.boot_border, level) if np.isfinite(res.border)
                     else (np.nan, np.nan))
    r_low, r_high = (percentile_interval(res.boot_relative, level)
                     if np.isfinite(res.relative) else (np.nan, np.nan))
    values = dict(zip(POOLED_COLUMNS, (res.border, b_low, b_high, res.relative, r_low,
                                       r_high)))
    return {k: float(v) for k, v in values.items()}


def pooled_relative_change(reference: tuple[np.ndarray, np.ndarray | None],
                           current: tuple[np.ndarray, np.ndarray | None], n_boot: int = N_BOOT,
                           seed: int = 0, level: float = 0.95
                           ) -> tuple[dict[str, float], list[str]]:
    """:data:`POOLED_CHANGE_COLUMNS`: pooled relative B at ``current`` minus at ``reference``
    (each ``(trained, prior)`` over the same videos, in the same order), the same resampled
    videos for both; and the NaN reasons."""
    counts = video_counts(len(reference[0]), n_boot, seed)
    a = pooled_scores(*reference, counts=counts, level=level)
    b = pooled_scores(*current, counts=counts, level=level)
    notes = [f"reference step: {n}" for n in a.notes] + [f"step: {n}" for n in b.notes]
    change = b.relative - a.relative
    low, high = (percentile_interval(b.boot_relative - a.boot_relative, level)
                 if np.isfinite(change) else (np.nan, np.nan))
    return dict(zip(POOLED_CHANGE_COLUMNS, (float(change), float(low), float(high)))), notes


def log_notes(where: str, notes: list[str]) -> None:
    """Log why a pooled score is NaN (or a prior seed was left out)."""
    for note in notes:
        log.warning("pooled border score, %s: %s", where, note)
