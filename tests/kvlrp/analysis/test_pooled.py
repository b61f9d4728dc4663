"""Pooled (ratio-of-sums) border scores with a bootstrap over videos, against numpy by hand."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from kvlrp.analysis.measures.bootstrap import bootstrap_indices, percentile_interval
from kvlrp.analysis.measures.border_change import border_changes
from kvlrp.analysis.measures.pooled import (
    POOLED_CHANGE_COLUMNS,
    POOLED_COLUMNS,
    pooled_border,
    pooled_profiles,
    video_counts,
)
from kvlrp.analysis.measures.profiles import BORDER_COLUMNS, summarize_profiles


def _b(p: np.ndarray) -> float:
    """B by hand for a 4-position profile."""
    return float((p[0] + p[3]) / 2 / ((p[1] + p[2]) / 2))


def _frame(clips: dict[tuple[int, str], list[list[float]]], label: str = "x",
           seed: int | None = None) -> pd.DataFrame:
    """Long table of ``(step, video) -> [clip relevance per position]``."""
    rows = []
    for (step, vid), rels in clips.items():
        for c, rel in enumerate(rels):
            rel = np.asarray(rel, dtype=np.float64)
            for t, r in enumerate(rel):
                rows.append({"step": step, "video_id": vid, "clip_index": c, "label": label,
                             "position": t, "relevance": r, "share": r / rel.sum(),
                             **({} if seed is None else {"seed": seed})})
    return pd.DataFrame(rows)


TRAINED = {(1, "a"): [[4.0, 1.0, 1.0, 2.0], [1.0, 2.0, 1.0, 1.0]],
           (1, "b"): [[3.0, 1.0, 2.0, 3.0]],
           (1, "c"): [[2.0, 2.0, 1.0, 1.0], [1.0, 1.0, 1.0, 3.0]]}
PRIOR0 = {(1, "a"): [[1.0, 2.0, 2.0, 1.0], [1.0, 3.0, 3.0, 1.0]],
          (1, "b"): [[1.0, 2.0, 1.0, 1.0]],
          (1, "c"): [[2.0, 3.0, 3.0, 2.0], [1.0, 1.0, 2.0, 1.0]]}
PRIOR1 = {(1, "a"): [[10.0, 30.0, 20.0, 10.0], [0.0, 10.0, 10.0, 0.0]],
          (1, "b"): [[10.0, 20.0, 20.0, 10.0]],
          (1, "c"): [[10.0, 10.0, 10.0, 10.0], [10.0, 20.0, 30.0, 10.0]]}


def _pooled(clips: dict) -> np.ndarray:
    total = np.sum([np.sum(r, axis=0) for r in clips.values()], axis=0)
    return total / total.sum()


def test_pooled_scores_match_numpy_by_hand():
    frame = _frame(TRAINED)
    prior = pd.concat([_frame(PRIOR0, seed=0), _frame(PRIOR1, seed=1)], ignore_index=True)
    _, borders = summarize_profiles(frame, prior, by_class=False, n_boot=200, seed=3)
    assert list(borders.columns) == BORDER_COLUMNS
    assert BORDER_COLUMNS[-6:] == POOLED_COLUMNS
    row = borders.iloc[0]
    p = _pooled(TRAINED)
    np.testing.assert_allclose(p, np.array([11, 7, 6, 10]) / 34)
    q = (_pooled(PRIOR0) + _pooled(PRIOR1)) / 2  # each seed's pooled shares, then the mean
    assert row["pooled_border_score"] == pytest.approx(_b(p), rel=1e-12)
    assert row["pooled_relative_border_score"] == pytest.approx(_b(p / q), rel=1e-12)
    # the interval: the same videos drawn for the trained model and the priors
    sums = {v: np.sum(TRAINED[(1, v)], axis=0) for v in "abc"}
    psums = [{v: np.sum(pr[(1, v)], axis=0) for v in "abc"} for pr in (PRIOR0, PRIOR1)]
    boot_b, boot_r = [], []
    for draw in bootstrap_indices(3, 200, 3):
        vids = ["abc"[i] for i in draw]
        bp = np.sum([sums[v] for v in vids], axis=0)
        bq = np.mean([np.sum([s[v] for v in vids], axis=0) / np.sum([s[v] for v in vids])
                      for s in psums], axis=0)
        boot_b.append(_b(bp))
        boot_r.append(_b(bp / bp.sum() / bq))
    assert row["pooled_border_ci_low"] == pytest.approx(np.percentile(boot_b, 2.5))
    assert row["pooled_border_ci_high"] == pytest.approx(np.percentile(boot_b, 97.5))
    assert row["pooled_relative_border_ci_low"] == pytest.approx(np.percentile(boot_r, 2.5))
    assert row["pooled_relative_border_ci_high"] == pytest.approx(np.percentile(boot_r, 97.5))
    assert borders.attrs["pooled_notes"] == {}


def test_pooled_score_stays_finite_where_clip_totals_are_near_zero_or_negative():
    clips = {}
    for i in range(8):
        good = [3.0 + i % 3, 1.0, 1.5, 2.0]
        near_zero = [0.6, 0.5, -0.4, -0.7 + (-1) ** i * 1e-3 * (i + 1)]  # total +-1e-3 (i+1)
        negative = [-0.5, 0.2, -0.3, -0.4]  # total -1.0
        clips[(1, f"v{i}")] = [good, near_zero, negative]
    frame = _frame(clips)
    _, borders = summarize_profiles(frame, None, by_class=False, n_boot=300)
    row = borders.iloc[0]
    # per-clip shares explode (a near-zero clip's shares are in the hundreds) and so does the
    # per-clip B: negative, its interval across 0
    assert frame["share"].abs().max() > 100
    assert row["border_score"] < 0 and row["border_ci_low"] < 0 < row["border_ci_high"]
    p = _pooled(clips)
    assert row["pooled_border_score"] == pytest.approx(_b(p), rel=1e-12)
    assert 1 < row["pooled_border_score"] < 3
    assert row["pooled_border_ci_low"] <= row["pooled_border_score"]
    assert row["pooled_border_score"] <= row["pooled_border_ci_high"]
    assert row["pooled_border_ci_high"] - row["pooled_border_ci_low"] < 1


def test_bootstrap_resamples_videos_not_clips():
    rng = np.random.default_rng(0)
    one = {(1, f"v{i}"): [list(rng.uniform(0.5, 2.0, 4))] for i in range(6)}
    doubled = {k: v * 2 for k, v in one.items()}  # each video's clip twice
    as_videos = {**one, **{(1, f"{k[1]}_copy"): v for k, v in one.items()}}
    rows = [summarize_profiles(_frame(c), None, by_class=False, n_boot=500)[1].iloc[0]
            for c in (one, doubled, as_videos)]
    width = [r["pooled_border_ci_high"] - r["pooled_border_ci_low"] for r in rows]
    # a video's clips move together: twice the clips per video, the same interval
    assert rows[1]["pooled_border_score"] == pytest.approx(rows[0]["pooled_border_score"])
    assert rows[1]["pooled_border_ci_low"] == pytest.approx(rows[0]["pooled_border_ci_low"])
    assert rows[1]["pooled_border_ci_high"] == pytest.approx(rows[0]["pooled_border_ci_high"])
    # the same clips as twice the videos: a narrower interval
    assert width[2] < 0.9 * width[0]


def test_video_counts_match_the_bootstrap_indices():
    counts = video_counts(5, 40, seed=2)
    idx = bootstrap_indices(5, 40, 2)
    np.testing.assert_array_equal(counts, [np.bincount(i, minlength=5) for i in idx])


def test_nan_when_the_pooled_total_is_not_clear_of_zero(caplog):
    trained = np.array([[1.0, 0.5, 0.5, 1.0], [-1.0, -0.5, -0.5, -1.0],
                        [1.2, 0.5, 0.5, 1.0], [-1.0, -0.6, -0.5, -1.0]])
    values, notes = pooled_border(trained, None, n_boot=200)
    assert np.isnan([values[c] for c in POOLED_COLUMNS]).all()
    assert notes and "pooled total" in notes[0]
    # the same through the table: NaN and a log line saying why
    clips = {(1, f"v{i}"): [list(r)] for i, r in enumerate(trained)}
    with caplog.at_level(logging.WARNING, logger="kvlrp.analysis.measures.pooled"):
        _, borders = summarize_profiles(_frame(clips), None, by_class=False, n_boot=200)
    assert np.isnan(borders.iloc[0]["pooled_border_score"])
    assert borders.attrs["pooled_notes"][(1, "all")] == notes
    assert "pooled total" in caplog.text


def test_nan_relative_when_a_prior_pooled_share_is_not_clear_of_zero():
    trained = np.array([[2.0, 1.0, 1.0, 2.0], [3.0, 1.0, 1.0, 2.0], [2.0, 1.5, 1.0, 2.0]])
    # position 1 of the prior: +1, -1, +0.2: its pooled share's interval straddles 0
    prior = np.array([[[1.0, 1.0, 2.0, 1.0], [1.0, -1.0, 2.0, 1.0], [1.0, 0.2, 2.0, 1.0]]])
    values, notes = pooled_border(trained, prior, n_boot=300)
    assert np.isfinite(values["pooled_border_score"])
    assert np.isnan(values["pooled_relative_border_score"])
    assert np.isnan(values["pooled_relative_border_ci_low"])
    assert any("position(s) [1]" in n for n in notes)
    # a prior seed whose total straddles 0 is left out; the others still give q
    bad_seed = np.array([[[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.2],
                          [0.5, 0.0, 0.0, 0.5]]])
    good_seed = np.array([[[1.0, 2.0, 2.0, 1.0], [1.0, 2.0, 2.0, 1.0], [1.0, 3.0, 2.0, 1.0]]])
    values, notes = pooled_border(trained, np.concatenate([good_seed, bad_seed]), n_boot=300)
    p = trained.sum(0) / trained.sum()
    q = good_seed[0].sum(0) / good_seed[0].sum()
    assert values["pooled_relative_border_score"] == pytest.approx(_b(p / q), rel=1e-12)
    assert notes == ["1 prior seed(s) left out: pooled total not clear of 0"]


def test_paired_change_uses_the_same_videos():
    step2 = {(2, v): c for (_, v), c in TRAINED.items()}
    prior2 = {(2, v): c for (_, v), c in PRIOR0.items()}
    frame = pd.concat([_frame(TRAINED), _frame(step2)], ignore_index=True)
    prior = pd.concat([_frame(PRIOR0, seed=0), _frame(prior2, seed=0)], ignore_index=True)
    table = border_changes(frame, prior, reference_step=1, n_boot=200)
    assert list(table.columns[-3:]) == POOLED_CHANGE_COLUMNS
    row = table.iloc[0]
    # identical steps: no change, and a zero-width interval (same videos for both steps)
    assert row["pooled_relative_border_change"] == 0.0
    assert row["pooled_relative_border_change_ci_low"] == 0.0
    assert row["pooled_relative_border_change_ci_high"] == 0.0


def test_paired_change_matches_a_hand_bootstrap():
    step2 = {(2, "a"): [[5.0, 1.0, 1.0, 4.0]], (2, "b"): [[3.0, 1.0, 1.0, 3.0]],
             (2, "c"): [[2.0, 1.0, 1.0, 2.0], [2.0, 1.0, 2.0, 2.0]],
             (2, "only_at_2"): [[9.0, 1.0, 1.0, 9.0]]}
    # the prior explained clip 1 of "a" at step 2 too, but the trained model's clip 1 is not
    # in the table (say its total was 0): the prior is pooled over the same clips only
    prior2 = {(2, "a"): [[1.0, 2.0, 2.0, 1.0], [50.0, 1.0, 1.0, 50.0]],
              (2, "b"): [[1.0, 2.0, 1.0, 1.0]],
              (2, "c"): [[2.0, 3.0, 3.0, 2.0], [1.0, 1.0, 2.0, 1.0]]}
    frame = pd.concat([_frame(TRAINED), _frame(step2)], ignore_index=True)
    prior = pd.concat([_frame(PRIOR0, seed=0), _frame(prior2, seed=0)], ignore_index=True)
    row = border_changes(frame, prior, reference_step=1, n_boot=300, seed=4).iloc[0]
    assert row["n_videos"] == 3
    sums = {s: {v: np.sum(c[(s, v)], axis=0) for v in "abc"} for s, c in ((1, TRAINED),
                                                                           (2, step2))}
    psums = {1: {v: np.sum(PRIOR0[(1, v)], axis=0) for v in "abc"},
             2: {v: np.sum(prior2[(2, v)][:len(step2[(2, v)])], axis=0) for v in "abc"}}

    def rel(step: int, vids: list[str]) -> float:
        p = np.sum([sums[step][v] for v in vids], axis=0)
        q = np.sum([psums[step][v] for v in vids], axis=0)
        return _b((p / p.sum()) / (q / q.sum()))

    assert row["pooled_relative_border_change"] == pytest.approx(
        rel(2, list("abc")) - rel(1, list("abc")), rel=1e-12)
    boot = [rel(2, ["abc"[i] for i in d]) - rel(1, ["abc"[i] for i in d])
            for d in bootstrap_indices(3, 300, 4)]
    low, high = percentile_interval(np.array(boot))
    assert row["pooled_relative_border_change_ci_low"] == pytest.approx(low)
    assert row["pooled_relative_border_change_ci_high"] == pytest.approx(high)


def test_without_relevance_columns_the_pooled_columns_are_nan():
    frame = _frame(TRAINED).drop(columns="relevance")
    _, borders = summarize_profiles(frame, None, by_class=False, n_boot=50)
    assert borders[POOLED_COLUMNS].isna().all(axis=None)


def test_pooled_profiles_by_hand():
    """The shares a report plots behind the pooled scores: sums over the step's clips over the
    total; the prior's per seed over the same clips (a clip the model did not keep is left
    out), then averaged over the seeds."""
    def rows(values, step=1, seed=None, video="v0", clip=0):
        out = pd.DataFrame({"step": step, "video_id": video, "clip_index": clip,
                            "position": np.arange(len(values)), "relevance": values})
        return out if seed is None else out.assign(seed=seed)

    frame = pd.concat([rows([1.0, -2.0, 5.0]), rows([3.0, 2.0, -1.0], clip=1),
                       rows([9.0, 9.0, 9.0], step=4)])
    prior = pd.concat([rows([1.0, 1.0, 2.0], seed=7), rows([1.0, 1.0, 0.0], seed=7, clip=1),
                       rows([0.0, 3.0, 1.0], seed=8), rows([5.0, 5.0, 5.0], seed=8, clip=2)])
    p, q = pooled_profiles(frame, prior, 1)
    np.testing.assert_allclose(p, np.array([4.0, 0.0, 4.0]) / 8.0)
    np.testing.assert_allclose(q, (np.array([2.0, 2.0, 2.0]) / 6 + np.array([0.0, 3.0, 1.0]) / 4)
                               / 2)
    assert pooled_profiles(frame, None, 1)[1] is None
