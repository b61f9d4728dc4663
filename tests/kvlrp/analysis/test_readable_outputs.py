"""Readable pictures: heatmap strips with a colour bar and legend, legible text, flat safe
file names; display of clips under per-channel normalisations."""

from __future__ import annotations

import numpy as np
from PIL import Image

from kvlrp.analysis.explain.heatmaps import heatmap_strip, to_display
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
    rows = [y for y in range(img.shape[0])
            if img[y, 1, 2] > 200 and img[y, 1, 0] < 80 and img[y, -2, 0] > 200
            and img[y, -2, 2] < 80]
    assert rows and min(rows) > 2 * 96
    # text is drawn larger than PIL's 11-px bitmap font: the legend spans several rows
    below = img[max(rows) + 1:]
    dark_rows = np.where((below < 100).all(axis=-1).any(axis=1))[0]
    assert dark_rows.max() - dark_rows.min() >= 12
