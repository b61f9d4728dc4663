"""Selective relevance (kvlrp.analysis.measures.temporal) against a loop reference, and its
columns."""

from __future__ import annotations

import numpy as np
import pytest

from kvlrp.analysis.measures.profiles import SUMMARY_COLUMNS, summarize_profiles
from kvlrp.analysis.measures.temporal import (
    temporal_derivative,
    temporal_frame_relevance,
    temporal_mask,
    temporal_relevance,
)

SOBEL_T = np.stack([
    np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], float),
    np.zeros((3, 3)),
    -np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], float),
])


def _reference_derivative(rel: np.ndarray, padding: str) -> np.ndarray:
    """Cross-correlation with the 3x3x3 temporal Sobel kernel by explicit loops."""
    summed = rel.sum(axis=-1)
    t, h, w = summed.shape
    padded = np.zeros((t + 2, h + 2, w + 2))
    padded[1:-1, 1:-1, 1:-1] = summed
    if padding == "replicate":
        padded[0, 1:-1, 1:-1] = summed[0]
        padded[-1, 1:-1, 1:-1] = summed[-1]
    out = np.zeros((t, h, w))
    for i in range(t):
        for y in range(h):
            for x in range(w):
                out[i, y, x] = (padded[i:i + 3, y:y + 3, x:x + 3] * SOBEL_T).sum()
    return np.abs(out)


@pytest.mark.parametrize("padding", ["replicate", "zero"])
def test_derivative_matches_loop_reference(padding):
    rng = np.random.default_rng(0)
    rel = rng.normal(size=(5, 4, 6, 3))
    ours = temporal_derivative(rel, temporal_padding=padding)
    np.testing.assert_allclose(ours, _reference_derivative(rel, padding), atol=1e-12)
    batch = temporal_derivative(np.stack([rel, 2 * rel]), temporal_padding=padding)
    np.testing.assert_allclose(batch[1], 2 * ours, atol=1e-12)


def test_mask_threshold_by_hand():
    rng = np.random.default_rng(1)
    rel = rng.random((6, 5, 5, 2))
    sigma = 1.5
    deriv = _reference_derivative(rel, "replicate")
    expected = deriv > sigma * deriv.std(ddof=1)
    mask = temporal_mask(rel, sigma=sigma)
    np.testing.assert_array_equal(mask, expected)
    assert 0 < mask.sum() < mask.size
    tr = temporal_relevance(rel, sigma=sigma)
    np.testing.assert_allclose(tr, rel * expected[..., None])
    np.testing.assert_allclose(temporal_frame_relevance(rel, sigma=sigma),
                               (rel * expected[..., None]).sum(axis=(1, 2, 3)))


def test_static_relevance_has_no_temporal_part_but_zero_padding_does():
    frame = np.random.default_rng(2).random((6, 6, 3))
    rel = np.repeat(frame[None], 7, axis=0)
    assert temporal_derivative(rel).max() == 0.0
    assert temporal_relevance(rel).sum() == 0.0
    # float32-rounding differences between frames are not change in time
    wobble = rel * (1 + 1e-7 * np.random.default_rng(5).standard_normal(rel.shape))
    assert temporal_relevance(wobble).sum() == 0.0
    # The reference's zero padding in time flags the border frames of the same static map.
    zero = temporal_frame_relevance(rel, temporal_padding="zero")
    assert zero[0] > 0 and zero[-1] > 0 and np.all(zero[1:-1] == 0)


def test_appearing_spot_is_temporal_at_its_onset_only():
    rel = np.zeros((6, 9, 9, 1))
    rel[..., 1, 1, 0] = 1.0          # a static spot: spatial throughout
    rel[3:, 6, 6, 0] = 1.0           # a spot appearing at frame 3, then static
    tr = temporal_relevance(rel, sigma=1.0)
    assert tr[:, 1, 1, 0].sum() == 0.0
    assert tr[3, 6, 6, 0] == 1.0     # onset: relevance that changes in time
    assert np.all(tr[4:, 6, 6, 0] == 0.0)
    np.testing.assert_allclose(temporal_frame_relevance(rel, sigma=1.0), [0, 0, 0, 1, 0, 0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="temporal_padding"):
        temporal_derivative(np.zeros((3, 2, 2, 1)), temporal_padding="reflect")
    with pytest.raises(ValueError, match="sigma"):
        temporal_mask(np.zeros((3, 2, 2, 1)), sigma=-1)
    with pytest.raises(ValueError, match="clip"):
        temporal_derivative(np.zeros((3, 2, 2)))


def _spatial_model():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 8, 8, 3))
    x = keras.layers.Conv3D(4, (1, 3, 3), activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling3D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_static_clip_through_a_model_gives_zero_temporal_columns():
    """A model without temporal mixing, a clip static in time: relevance is the same in every
    frame, so no relevance is temporal; a moving clip gets some."""
    import analyzers
    from kvlrp.analysis.explain.frames import explain_frames

    model = _spatial_model()
    rng = np.random.default_rng(3)
    still = np.repeat(rng.uniform(-1, 1, (1, 1, 8, 8, 3)), 5, axis=1).astype(np.float32)
    moving = rng.uniform(-1, 1, (1, 5, 8, 8, 3)).astype(np.float32)
    clips = np.concatenate([still, moving])
    analyzer = analyzers.create_analyzer("lrp.epsilon", model)
    batch = {"clip": clips, "label": np.array([0, 1]), "video_id": np.array(["s", "m"]),
             "clip_start": np.zeros(2, int)}
    result = explain_frames(model, [batch], analyzer, step=1, target="label")
    frame = result.frame.set_index("video_id")
    assert np.all(frame.loc["s", "temporal_relevance"] == 0.0)
    assert frame.loc["m", "temporal_relevance"].abs().sum() > 0
    table, borders = summarize_profiles(frame.reset_index(), by_class=True, n_boot=50)
    assert list(table.columns) == SUMMARY_COLUMNS
    still_rows = table[table["class"] == "0"]
    np.testing.assert_allclose(still_rows["temporal_share"], 0.0)
    all_rows = table[table["class"] == "all"]
    assert np.all(all_rows["temporal_ci_low"] <= all_rows["temporal_share"] + 1e-12)
    assert np.all(all_rows["temporal_share"] <= all_rows["temporal_ci_high"] + 1e-12)
    by = borders.set_index("class")
    assert by.loc["0", "temporal_fraction"] == 0.0
    assert by.loc["1", "temporal_fraction"] != 0.0


def test_heatmap_strip_gets_a_temporal_row(tmp_path):
    from PIL import Image

    from kvlrp.analysis.explain.heatmaps import heatmap_strip

    rng = np.random.default_rng(4)
    clip = rng.uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)
    rel = rng.random((4, 8, 8, 3))
    two = Image.open(heatmap_strip(clip, rel, tmp_path / "a.png"))
    three = Image.open(heatmap_strip(clip, rel, tmp_path / "b.png",
                                     temporal=temporal_relevance(rel)))
    assert three.size[0] == two.size[0] and three.size[1] > two.size[1]
    # a temporal part of zero leaves the third row grey (no colour where nothing is temporal)
    blank = np.asarray(Image.open(heatmap_strip(clip, rel, tmp_path / "c.png",
                                                temporal=np.zeros_like(rel))))
    from kvlrp.analysis.explain.heatmaps import _GAP, _LABEL_HEIGHT, _font, _gutter_width

    tile = 96  # 8 px frames upscaled to heatmap_strip's min_size
    top = _LABEL_HEIGHT + 2 * (tile + _GAP)  # below the frames and the relevance row
    left = _gutter_width(_font())  # right of the row labels
    row3 = blank[top + 2:top + tile, left:left + 90]
    assert np.abs(row3[..., 0].astype(int) - row3[..., 2].astype(int)).max() <= 1


def test_report_lines_for_temporal_and_flipping(tmp_path):
    import pandas as pd

    from kvlrp.analysis.report.blocks import Heading, Table
    from kvlrp.analysis.report.explain_section import _temporal_blocks, flipping_verdict

    table = pd.DataFrame({"step": [1] * 3, "class": ["all"] * 3, "position": [0, 1, 2],
                          "temporal_share": [0.2, 0.5, 0.2], "temporal_ci_low": [0.1, 0.4, 0.1],
                          "temporal_ci_high": [0.3, 0.6, 0.3]})
    borders = pd.DataFrame({"step": [1], "class": ["all"], "n_clips": [5],
                            "temporal_fraction": [0.3], "temporal_border_score": [0.4],
                            "temporal_border_ci_low": [0.3], "temporal_border_ci_high": [0.5],
                            "border_score": [0.8]})
    blocks = _temporal_blocks(tmp_path, table, borders, {"temporal_sigma": 1.0}, tmp_path)
    assert blocks[0] == Heading("Temporal vs spatial relevance")
    view = next(b for b in blocks if isinstance(b, Table)).frame
    assert list(view["temporal B [95% CI]"]) == ["0.400 [0.300, 0.500]"]
    assert (tmp_path / "temporal_relevance.png").exists()
    aucs = pd.DataFrame({"step": [1, 1, 1, 1], "curve": ["deletion", "deletion", "insertion",
                                                          "insertion"],
                         "method": ["dt", "random", "dt", "random"], "rank": [1, 2, 2, 1],
                         "diff_vs_random": [-0.1, np.nan, -0.05, np.nan],
                         "diff_vs_random_ci_low": [-0.2, np.nan, -0.1, np.nan],
                         "diff_vs_random_ci_high": [-0.01, np.nan, 0.0, np.nan]})
    verdict = "\n".join(flipping_verdict(aucs))
    assert "deletion: `dt` ranks frames best" in verdict and "an established difference" in verdict
    assert "insertion: no ordering beats a random order" in verdict
