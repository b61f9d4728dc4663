"""Paired tests (exact McNemar, paired bootstrap) and the choice of the step on val, reported
on test: hand-computed values, real prediction tables, one run on the synthetic shards."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kvlrp.analysis.measures.accuracy import STRIDE_COLUMNS, video_predictions
from kvlrp.analysis.measures.bootstrap import bootstrap_indices
from kvlrp.analysis.measures.paired import discordant_counts, mcnemar_exact, paired_difference
from kvlrp.analysis.measures.selection import (
    PAIRED_COLUMNS,
    SELECTION_KEYS,
    add_paired_columns,
    select_and_report,
)
from kvlrp.analysis.strides.run import run_strides


@pytest.mark.parametrize(("b", "c", "expected"), [
    (0, 0, 1.0),
    (0, 6, 2 / 64),            # 2 * C(6,0) / 2^6
    (1, 5, 2 * 7 / 64),        # 2 * (C(6,0) + C(6,1)) / 2^6
    (5, 1, 2 * 7 / 64),        # symmetric
    (3, 3, 1.0),               # 2 * 42/64 > 1, capped
    (2, 8, 2 * 56 / 1024),     # 2 * (1 + 10 + 45) / 2^10
])
def test_mcnemar_exact_by_hand(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_rejects_negative_counts():
    with pytest.raises(ValueError, match=">= 0"):
        mcnemar_exact(-1, 2)


def test_discordant_counts_and_paired_bootstrap_by_hand():
    first = np.array([1, 1, 0, 0, 1, 0], dtype=bool)
    second = np.array([1, 0, 1, 1, 1, 0], dtype=bool)
    assert discordant_counts(first, second) == (1, 2)
    diff, low, high = paired_difference(first, second, n_boot=200, seed=3)
    assert diff == pytest.approx(1 / 6)
    # the same resamples by hand: mean of (second - first) over each resample's videos
    d = second.astype(float) - first.astype(float)
    boot = np.array([d[i].mean() for i in bootstrap_indices(6, 200, 3)])
    assert low == pytest.approx(np.percentile(boot, 2.5))
    assert high == pytest.approx(np.percentile(boot, 97.5))


def test_paired_interval_is_zero_width_for_a_constant_difference():
    # every video gains the same: the paired interval is a point, the unpaired ones overlap
    first = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    diff, low, high = paired_difference(first, first + 0.5, n_boot=100)
    assert diff == low == high == pytest.approx(0.5)


def test_paired_difference_needs_aligned_samples():
    with pytest.raises(ValueError, match="equal length"):
        paired_difference(np.zeros(3), np.zeros(4))


def _clip_table(correct_by_step: dict[int, list[int]], prefix: str) -> pd.DataFrame:
    """A clip_predictions table (2 clips per video, 2 classes, true class 0): a video is right
    at a step when its clips put more probability on class 0."""
    rows = []
    for step, flags in correct_by_step.items():
        for v, ok in enumerate(flags):
            for clip in range(2):
                p0 = 0.7 if ok else 0.3
                rows.append({"step": step, "control": "none", "video_id": f"{prefix}{v}",
                             "label_index": 0, "clip_index": clip, "clip_start": clip,
                             "is_short": False, "prob_0": p0, "prob_1": 1 - p0})
    return pd.DataFrame(rows)


# val optimum: step 2; test optimum: step 4.
VAL = {1: [1, 1, 0, 0], 2: [1, 1, 1, 0], 4: [1, 0, 0, 0]}
TEST = {1: [1, 1, 1, 0, 0, 0], 2: [1, 1, 1, 1, 0, 0], 4: [1, 1, 1, 1, 1, 1]}


def test_val_choice_is_reported_on_test_when_the_optima_differ():
    val = video_predictions(_clip_table(VAL, "v"))
    test = video_predictions(_clip_table(TEST, "t"))
    s = select_and_report(val, test, train_step=1, selected_on="val", reported_split="test",
                          n_boot=200)
    assert set(SELECTION_KEYS) <= set(s)
    assert s["selected_step"] == 2 and s["selected_on"] == "val"  # not test's optimum 4
    assert s["selection_accuracy"] == pytest.approx(0.75)
    assert s["test_accuracy_train_step"] == pytest.approx(3 / 6)
    assert s["test_accuracy_selected_step"] == pytest.approx(4 / 6)
    assert s["test_gain"] == pytest.approx(1 / 6)
    assert (s["n_gained"], s["n_lost"], s["n_paired_videos"]) == (1, 0, 6)
    assert s["mcnemar_p"] == pytest.approx(1.0)  # one discordant video: 2 * 1/2
    assert s["test_gain_ci_low"] <= s["test_gain"] <= s["test_gain_ci_high"]
    assert s["test_gain_ci_low"] >= 0  # no video lost: no resample can be negative
    assert not s["gain_optimistic"] and "held out" in s["selection_note"]


def test_choice_on_the_reported_split_is_marked_optimistic():
    test = video_predictions(_clip_table(TEST, "t"))
    s = select_and_report(test, test, train_step=1, selected_on="test", reported_split="test",
                          n_boot=200)
    assert s["selected_step"] == 4 and s["test_gain"] == pytest.approx(0.5)
    assert s["mcnemar_p"] == pytest.approx(2 / 8)  # 3 gained, 0 lost
    assert s["gain_optimistic"] and "optimistic" in s["selection_note"]


def test_val_ties_follow_the_tie_rule():
    tied = video_predictions(_clip_table({1: [1, 0], 2: [0, 1], 4: [0, 0]}, "v"))
    test = video_predictions(_clip_table(TEST, "t"))
    assert select_and_report(tied, test, 1, "val", "test")["selected_step"] == 1  # train step
    tied = video_predictions(_clip_table({1: [0, 0], 2: [0, 1], 4: [1, 0]}, "v"))
    s = select_and_report(tied, test, 1, "val", "test")
    assert s["selected_step"] == 2 and s["selection_tied_steps"] == [2, 4]  # smallest tied


def test_missing_training_step_gives_no_gain():
    val = video_predictions(_clip_table(VAL, "v"))
    test = video_predictions(_clip_table({2: TEST[2], 4: TEST[4]}, "t"))
    s = select_and_report(val, test, 1, "val", "test")
    assert s["test_gain"] is None and "not evaluated" in s["selection_note"]


def test_paired_columns_of_the_stride_table():
    from kvlrp.analysis.measures.accuracy import stride_table

    clips = _clip_table(TEST, "t")
    table = add_paired_columns(stride_table(clips, 8, n_boot=50), video_predictions(clips), 1,
                               n_boot=50)
    assert list(table.columns) == STRIDE_COLUMNS + PAIRED_COLUMNS
    assert list(table["diff_vs_train_step"]) == pytest.approx([0.0, 1 / 6, 0.5])
    assert list(table["mcnemar_p"]) == pytest.approx([1.0, 1.0, 0.25])


def test_run_strides_selects_on_val_and_reports_on_test(small_model, synthetic_shards,
                                                        tmp_path):
    model, info = small_model
    summary = run_strides(model, info, synthetic_shards, tmp_path, steps=[1, 2, 3],
                          split="test", clips_per_video=1, n_boot=50, progress=False)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert set(SELECTION_KEYS) <= set(saved) and saved["selected_on"] == "val"
    val = pd.read_csv(tmp_path / "stride_accuracy_val.csv")
    test = pd.read_csv(tmp_path / "stride_accuracy.csv")
    best_val = val["video_accuracy"].max()
    tied = sorted(val.loc[val["video_accuracy"] == best_val, "step"])
    assert saved["selected_step"] == (1 if 1 in tied else tied[0])
    acc = dict(zip(test.loc[test["control"] == "none", "step"],
                   test.loc[test["control"] == "none", "video_accuracy"]))
    assert saved["test_accuracy_selected_step"] == pytest.approx(acc[saved["selected_step"]])
    assert saved["test_accuracy_train_step"] == pytest.approx(acc[1])
    assert saved["test_gain"] == pytest.approx(acc[saved["selected_step"]] - acc[1])
    row = test[(test["step"] == saved["selected_step"]) & (test["control"] == "none")].iloc[0]
    assert row["diff_vs_train_step"] == pytest.approx(saved["test_gain"])
    assert row["mcnemar_p"] == pytest.approx(saved["mcnemar_p"])
    assert summary["gain_optimistic"] is False
    same = run_strides(model, info, synthetic_shards, tmp_path / "same", steps=[1, 2, 3],
                       split="test", clips_per_video=1, n_boot=50, progress=False,
                       select_on="test")
    assert same["selected_on"] == "test" and same["gain_optimistic"] is True
    with pytest.raises(ValueError, match="no videos in split 'holdout'"):
        run_strides(model, info, synthetic_shards, tmp_path / "bad", steps=[1], split="test",
                    progress=False, select_on="holdout")
