"""Frame-position relevance at intermediate layers: time-axis detection, the mapping of a
layer's temporal positions to input frames (by hand), conservation of each layer's total,
channels by frame, and where a Keras model's layer outputs sit in time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kvlrp.analysis.explain.layer_map import frame_centres, window_centres
from kvlrp.analysis.measures.layer_profiles import (
    CHANNEL_COLUMNS,
    LAYER_BORDER_COLUMNS,
    PROFILE_COLUMNS,
    cell_weights,
    channel_sum_rows,
    channel_table,
    channels_by_frame,
    compress,
    frames_of_layer,
    layer_rows,
    summarize_layers,
    time_axis,
    time_cells,
    top_border_channels,
)
from kvlrp.analysis.measures.pooled import POOLED_COLUMNS

# --- time axis and time cells ---


def test_time_axis_is_the_axis_along_which_centres_change():
    t = np.arange(4.0)
    assert time_axis(np.broadcast_to(t[:, None, None, None], (4, 3, 3, 2))) == 0
    assert time_axis(t.reshape(4, 1, 1, 1)) == 0
    assert time_axis(np.broadcast_to(t[None, :, None], (5, 4, 2))) == 1  # [tokens, T, C]
    assert time_axis(np.full((4, 1, 1, 1), 3.5)) is None  # one time cell
    assert time_axis(np.array([2.0])) is None
    assert compress(np.broadcast_to(t[:, None, None], (4, 3, 2))).shape == (4, 1, 1)


def test_time_cells_group_equal_centres_and_leave_out_positions_without_a_frame():
    cell, values = time_cells(np.array([[0.0, 0.0], [1.0, np.nan]]))
    np.testing.assert_array_equal(cell, [0, 0, 1, -1])
    np.testing.assert_array_equal(values, [0.0, 1.0])


# --- receptive-field mapping ---


def test_window_centres_by_hand():
    t = np.arange(8.0).reshape(8, 1)
    same = window_centres(t, 0, 8, kernel=3, stride=1, padding="same")
    np.testing.assert_allclose(same.ravel(), np.arange(8))
    valid = window_centres(t, 0, 6, kernel=3, stride=1, padding="valid")
    np.testing.assert_allclose(valid.ravel(), np.arange(1, 7))
    # stride 2, same: TensorFlow pads 1 frame, on the right: windows [0,2], [2,4], ...
    strided = window_centres(t, 0, 4, kernel=3, stride=2, padding="same")
    np.testing.assert_allclose(strided.ravel(), [1, 3, 5, 7])
    pooled = window_centres(t, 0, 4, kernel=2, stride=2, padding="valid")
    np.testing.assert_allclose(pooled.ravel(), [0.5, 2.5, 4.5, 6.5])
    even = window_centres(t, 0, 8, kernel=4, stride=1, padding="same")  # pads 1 left, 2 right
    np.testing.assert_allclose(even.ravel(), np.arange(8) + 0.5)
    causal = window_centres(t, 0, 8, kernel=3, stride=1, padding="causal")
    np.testing.assert_allclose(causal.ravel(), np.arange(8) - 1)
    dilated = window_centres(t, 0, 4, kernel=3, stride=1, padding="valid", dilation=2)
    np.testing.assert_allclose(dilated.ravel(), [2, 3, 4, 5])
    # a composition: pooled positions (0.5, 2.5, ...) through a valid 3-window
    np.testing.assert_allclose(window_centres(pooled, 0, 2, 3, 1, "valid").ravel(), [2.5, 4.5])


def test_cell_weights_by_hand():
    w = cell_weights(np.array([1.0, 3.0, 5.0, 7.0]), 8)
    # frame 0, 1 -> cell 0; frame 2 half-way between cells 0 and 1: half to each; ...
    np.testing.assert_allclose(w[0], [0.4, 0.4, 0.2, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(w[1], [0, 0, 0.25, 0.5, 0.25, 0, 0, 0])
    np.testing.assert_allclose(w[3], [0, 0, 0, 0, 0, 0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    # a cell no frame is nearest to (a padding position) goes to the frame nearest it
    pad = cell_weights(np.array([-1.0, 0.0, 1.0]), 2)
    np.testing.assert_allclose(pad, [[1, 0], [1, 0], [0, 1]])
    # one cell: spread evenly (no frame resolution)
    np.testing.assert_allclose(cell_weights(np.array([3.5]), 4), [[0.25] * 4])


def test_frames_of_layer_by_hand_and_conserving():
    centres = np.array([0.5, 2.5, 4.5, 6.5]).reshape(4, 1, 1, 1)
    r = np.zeros((1, 4, 2, 2, 3))
    r[0, :, 0, 0, 0] = [1, 2, 3, 4]
    frame, unmapped = frames_of_layer(r, centres, 8)
    np.testing.assert_allclose(frame[0], [0.5, 0.5, 1, 1, 1.5, 1.5, 2, 2])
    assert unmapped[0] == 0
    rng = np.random.default_rng(0)
    r = rng.normal(size=(3, 4, 2, 2, 3))
    frame, unmapped = frames_of_layer(r, centres, 8)
    np.testing.assert_allclose(frame.sum(axis=1), r.sum(axis=(1, 2, 3, 4)))
    # a token without a frame (NaN centre): reported apart, the total still kept
    tokens = np.array([np.nan, 0.0, 1.0, 2.0]).reshape(4, 1)
    r = rng.normal(size=(3, 4, 5))
    frame, unmapped = frames_of_layer(r, tokens, 3)
    np.testing.assert_allclose(unmapped, r[:, 0].sum(axis=1))
    np.testing.assert_allclose(frame.sum(axis=1) + unmapped, r.sum(axis=(1, 2)))
    with pytest.raises(ValueError, match="does not match"):
        frames_of_layer(np.ones((1, 5, 2)), np.arange(4.0).reshape(4, 1), 4)


def test_channels_by_frame_sums_to_the_frame_profile():
    rng = np.random.default_rng(1)
    centres = np.array([1.0, 3.0, 5.0, 7.0]).reshape(4, 1, 1, 1)
    r = rng.normal(size=(2, 4, 3, 3, 5))
    per = channels_by_frame(r, centres, 8)
    assert per.shape == (2, 5, 8)
    np.testing.assert_allclose(per.sum(axis=1), frames_of_layer(r, centres, 8)[0])
    np.testing.assert_allclose(per.sum(axis=2), r.sum(axis=(1, 2, 3)))
    simple = np.arange(6.0).reshape(1, 2, 3)  # [batch, T=2, C=3], frames 0 and 1
    np.testing.assert_allclose(channels_by_frame(simple, np.array([[0.0], [1.0]]), 2)[0],
                               simple[0].T)
    with pytest.raises(ValueError, match="no channel axis"):
        channels_by_frame(np.ones((1, 4)), np.arange(4.0), 4)


# --- tables ---


def _rows(shares_by_layer: dict[str, np.ndarray], step: int = 1) -> pd.DataFrame:
    out = []
    for depth, (layer, frame) in enumerate(shares_by_layer.items()):
        n = len(frame)
        out.append(layer_rows(frame, np.zeros(n), step, [f"v{i}" for i in range(n)],
                              [0] * n, layer, depth, cells=frame.shape[1]))
    return pd.concat(out, ignore_index=True)


def test_summarize_layers_profiles_and_border_scores():
    flat = np.ones((6, 4))
    border = np.tile([3.0, 1.0, 1.0, 3.0], (6, 1))
    rows = _rows({"clip": border, "conv": flat})
    assert set(rows["share"].groupby([rows["layer"], rows["video_id"]]).sum().round(12)) == {1}
    profiles, borders = summarize_layers(rows, n_boot=50)
    assert list(profiles.columns) == PROFILE_COLUMNS
    assert list(profiles["layer"].unique()) == ["clip", "conv"]  # by depth
    np.testing.assert_allclose(profiles[profiles["layer"] == "conv"]["share"], 0.25)
    b = borders.set_index("layer")["border_score"]
    assert b["conv"] == pytest.approx(1.0) and b["clip"] == pytest.approx(3.0)
    assert set(borders["time_cells"]) == {4}
    # a prior equal to the profile: relative shares 1
    prior = rows.copy()
    prior.insert(1, "seed", 1000)
    profiles, borders = summarize_layers(rows, prior, n_boot=50)
    np.testing.assert_allclose(profiles["relative_share"], 1.0)


def _signed_rows(clips: dict[str, list[list[float]]], layer: str, depth: int,
                 seed: int | None = None) -> pd.DataFrame:
    """Per-clip layer rows of ``video -> [clip relevance per input frame]`` at step 1."""
    out = []
    for vid, rels in clips.items():
        frame = np.asarray(rels, dtype=np.float64)
        rows = layer_rows(frame, np.zeros(len(frame)), 1, [vid] * len(frame),
                          list(range(len(frame))), layer, depth, cells=frame.shape[1])
        if seed is not None:
            rows.insert(1, "seed", seed)
        out.append(rows)
    return pd.concat(out, ignore_index=True)


def test_pooled_layer_border_scores_stay_defined_for_signed_relevance(caplog):
    # a signed analyzer: each video has a clean clip, one whose total is +-1e-3 (its shares
    # explode) and one with a negative total
    clips, prior = {}, {}
    for i in range(8):
        clips[f"v{i}"] = [[3.0 + i % 3, 1.0, 1.5, 2.0],
                          [0.6, 0.5, -0.4, -0.7 + (-1) ** i * 1e-3 * (i + 1)],
                          [-0.5, 0.2, -0.3, -0.4]]
        prior[f"v{i}"] = [[1.0, 2.0 + i % 2, 2.0, 1.0], [2.0, 3.0, 3.0, 1.0],
                          [1.0, 1.0, 2.0, 1.0 + i % 3]]
    # a second layer whose pooled total is about 0: pooled columns NaN, with the reason
    zero = {f"v{i}": [[1.0, -1.0, 1.0, -1.0 + (-1) ** i * 0.1]] for i in range(8)}
    rows = pd.concat([_signed_rows(clips, "attn", 1), _signed_rows(zero, "flat", 2)],
                     ignore_index=True)
    prior_rows = pd.concat([_signed_rows(prior, "attn", 1, seed=1000),
                            _signed_rows(prior, "flat", 2,
                                         seed=1000)], ignore_index=True)
    with caplog.at_level("WARNING", logger="kvlrp.analysis.measures.pooled"):
        profiles, borders = summarize_layers(rows, prior_rows, n_boot=300)
    assert list(borders.columns) == LAYER_BORDER_COLUMNS
    assert LAYER_BORDER_COLUMNS[-6:] == POOLED_COLUMNS
    assert list(profiles.columns) == PROFILE_COLUMNS
    row = borders.set_index("layer").loc["attn"]
    # the per-clip estimator explodes: shares in the hundreds, B's interval across 0
    assert rows["share"].abs().max() > 100
    assert row["border_ci_low"] < 0 < row["border_ci_high"]
    # the pooled one by hand: sum over all clips, divide once
    total = np.sum([np.sum(r, axis=0) for r in clips.values()], axis=0)
    p = total / total.sum()
    np.testing.assert_allclose(p, np.array([31.8, 13.6, 6.4, 7.2 - 0.004]) / 58.996)
    prior_total = np.sum([np.sum(r, axis=0) for r in prior.values()], axis=0)
    q = prior_total / prior_total.sum()

    def b(x: np.ndarray) -> float:
        return float((x[0] + x[3]) / 2 / ((x[1] + x[2]) / 2))

    assert row["pooled_border_score"] == pytest.approx(b(p), rel=1e-12)
    assert row["pooled_relative_border_score"] == pytest.approx(b(p / q), rel=1e-12)
    for name in ("pooled_border", "pooled_relative_border"):
        score = "pooled_border_score" if name == "pooled_border" else \
            "pooled_relative_border_score"
        assert row[f"{name}_ci_low"] <= row[score] <= row[f"{name}_ci_high"]
    attn = profiles[profiles["layer"] == "attn"].sort_values("position")
    np.testing.assert_allclose(attn["pooled_share"], p, rtol=1e-12)
    flat = borders.set_index("layer").loc["flat"]
    assert np.isnan(flat[POOLED_COLUMNS].astype(float)).all()
    assert profiles[profiles["layer"] == "flat"]["pooled_share"].isna().all()
    assert "pooled total" in borders.attrs["pooled_notes"][(1, "flat")][0]
    assert (1, "attn") not in borders.attrs["pooled_notes"]
    assert "step 1, layer flat" in caplog.text


def test_channel_table_of_two_workers_equals_one():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(size=(3, 5)), rng.uniform(size=(3, 5))
    both = channel_table(pd.concat([channel_sum_rows(a, 2, "conv", 1),
                                    channel_sum_rows(b, 3, "conv", 1)]))
    one = channel_table(channel_sum_rows(a + b, 5, "conv", 1))
    assert list(one.columns) == CHANNEL_COLUMNS
    pd.testing.assert_frame_equal(both, one)
    np.testing.assert_allclose(one["relevance"], ((a + b) / 5).ravel())
    assert one["share"].sum() == pytest.approx(1.0)
    per = one.drop_duplicates("channel")
    assert per["border_share"].sum() == pytest.approx(1.0)
    edge = (a + b)[:, [0, 4]].sum(axis=1)
    np.testing.assert_allclose(per["border_share"], edge / edge.sum())
    top = top_border_channels(one, n=2)
    assert list(top["channel"]) == list(np.argsort(-edge)[:2])
    assert top["cumulative_border_share"].iloc[-1] == pytest.approx(np.sort(edge)[-2:].sum()
                                                                  / edge.sum())


# --- where a Keras model's layer outputs sit in time ---


def test_frame_centres_of_a_functional_model():
    import keras

    inputs = keras.Input((8, 4, 4, 1), name="clip")
    x = keras.layers.ZeroPadding3D((1, 0, 0), name="pad")(inputs)
    x = keras.layers.Conv3D(2, (3, 1, 1), name="conv")(x)  # valid: back to 8 frames
    a = keras.layers.MaxPooling3D((2, 1, 1), name="pool")(x)
    b = keras.layers.AveragePooling3D((2, 1, 1), name="avg")(x)
    x = keras.layers.Concatenate(name="cat")([a, b])
    x = keras.layers.TimeDistributed(keras.layers.Flatten(), name="frames")(x)
    x = keras.layers.Dense(3, name="per_frame")(x)
    x = keras.layers.Flatten(name="flat")(x)
    outputs = keras.layers.Dense(2, name="out")(x)
    lmap = frame_centres(keras.Model(inputs, outputs))
    c = lmap.centres
    np.testing.assert_allclose(c["clip"].ravel(), np.arange(8))
    np.testing.assert_allclose(c["pad"].ravel(), np.arange(-1, 9))
    np.testing.assert_allclose(c["conv"].ravel(), np.arange(8))
    for name in ("pool", "cat", "frames", "per_frame"):
        np.testing.assert_allclose(np.unique(c[name]), [0.5, 2.5, 4.5, 6.5], err_msg=name)
        assert lmap.axis(name) == 0 and lmap.cells(name) == 4
    assert c["flat"].shape == (12,) and lmap.cells("flat") == 4
    np.testing.assert_allclose(c["flat"][:4], [0.5, 0.5, 0.5, 2.5])
    assert lmap.cells("out") == 1 and c["out"].ravel()[0] == pytest.approx(3.5)
    assert lmap.axis("out") is None and not lmap.unmapped


def test_frame_centres_of_a_sequential_model_and_an_unknown_layer():
    import keras

    model = keras.Sequential([keras.Input((6, 4, 4, 2)),
                              keras.layers.Conv3D(2, 3, strides=(2, 1, 1), padding="same",
                                                  name="conv"),
                              keras.layers.UpSampling3D((2, 1, 1), name="up"),
                              keras.layers.Lambda(lambda t: t[:, ::2], name="every_other"),
                              keras.layers.GlobalAveragePooling3D(name="gap")])
    lmap = frame_centres(model)
    np.testing.assert_allclose(lmap.centres["conv"].ravel(), [1, 3, 5])  # pad 1 right
    np.testing.assert_allclose(lmap.centres["up"].ravel(), [1, 1, 3, 3, 5, 5])
    assert "every_other" in lmap.unmapped and "Lambda" in lmap.unmapped["every_other"]
    assert "gap" in lmap.unmapped  # computed from an unplaced output


def test_a_gate_without_time_resolution_keeps_the_positions_it_multiplies():
    import keras

    inputs = keras.Input((6, 4, 4, 2), name="clip")
    x = keras.layers.Conv3D(4, 3, padding="same", name="conv")(inputs)
    gate = keras.layers.GlobalAveragePooling3D(keepdims=True, name="squeeze")(x)
    gate = keras.layers.Dense(4, activation="sigmoid", name="excite")(gate)
    x = keras.layers.Multiply(name="gated")([x, gate])
    x = keras.layers.Add(name="residual")([x, keras.layers.Conv3D(4, 1, name="skip")(inputs)])
    lmap = frame_centres(keras.Model(inputs, x))
    assert lmap.cells("excite") == 1
    for name in ("gated", "residual"):
        np.testing.assert_allclose(lmap.centres[name].ravel(), np.arange(6), err_msg=name)


@pytest.mark.parametrize("builder", ["c3d_small", "r3d_small", "r2plus1d_small", "i3d_small",
                                     "x3d_small"])
def test_every_layer_of_the_builders_is_placed_in_time(builder):
    import kvlrp.models as models

    model = getattr(models, builder)(4, frames=8, size=32)
    lmap = frame_centres(model)
    assert not lmap.unmapped
    assert lmap.cells(model.layers[-1].name) == 1  # the classifier: no frame resolution
    resolved = [n for n in lmap.centres if lmap.cells(n) >= 2]
    assert len(resolved) >= 4
    for name in resolved:  # increasing along time; padding positions at most a stride out
        c = lmap.centres[name]
        t = np.moveaxis(c, lmap.axis(name), 0).reshape(c.shape[lmap.axis(name)], -1)[:, 0]
        assert (np.diff(t) >= 0).all() and t[-1] > t[0], name
        inside = t[(t >= 0) & (t <= 7)]
        assert inside.size >= 2 and t.min() >= -4 and t.max() <= 11, name


def test_transformer_token_layers_are_placed_up_to_attention_across_time():
    import kvlrp.models as models

    small = dict(frames=4, size=16, dim=16, heads=2, mlp_dim=32)
    # TimeSformer: position tables and the class token are looked up at indices computed by
    # keras.ops slicing (GetItem); the tables are constants (no frame), so the class tokens
    # are unmapped and the patch tokens keep their frame up to the temporal attention
    lmap = frame_centres(models.timesformer_small(4, depth=1, **small))
    assert lmap.cells("space_positions_add") == 4
    c = np.broadcast_to(lmap.centres["space_positions_add"], (4, 5, 1))
    assert np.isnan(c[:, 0]).all()  # the class token copies
    np.testing.assert_allclose(c[:, 1:, 0], np.repeat(np.arange(4.0)[:, None], 4, axis=1))
    assert lmap.cells("block0_time_attention_ln") == 4
    assert "block0_time_attention" in lmap.unmapped  # attention across frames: no rule
    # ViViT: spatial attention within a tubelet keeps its frame (the spatial class token
    # takes its tubelet's); the temporal transformer is the first layer left out
    lmap = frame_centres(models.vivit_small(4, **small))
    for name in ("spatial0_attention", "spatial1_mlp_add", "spatial_class", "frame_tokens"):
        assert lmap.cells(name) == 2, name
    np.testing.assert_allclose(lmap.centres["spatial_class"].ravel(), [0.5, 2.5])
    assert lmap.cells("temporal0_attention_ln") == 2
    assert np.isnan(lmap.centres["temporal0_attention_ln"].ravel()[0])  # temporal class
    assert "temporal0_attention" in lmap.unmapped
