"""Report builders checked against hand-computed tables (numpy/pandas only, no model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kvlrp.analysis.measures.accuracy import best_step, stride_table, video_predictions
from kvlrp.analysis.measures.bootstrap import bootstrap_indices, percentile_interval
from kvlrp.analysis.measures.profiles import relative_profile, summarize_group, summarize_profiles
from kvlrp.analysis.measures.shares import border_score, clip_shares, frame_relevance


def test_frame_relevance_sums_space_and_channels():
    r = np.zeros((2, 3, 2, 2, 1))
    r[0, 1] = 1.0  # 4 voxels of 1 in frame 1
    r[1, 2, 0, 0, 0] = -2.0
    np.testing.assert_allclose(frame_relevance(r), [[0, 4, 0], [0, 0, -2]])
    np.testing.assert_allclose(frame_relevance(r[0]), [0, 4, 0])
    with pytest.raises(ValueError, match="frames, H, W, C"):
        frame_relevance(np.zeros((3, 3)))


def test_clip_shares_by_hand_and_zero_total_excluded():
    rel = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [2.0, -1.0, 1.0], [1.0, np.nan, 0.0]])
    shares, valid = clip_shares(rel)
    np.testing.assert_array_equal(valid, [True, False, True, False])
    np.testing.assert_allclose(shares[0], [0.25, 0.5, 0.25])
    np.testing.assert_allclose(shares[2], [1.0, -0.5, 0.5])
    assert not np.isnan(shares).any()
    np.testing.assert_array_equal(shares[1], 0.0)


def test_border_score_by_hand():
    assert border_score([0.3, 0.1, 0.1, 0.1, 0.4]) == pytest.approx(0.35 / 0.1)
    assert border_score([0.1, 0.4, 0.4, 0.1]) == pytest.approx(0.25)
    np.testing.assert_allclose(border_score(np.array([[1, 1, 1], [2, 1, 2]])), [1.0, 2.0])
    assert border_score([1.0, 0.0, 1.0]) == np.inf
    with pytest.raises(ValueError, match="at least 3"):
        border_score([0.5, 0.5])


def test_bootstrap_indices_are_seeded_and_in_range():
    a = bootstrap_indices(5, 200, seed=3)
    np.testing.assert_array_equal(a, bootstrap_indices(5, 200, seed=3))
    assert a.shape == (200, 5) and a.min() >= 0 and a.max() <= 4
    assert not np.array_equal(a, bootstrap_indices(5, 200, seed=4))
    with pytest.raises(ValueError, match="at least one sample"):
        bootstrap_indices(0)


def test_percentile_interval_by_hand():
    stats = np.arange(101, dtype=float)  # percentiles of 0..100 are the values themselves
    assert percentile_interval(stats, 0.95) == pytest.approx((2.5, 97.5))
    assert percentile_interval(stats, 0.5) == pytest.approx((25.0, 75.0))
    two = np.stack([stats, 2 * stats], axis=1)
    low, high = percentile_interval(two, 0.9)
    np.testing.assert_allclose(low, [5, 10])
    np.testing.assert_allclose(high, [95, 190])
    # non-finite resample statistics are ignored
    assert percentile_interval(np.array([1.0, np.inf, 3.0, np.nan]), 0.5) == pytest.approx(
        (1.5, 2.5))


def test_summarize_group_means_and_interval_by_hand():
    shares = np.array([[0.4, 0.2, 0.4], [0.2, 0.6, 0.2]])
    table, border = summarize_group(shares, n_boot=500, seed=0)
    np.testing.assert_allclose(table["mean_share"], [0.3, 0.4, 0.3])
    np.testing.assert_allclose(table["std_share"], np.std(shares, axis=0, ddof=1))
    # resamples of 2 clips: means are clip0, clip1 or their average -> interval spans [0.2, 0.4]
    np.testing.assert_allclose(table["ci_low"], [0.2, 0.2, 0.2])
    np.testing.assert_allclose(table["ci_high"], [0.4, 0.6, 0.4])
    assert border["border_score"] == pytest.approx(0.3 / 0.4)
    assert border["border_ci_low"] == pytest.approx(0.2 / 0.6)
    assert border["border_ci_high"] == pytest.approx(0.4 / 0.2)
    assert (table["n_clips"] == 2).all()
    assert table["prior_share"].isna().all()


def test_identical_clips_give_a_point_interval():
    shares = np.tile([0.1, 0.3, 0.6], (4, 1))
    table, border = summarize_group(shares, n_boot=50)
    np.testing.assert_allclose(table["ci_low"], table["ci_high"])
    np.testing.assert_allclose(table["ci_low"], [0.1, 0.3, 0.6])
    assert border["border_ci_low"] == pytest.approx(border["border_ci_high"])


def test_relative_profile_normalised_to_mean_one():
    rel = relative_profile(np.array([0.2, 0.3, 0.5]), np.array([0.1, 0.3, 0.5]))
    ratio = np.array([2.0, 1.0, 1.0])
    np.testing.assert_allclose(rel, ratio / ratio.mean())
    np.testing.assert_allclose(relative_profile(np.array([0.2, 0.5, 0.3]),
                                                np.array([0.2, 0.5, 0.3])), 1.0)


def _long(step, video, clip, label, shares, seed=None):
    rows = [{"step": step, "video_id": video, "clip_index": clip, "label": label,
             "position": t, "share": s} for t, s in enumerate(shares)]
    if seed is not None:
        for r in rows:
            r["seed"] = seed
    return rows


def test_summarize_profiles_with_prior_per_class():
    frame = pd.DataFrame(
        _long(1, "a", 0, "x", [0.4, 0.2, 0.4]) + _long(1, "b", 0, "y", [0.2, 0.6, 0.2])
        + _long(2, "a", 0, "x", [1 / 3, 1 / 3, 1 / 3]))
    prior = pd.DataFrame(
        _long(1, "a", 0, "x", [0.2, 0.6, 0.2], seed=0) + _long(1, "a", 0, "x", [0.2, 0.6, 0.2],
                                                               seed=1)
        + _long(1, "b", 0, "y", [0.2, 0.6, 0.2], seed=0)  # seed 1 had zero relevance on b
        + _long(2, "a", 0, "x", [0.25, 0.5, 0.25], seed=0))
    summary, borders = summarize_profiles(frame, prior, n_boot=100)
    s1 = summary[(summary["step"] == 1) & (summary["class"] == "all")]
    np.testing.assert_allclose(s1["mean_share"], [0.3, 0.4, 0.3])
    np.testing.assert_allclose(s1["prior_share"], [0.2, 0.6, 0.2])
    ratio = np.array([1.5, 0.4 / 0.6, 1.5])
    np.testing.assert_allclose(s1["relative_share"], ratio / ratio.mean())
    assert set(summary["class"]) == {"all", "x", "y"}
    sx = summary[(summary["step"] == 1) & (summary["class"] == "x")]
    np.testing.assert_allclose(sx["mean_share"], [0.4, 0.2, 0.4])
    b = borders.set_index(["step", "class"])
    assert b.loc[(1, "all"), "border_score"] == pytest.approx(0.75)
    assert b.loc[(1, "all"), "prior_border_score"] == pytest.approx(0.2 / 0.6)
    assert b.loc[(1, "all"), "relative_border_score"] == pytest.approx(1.5 / (0.4 / 0.6))
    assert b.loc[(2, "all"), "border_score"] == pytest.approx(1.0)
    assert b.loc[(2, "all"), "relative_border_score"] == pytest.approx((4 / 3) / (2 / 3))
    assert b.loc[(2, "all"), "n_clips"] == 1


def _clips(rows):
    return pd.DataFrame(rows, columns=["step", "control", "video_id", "label_index",
                                       "clip_index", "clip_start", "is_short", "prob_0",
                                       "prob_1"])


def test_per_video_averaging_and_stride_table_by_hand():
    clips = _clips([
        # step 1: video a (label 0): clips 0.4/0.6 and 0.9/0.1 -> mean 0.65 -> correct,
        # clip accuracy 1/2; video b (label 1): 0.3/0.7 twice -> correct
        (1, "none", "a", 0, 0, 0, False, 0.4, 0.6),
        (1, "none", "a", 0, 1, 4, False, 0.9, 0.1),
        (1, "none", "b", 1, 0, 0, False, 0.3, 0.7),
        (1, "none", "b", 1, 1, 4, True, 0.3, 0.7),
        # step 2: video a wrong on both clips, b right
        (2, "none", "a", 0, 0, 0, True, 0.2, 0.8),
        (2, "none", "a", 0, 1, 2, True, 0.4, 0.6),
        (2, "none", "b", 1, 0, 0, False, 0.1, 0.9),
        (2, "none", "b", 1, 1, 2, False, 0.1, 0.9),
        (1, "shuffled", "a", 0, 0, 0, False, 0.5, 0.5),
        (1, "shuffled", "b", 1, 0, 0, False, 0.6, 0.4),
    ])
    videos = video_predictions(clips)
    va = videos[(videos["step"] == 1) & (videos["control"] == "none")
                & (videos["video_id"] == "a")].iloc[0]
    assert va["prob_0"] == pytest.approx(0.65) and va["predicted"] == 0 and va["correct"]
    assert va["confidence"] == pytest.approx(0.65) and va["n_clips"] == 2
    table = stride_table(clips, clip_len=8, n_boot=200)
    assert list(table["control"]) == ["none", "none", "shuffled"]
    r1, r2, sh = (table.iloc[i] for i in range(3))
    assert (r1["step"], r1["span_frames"], r2["span_frames"]) == (1, 8, 15)
    assert r1["clip_accuracy"] == pytest.approx(3 / 4) and r1["video_accuracy"] == 1.0
    assert r1["ci_low"] == 1.0 and r1["ci_high"] == 1.0
    assert r1["mean_confidence"] == pytest.approx((0.65 + 0.7) / 2)
    assert r1["n_short_clips"] == 1 and r2["n_short_clips"] == 2
    assert r2["clip_accuracy"] == pytest.approx(0.5) and r2["video_accuracy"] == 0.5
    assert r2["ci_low"] == 0.0 and r2["ci_high"] == 1.0  # two videos, one right
    # argmax of (0.5, 0.5) is class 0 -> video a right; b (0.6, 0.4) wrong
    assert sh["step"] == 1 and sh["video_accuracy"] == 0.5 and sh["n_clips"] == 2


def test_best_step_ties_and_gain():
    table = pd.DataFrame({"step": [1, 2, 3, 4, 1], "video_accuracy": [0.8, 0.9, 0.9, 0.7, 0.3],
                          "control": ["none"] * 4 + ["shuffled"]})
    best = best_step(table, train_step=1)
    assert best["best_step"] == 2 and best["tied_steps"] == [2, 3]
    assert best["gain"] == pytest.approx(0.1) and best["train_video_accuracy"] == 0.8
    assert best_step(table, train_step=3)["best_step"] == 3  # training step wins a tie
    assert best_step(table, train_step=5)["gain"] is None
