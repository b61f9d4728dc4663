"""Readable pictures: heatmap strips with a colour bar and legend, legible text, flat safe
file names; display of clips under per-channel normalisations."""

from __future__ import annotations

import numpy as np
from PIL import Image

from kvlrp.analysis.explain.heatmaps import (
    _GAP,
    _LABEL_HEIGHT,
    ROW_LABELS,
    _font,
    _gutter_width,
    heatmap_gif,
    heatmap_strip,
    to_display,
)
from kvlrp.data.clips.normalization import NORMALIZATION_BOUNDS, get_normalization
from kvlrp.infra.safe_paths import MAX_PART
from kvlrp.infra.safe_paths import safe_part as safe_stem


def test_safe_stem_is_flat_and_unique():
    assert safe_stem("v_ApplyEyeMakeup_g01_c01") == "v_ApplyEyeMakeup_g01_c01"
    a, b = safe_stem("sport/basketball"), safe_stem("sport_basketball")
    assert "/" not in a and a.startswith("sport_basketball-") and a != b
    assert "/" not in safe_stem("../../etc/passwd") and not safe_stem("../x").startswith(".")
    assert len(safe_stem("x" * 500)) <= MAX_PART + 9  # a hash is appended


def test_to_display_inverts_per_channel_normalisations():
    px = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3))
    for name in ("imagenet", "c3d", "kinetics", "symmetric"):
        shown = to_display(get_normalization(name).apply(px), NORMALIZATION_BOUNDS[name])
        np.testing.assert_allclose(shown.astype(int), px, atol=1)


def test_heatmap_strip_has_colour_bar_legend_and_wrapped_title(tmp_path):
    rng = np.random.default_rng(0)
    clip = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    rel = rng.normal(size=clip.shape).astype(np.float32)
    short = heatmap_strip(clip, rel, tmp_path / "a.png", shares=np.full(4, 0.25), title="t")
    long_title = "video sport/basketball step 2: label sport, predicted household " * 3
    long = heatmap_strip(clip, rel, tmp_path / "b.png", shares=np.full(4, 0.25),
                         title=long_title)
    with Image.open(short) as a, Image.open(long) as b:
        assert b.size[1] > a.size[1]  # the long title wraps onto more lines
        img = np.asarray(a.convert("RGB")).astype(int)
    # the colour bar: a row running from blue (left) to red (right), below the tiles
    blue = (img[..., 2] > 200) & (img[..., 0] < 80)
    red = (img[..., 0] > 200) & (img[..., 2] < 80)
    rows = [y for y in range(img.shape[0]) if blue[y].any() and red[y].any()
            and np.argmax(blue[y]) < np.argmax(red[y]) and blue[y].sum() > 50
            and red[y].sum() > 50]
    assert rows and min(rows) > 2 * 96
    # text is drawn larger than PIL's 11-px bitmap font: the legend spans several rows
    below = img[max(rows) + 1:]
    dark_rows = np.where((below < 100).all(axis=-1).any(axis=1))[0]
    assert dark_rows.max() - dark_rows.min() >= 12


def _dark(region: np.ndarray) -> bool:
    """Whether a region holds text (near-black pixels)."""
    return bool((region < 90).all(axis=-1).any())


def test_heatmap_rows_and_gif_panels_are_labelled(tmp_path):
    """Each row of a strip says what it shows (input, relevance, temporal part) in a column
    of labels left of the tiles; each GIF frame captions its panels the same way."""
    rng = np.random.default_rng(1)
    clip = np.full((3, 8, 8, 3), 0.9, np.float32)  # light frames: labels are the only text
    rel = rng.random((3, 8, 8, 3))
    tile, gutter = 96, _gutter_width(_font())
    with Image.open(heatmap_strip(clip, rel, tmp_path / "s.png", temporal=rel / 2)) as im:
        img = np.asarray(im.convert("RGB")).astype(int)
    assert img.shape[1] >= gutter + 3 * tile
    for row in range(3):  # a label beside each of the three rows, nothing above/below it
        y0 = _LABEL_HEIGHT + row * (tile + _GAP)
        assert _dark(img[y0 + 30:y0 + 66, :gutter]), ROW_LABELS[row]
        assert not _dark(img[y0 + 2:y0 + 28, :gutter])
    with Image.open(heatmap_gif(clip, rel, tmp_path / "s.gif", temporal=rel / 2)) as im:
        assert im.n_frames == 3
        frame = np.asarray(im.convert("RGB")).astype(int)
    panel = frame.shape[1] // 3
    assert frame.shape[1] >= 3 * 128
    for k in range(3):  # the caption row above each panel holds text
        assert _dark(frame[_LABEL_HEIGHT:2 * _LABEL_HEIGHT, k * panel:k * panel + 60])
