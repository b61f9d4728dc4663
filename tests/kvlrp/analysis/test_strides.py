"""Stride predictions: one decode per video for all steps, the shuffled control, and resuming
an interrupted run to the same table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kvlrp.analysis.measures.accuracy import stride_table
from kvlrp.analysis.strides.predictions import shuffle_permutation, stride_predictions
from kvlrp.data.clips.clip_sampling import clip_indices, eval_starts

L, S = 4, 6


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((L, S, S, 3))
    x = keras.layers.Conv3D(3, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling3D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def _videos(n=5):
    rng = np.random.default_rng(0)
    return [{"video_id": f"v{i}".encode(), "label": i % 2,
             "frames": rng.uniform(-1, 1, (10 + 3 * i, S, S, 3)).astype(np.float32)}
            for i in range(n)]


class Clips:
    """Numpy evaluation clips (2 per video) via the reference clip indexing; counts calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, frames, step):
        self.calls.append(step)
        n = len(frames)
        starts = eval_starts(n, L, step, 2)
        clips = [frames[clip_indices(n, s, L, step, "loop")] for s in starts]
        return {"clip": np.stack(clips), "clip_start": np.array(starts),
                "is_short": np.array([s + step * (L - 1) >= n for s in starts])}


def test_predictions_table_and_control(tiny_model):
    clips = Clips()
    table = stride_predictions(tiny_model, _videos(), clips, steps=[1, 3, 5], control_step=1)
    assert len(clips.calls) == 5 * 4  # every video: 3 steps + the control, decoded once
    assert set(zip(table["step"], table["control"])) == {
        (1, "none"), (3, "none"), (5, "none"), (1, "shuffled")}
    np.testing.assert_allclose(table[["prob_0", "prob_1"]].sum(axis=1), 1.0, rtol=1e-5)
    assert table.loc[table["step"] == 5, "is_short"].any()  # span 16 > 10 frames of video 0
    acc = stride_table(table, clip_len=L, n_boot=50)
    assert list(acc["control"]) == ["none"] * 3 + ["shuffled"]
    assert list(acc["n_videos"]) == [5] * 4 and list(acc["span_frames"][:3]) == [4, 10, 16]
    plain = table[(table["control"] == "none") & (table["step"] == 1)]
    shuffled = table[table["control"] == "shuffled"]
    assert not np.allclose(plain["prob_0"].to_numpy(), shuffled["prob_0"].to_numpy())


def test_interrupted_run_resumes_to_the_same_table(tiny_model, tmp_path):
    reference = stride_predictions(tiny_model, _videos(), Clips(), steps=[1, 2], control_step=1)

    def interrupt(n_seen, video_id):
        if n_seen == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stride_predictions(tiny_model, _videos(), Clips(), steps=[1, 2], control_step=1,
                           partial_dir=tmp_path, settings={"split": "test"}, checkpoint_every=2,
                           on_video=interrupt)
    saved = pd.read_csv(tmp_path / "none_step1.csv")
    assert sorted(saved["video_id"].unique()) == ["v0", "v1", "v2"]
    clips = Clips()
    resumed = stride_predictions(tiny_model, _videos(), clips, steps=[1, 2], control_step=1,
                                 partial_dir=tmp_path, settings={"split": "test"})
    assert len(clips.calls) == 2 * 3  # only videos v3, v4 were computed again
    pd.testing.assert_frame_equal(resumed, reference)
    # completed steps are reused; a new step is computed alone
    clips = Clips()
    more = stride_predictions(tiny_model, _videos(), clips, steps=[1, 2, 4], control_step=1,
                              partial_dir=tmp_path, settings={"split": "test"})
    assert clips.calls == [4] * 5
    pd.testing.assert_frame_equal(more[more["step"] != 4].reset_index(drop=True), reference)
    # other settings -> partial results are not reused
    clips = Clips()
    stride_predictions(tiny_model, _videos(), clips, steps=[1], partial_dir=tmp_path,
                       settings={"split": "val"})
    assert len(clips.calls) == 5


def test_shuffle_permutation_seeded_never_identity():
    perms = [shuffle_permutation(4, "v", i, seed=0) for i in range(50)]
    assert all(sorted(p) == [0, 1, 2, 3] and list(p) != [0, 1, 2, 3] for p in perms)
    np.testing.assert_array_equal(perms[3], shuffle_permutation(4, "v", 3, seed=0))
    assert any(not np.array_equal(perms[i], shuffle_permutation(4, "v", i, seed=1))
               for i in range(10))
