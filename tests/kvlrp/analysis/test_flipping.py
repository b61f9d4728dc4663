"""Frame flipping: freeze fill, insertion curves and the paired AUC table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kvlrp.analysis.measures.flipping import (
    AUC_COLUMNS,
    auc_table,
    fill_removed,
    flipped_variants,
    frame_flipping_table,
)


def _ramp_clip(length: int = 4) -> np.ndarray:
    return np.arange(length, dtype=np.float32)[:, None, None, None] * np.ones((length, 2, 2, 1))


def test_freeze_fill_by_hand():
    clip = _ramp_clip(5)
    frames = lambda removed: fill_removed(clip, np.array(removed, bool), "freeze")[:, 0, 0, 0]  # noqa: E731
    np.testing.assert_array_equal(frames([0, 1, 0, 1, 1]), [0, 0, 2, 2, 2])
    np.testing.assert_array_equal(frames([1, 1, 0, 0, 1]), [2, 2, 2, 3, 3])  # leading: first kept
    np.testing.assert_array_equal(frames([1, 1, 1, 1, 1]), [0, 0, 0, 0, 0])  # a still
    np.testing.assert_array_equal(frames([0, 0, 0, 0, 0]), [0, 1, 2, 3, 4])
    assert clip[1, 0, 0, 0] == 1  # the input is not modified


def test_insertion_variants_restore_in_order():
    clip = _ramp_clip(3) + 1  # frames 1, 2, 3
    v = flipped_variants(clip, np.array([2, 0, 1]), fill="zero", curve="insertion")
    np.testing.assert_array_equal(v[:, :, 0, 0, 0],
                                  [[0, 0, 0], [0, 0, 3], [1, 0, 3], [1, 2, 3]])
    d = flipped_variants(clip, np.array([2, 0, 1]), fill="freeze", curve="deletion")
    np.testing.assert_array_equal(d[:, :, 0, 0, 0],
                                  [[1, 2, 3], [1, 2, 2], [2, 2, 2], [1, 1, 1]])
    with pytest.raises(ValueError, match="curve must be one of"):
        flipped_variants(clip, np.array([0, 1, 2]), curve="both")


def _motion_model():
    """Softmax over [score, -score] where score is the sum of |frame differences|: the class-0
    probability depends only on motion, not on appearance."""
    import keras

    inputs = keras.Input((4, 3, 3, 1))
    diff = keras.layers.Lambda(
        lambda x: keras.ops.sum(keras.ops.abs(x[:, 1:] - x[:, :-1]), axis=(1, 2, 3, 4)))(inputs)
    logits = keras.layers.Lambda(lambda d: keras.ops.stack([d, -d], axis=1))(diff)
    return keras.Model(inputs, keras.layers.Softmax()(logits))


def test_freeze_removes_motion_and_auc_table_ranks_orderings():
    model = _motion_model()
    rng = np.random.default_rng(0)
    clips = np.zeros((6, 4, 3, 3, 1), np.float32)
    clips[:, 2] = rng.uniform(0.5, 1.0, (6, 3, 3, 1))  # motion only into and out of frame 2
    targets = np.zeros(6, int)
    good = np.tile([0.0, 0.0, 1.0, 0.0], (6, 1))      # frame 2 first
    bad = np.tile([1.0, 0.5, 0.0, 0.25], (6, 1))       # frame 2 last
    curves, per_clip = frame_flipping_table(
        model, clips, targets, {"good": good, "random": bad, "gradient_abs": good}, step=1,
        fill="freeze")
    assert set(curves["curve"]) == {"deletion", "insertion"}
    # all frames removed under freeze: a still clip, probability 0.5 for every ordering
    end = curves[curves["n_flipped"] == 4]
    np.testing.assert_allclose(end[end["curve"] == "deletion"]["mean_score"], 0.5, atol=1e-6)
    start = curves[(curves["n_flipped"] == 0) & (curves["curve"] == "insertion")]
    np.testing.assert_allclose(start["mean_score"], 0.5, atol=1e-6)
    table = auc_table(per_clip, n_boot=200)
    assert list(table.columns) == AUC_COLUMNS
    t = table.set_index(["curve", "method"])
    assert t.loc[("deletion", "good"), "auc"] < t.loc[("deletion", "random"), "auc"]
    assert t.loc[("insertion", "good"), "auc"] > t.loc[("insertion", "random"), "auc"]
    assert t.loc[("deletion", "good"), "rank"] == 1 and t.loc[("insertion", "good"), "rank"] == 1
    assert t.loc[("deletion", "random"), "rank"] == 3
    d = t.loc[("deletion", "good")]
    assert d["diff_vs_random"] < 0 and d["diff_vs_random_ci_high"] < 0
    assert d["diff_vs_gradient_abs"] == pytest.approx(0.0)
    assert np.isnan(t.loc[("deletion", "random"), "diff_vs_random"])


def test_paired_auc_difference_by_hand():
    rows = []
    areas = {"a": [[1.0, 0.0], [1.0, 1.0]], "random": [[1.0, 1.0], [1.0, 1.0]]}
    for method, curves in areas.items():
        for clip, curve in enumerate(curves):
            rows += [{"method": method, "curve": "deletion", "step": 1, "clip": clip,
                      "n_flipped": k, "score": s} for k, s in enumerate(curve)]
    table = auc_table(pd.DataFrame(rows), n_boot=500).set_index("method")
    # areas: a = [0.5, 1.0] (mean 0.75), random = [1, 1]; paired differences [-0.5, 0]
    assert table.loc["a", "auc"] == pytest.approx(0.75)
    assert table.loc["a", "diff_vs_random"] == pytest.approx(-0.25)
    assert table.loc["a", "diff_vs_random_ci_low"] == pytest.approx(-0.5)
    assert table.loc["a", "diff_vs_random_ci_high"] == pytest.approx(0.0)
