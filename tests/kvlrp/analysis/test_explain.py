"""Frame relevance, prior, frame flipping and heatmaps on a tiny Keras Conv3D model, with
custom analyzer objects (anything with ``analyze(x, neuron_selection)`` plugs in)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kvlrp.analysis.explain.frames import explain_frames, reinitialised_clone
from kvlrp.analysis.explain.heatmaps import heatmap_gif, heatmap_strip, overlay, to_display
from kvlrp.analysis.measures.flipping import (
    curve_auc,
    flip_order,
    flipped_variants,
    frame_flipping_table,
)

L, S, C, K = 5, 8, 3, 3


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((L, S, S, C))
    x = keras.layers.Conv3D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling3D()(x)
    outputs = keras.layers.Dense(K, activation="softmax")(x)
    return keras.Model(inputs, outputs)


class RampAnalyzer:
    """Relevance (t + 1) at every voxel of frame t; zero for clips whose first voxel is > 0.9.
    Records the neuron selections it was asked for."""

    def __init__(self):
        self.selections = []

    def analyze(self, x, neuron_selection="max_activation"):
        self.selections.append(np.array(neuron_selection))
        r = np.ones_like(x) * np.arange(1, x.shape[1] + 1)[None, :, None, None, None]
        r[x[:, 0, 0, 0, 0] > 0.9] = 0.0
        return r


def _batches(n_videos=3, clips_per_video=2, seed=0):
    rng = np.random.default_rng(seed)
    batches = []
    for v in range(n_videos):
        clips = rng.uniform(-1, 0.5, (clips_per_video, L, S, S, C)).astype(np.float32)
        if v == 2:
            clips[1, 0, 0, 0, 0] = 0.95  # RampAnalyzer gives this clip zero relevance
        batches.append({"clip": clips, "label": np.full(clips_per_video, v % K),
                        "video_id": np.array([f"vid{v}".encode()] * clips_per_video),
                        "clip_start": np.arange(clips_per_video) * 3})
    return batches


def test_explain_frames_shares_exclusions_and_selection(tiny_model):
    analyzer = RampAnalyzer()
    result = explain_frames(tiny_model, _batches(), analyzer, step=2, class_names=["a", "b", "c"],
                            analyzer_name="ramp", keep=2)
    frame = result.frame
    assert result.n_clips == 6
    assert len(frame) == 5 * L  # one clip excluded
    assert list(result.excluded[["video_id", "clip_index"]].iloc[0]) == ["vid2", 1]
    ramp = np.arange(1, L + 1)
    first = frame[(frame["video_id"] == "vid0") & (frame["clip_index"] == 0)]
    np.testing.assert_allclose(first["share"], ramp / ramp.sum())
    np.testing.assert_allclose(first["relevance"], ramp * S * S * C)
    assert set(frame["step"]) == {2} and set(frame["analyzer"]) == {"ramp"}
    assert frame["share"].notna().all()
    assert sorted(frame["clip_start"].unique()) == [0, 3]
    # explained the predicted class
    probs = np.asarray(tiny_model(_batches()[0]["clip"]))
    np.testing.assert_array_equal(analyzer.selections[0], probs.argmax(1))
    assert set(frame["predicted"]) <= {"a", "b", "c"}
    assert len(result.kept) == 2 and result.kept[0]["relevance"].shape == (L, S, S, C)


def test_explain_frames_true_label_and_prior(tiny_model):
    analyzer, prior = RampAnalyzer(), RampAnalyzer()
    result = explain_frames(tiny_model, _batches(), analyzer, step=1, target="label",
                            prior_analyzers={7: prior})
    np.testing.assert_array_equal(analyzer.selections[1], [1, 1])  # video 1 has label 1
    assert prior.selections[0] == "max_activation"
    assert set(result.prior["seed"]) == {7} and len(result.prior) == 5 * L
    assert set(result.excluded["model"]) == {"trained", "prior seed 7"}
    with pytest.raises(ValueError, match="target must be one of"):
        explain_frames(tiny_model, _batches(), analyzer, step=1, target="truth")


def test_explain_frames_rejects_wrong_relevance_shape(tiny_model):
    class Bad:
        def analyze(self, x, neuron_selection=None):
            return x[:, 0]

    with pytest.raises(ValueError, match="expected the input's shape"):
        explain_frames(tiny_model, _batches(), Bad(), step=1)


def test_reinitialised_clone_has_fresh_seeded_weights(tiny_model):
    a, b, c = (reinitialised_clone(tiny_model, s) for s in (1, 1, 2))
    k0 = tiny_model.layers[1].get_weights()[0]
    ka, kb, kc = (m.layers[1].get_weights()[0] for m in (a, b, c))
    assert ka.shape == k0.shape and not np.allclose(ka, k0)
    np.testing.assert_array_equal(ka, kb)
    assert not np.allclose(ka, kc)


def test_flipping_variants_order_and_auc_by_hand():
    clip = np.arange(3, dtype=np.float32)[:, None, None, None] * np.ones((3, 2, 2, 1))
    v = flipped_variants(clip, np.array([2, 0, 1]), fill="mean")
    assert v.shape == (4, 3, 2, 2, 1)
    np.testing.assert_allclose(v[:, :, 0, 0, 0], [[0, 1, 2], [0, 1, 1], [1, 1, 1], [1, 1, 1]])
    np.testing.assert_array_equal(flip_order(np.array([[0.1, 0.5, 0.2]])), [[1, 2, 0]])
    assert curve_auc(np.array([1.0, 0.5, 0.0])) == pytest.approx(0.5)
    assert curve_auc(np.array([1.0, 0.0, 0.0])) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="fill must be one of"):
        flipped_variants(clip, np.array([0, 1, 2]), fill="blur")


def test_frame_flipping_table_on_model(tiny_model):
    clips = np.concatenate([b["clip"] for b in _batches()])
    targets = np.asarray(tiny_model(clips)).argmax(1)
    scores = np.tile(np.arange(L, dtype=float), (len(clips), 1))
    curves, per_clip = frame_flipping_table(tiny_model, clips, targets,
                                            {"ramp": scores, "flat": -scores}, step=1,
                                            curves=("deletion",))
    assert set(curves["method"]) == {"ramp", "flat"}
    assert len(curves) == 2 * (L + 1) and len(per_clip) == 2 * len(clips) * (L + 1)
    start = curves[curves["n_flipped"] == 0]["mean_score"].to_numpy()
    probs = np.asarray(tiny_model(clips))[np.arange(len(clips)), targets]
    np.testing.assert_allclose(start, probs.mean(), rtol=1e-5)
    # all frames replaced -> every clip is its mean frame repeated, whatever the order
    end = curves[curves["n_flipped"] == L]["mean_score"].to_numpy()
    assert end[0] == pytest.approx(end[1], rel=1e-5)


def test_heatmap_overlay_and_files(tmp_path):
    rng = np.random.default_rng(0)
    clip = rng.uniform(-1, 1, (L, S, S, C)).astype(np.float32)
    rel = np.zeros_like(clip)
    rel[0, :4] = 1.0
    rel[L - 1, 4:] = -1.0
    frames = to_display(clip)
    assert frames.dtype == np.uint8 and frames.shape == (L, S, S, 3)
    img = overlay(frames, rel).astype(int)
    assert img[0, 0, 0, 0] > img[0, 0, 0, 2]  # positive -> red dominates
    assert img[L - 1, 7, 0, 2] > img[L - 1, 7, 0, 0]  # negative -> blue dominates
    grey = frames[1].astype(float).mean(-1)
    np.testing.assert_allclose(img[1, ..., 0], np.round(grey), atol=1)  # zero -> the frame
    png = heatmap_strip(clip, rel, tmp_path / "s.png", shares=np.full(L, 0.2), title="x")
    gif = heatmap_gif(clip, rel, tmp_path / "s.gif")
    with Image.open(png) as im:
        assert im.size[0] > L * 96 and im.size[1] > 2 * 96
    with Image.open(gif) as im:
        assert im.n_frames == L
