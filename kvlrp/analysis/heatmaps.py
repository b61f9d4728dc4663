"""Heatmaps: frames with relevance overlaid, as a PNG strip and an animated GIF (Pillow).

Relevance is summed over colour channels and drawn with a diverging colour map (red positive,
blue negative) that is symmetric around zero and shares one scale across the clip's frames
(saturating at the 99th percentile of |relevance|), so frames can be compared. The overlay's
opacity grows with |relevance|, so the frame stays visible where relevance is small.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from kvlrp.atomic import atomic_write

_GAP = 2
_LABEL_HEIGHT = 14


def to_display(clip: np.ndarray, bounds: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Map a normalised clip ``[L, H, W, C]`` back to uint8 RGB ``[L, H, W, 3]``."""
    low, high = bounds
    x = (np.asarray(clip, dtype=np.float64) - low) / (high - low)
    x = np.clip(x, 0.0, 1.0)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return (x[..., :3] * 255).round().astype(np.uint8)


def overlay(frames_rgb: np.ndarray, relevance: np.ndarray, cmap: str = "bwr",
            percentile: float = 99.0) -> np.ndarray:
    """Blend relevance ``[L, H, W, C]`` (summed over channels) onto grey frames ``[L, H, W, 3]``.

    The colour scale is symmetric, ``[-v, v]`` with ``v`` the ``percentile`` of ``|relevance|``
    over the whole clip (a few extreme voxels would otherwise wash out the rest); values
    beyond it saturate. Returns uint8 ``[L, H, W, 3]``.
    """
    from matplotlib import colormaps

    rel = np.asarray(relevance, dtype=np.float64).sum(axis=-1)
    vmax = np.percentile(np.abs(rel), percentile)
    vmax = vmax if vmax > 0 else np.abs(rel).max()
    scaled = np.clip(rel / vmax, -1.0, 1.0) if vmax > 0 else np.zeros_like(rel)
    colours = colormaps[cmap]((scaled + 1.0) / 2.0)[..., :3]
    alpha = np.sqrt(np.abs(scaled))[..., None] * 0.85
    grey = frames_rgb.astype(np.float64).mean(axis=-1, keepdims=True) / 255.0
    blended = (1 - alpha) * grey + alpha * colours
    return (blended * 255).round().astype(np.uint8)


def _upscale(img: np.ndarray, min_size: int) -> Image.Image:
    factor = max(1, int(np.ceil(min_size / max(img.shape[:2]))))
    pil = Image.fromarray(img)
    return pil.resize((img.shape[1] * factor, img.shape[0] * factor), Image.NEAREST)


def heatmap_strip(
    clip: np.ndarray,
    relevance: np.ndarray,
    path: str | Path,
    shares: np.ndarray | None = None,
    title: str = "",
    bounds: tuple[float, float] = (-1.0, 1.0),
    min_size: int = 96,
) -> Path:
    """Write a PNG: top row the frames, bottom row the relevance overlay, one column per frame;
    each column is labelled with its position and (if given) its relevance share."""
    frames = to_display(clip, bounds)
    over = overlay(frames, relevance)
    tiles_top = [_upscale(f, min_size) for f in frames]
    tiles_bottom = [_upscale(f, min_size) for f in over]
    w, h = tiles_top[0].size
    length = len(tiles_top)
    title_h = _LABEL_HEIGHT if title else 0
    canvas = Image.new("RGB", (length * (w + _GAP) - _GAP,
                               title_h + _LABEL_HEIGHT + 2 * h + _GAP), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((2, 1), title, fill="black")
    for t, (top, bottom) in enumerate(zip(tiles_top, tiles_bottom)):
        x = t * (w + _GAP)
        label = f"t={t}" + ("" if shares is None else f" {100 * shares[t]:.0f}%")
        draw.text((x + 2, title_h + 1), label, fill="black")
        canvas.paste(top, (x, title_h + _LABEL_HEIGHT))
        canvas.paste(bottom, (x, title_h + _LABEL_HEIGHT + h + _GAP))
    return atomic_write(path, lambda tmp: canvas.save(tmp, format="PNG"))


def heatmap_gif(
    clip: np.ndarray,
    relevance: np.ndarray,
    path: str | Path,
    shares: np.ndarray | None = None,
    bounds: tuple[float, float] = (-1.0, 1.0),
    min_size: int = 128,
    frame_ms: int = 300,
) -> Path:
    """Write an animated GIF: each frame shows the video frame beside its relevance overlay."""
    frames = to_display(clip, bounds)
    over = overlay(frames, relevance)
    images = []
    for t, (f, o) in enumerate(zip(frames, over)):
        left, right = _upscale(f, min_size), _upscale(o, min_size)
        w, h = left.size
        img = Image.new("RGB", (2 * w + _GAP, h + _LABEL_HEIGHT), "white")
        img.paste(left, (0, _LABEL_HEIGHT))
        img.paste(right, (w + _GAP, _LABEL_HEIGHT))
        label = f"frame {t}" + ("" if shares is None else f"  share {100 * shares[t]:.0f}%")
        ImageDraw.Draw(img).text((2, 1), label, fill="black")
        images.append(img)
    return atomic_write(path, lambda tmp: images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0))
