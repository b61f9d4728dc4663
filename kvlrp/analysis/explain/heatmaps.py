"""Heatmaps: frames with relevance overlaid, as a PNG strip and an animated GIF (Pillow).

Relevance is summed over colour channels and drawn with a diverging colour map (red positive,
blue negative) that is symmetric around zero and shares one scale across the clip's frames
(saturating at the 99th percentile of |relevance|), so frames can be compared. The overlay's
opacity grows with |relevance|, so the frame stays visible where relevance is small. Every row
of the PNG (and every panel of the GIF) is labelled with what it shows (:data:`ROW_LABELS`);
the PNG carries a colour bar with that scale and a line saying what red, blue and the
per-frame ``%`` mean; text is drawn at a size legible at 100 % zoom.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kvlrp.infra.atomic import atomic_write
from kvlrp.infra.safe_paths import safe_part

_GAP = 2
_FONT_SIZE = 14
_LABEL_HEIGHT = _FONT_SIZE + 6
#: What each row of a strip (each panel of a GIF) shows: the frames, the relevance overlaid,
#: and the temporal part of the relevance (selective relevance).
ROW_LABELS = ("input", "relevance", "temporal part")
#: What the colours and the per-frame numbers mean (printed under every strip).
LEGEND = ("red: relevance for the explained class, blue: against it; "
          "'t=k  N%': frame k holds N% of the clip's relevance")


def _font(size: int = _FONT_SIZE) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # scalable (Pillow >= 10.1 with FreeType)
    except (TypeError, ImportError, OSError):  # pragma: no cover - old Pillow
        return ImageFont.load_default()


def heatmap_stem(step: int, video_id: str, clip_index: int) -> str:
    """The file name (without suffix) of a clip's heatmaps: flat and safe whatever the video
    id holds (``step1_sport_arm_wrestling-62832e_clip0``)."""
    return f"step{step}_{safe_part(video_id)}_clip{clip_index}"


def to_display(clip: np.ndarray, bounds: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Map a normalised clip ``[L, H, W, C]`` back to uint8 RGB ``[L, H, W, 3]``.

    ``bounds``: the normalisation's ``(low, high)``, scalars or one value per channel.
    """
    low, high = (np.asarray(b, dtype=np.float64) for b in bounds)
    x = (np.asarray(clip, dtype=np.float64) - low) / (high - low)
    x = np.clip(x, 0.0, 1.0)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return (x[..., :3] * 255).round().astype(np.uint8)


def colour_scale(relevance: np.ndarray, percentile: float = 99.0) -> float:
    """The overlay's saturation value ``v`` (colours span ``[-v, v]``)."""
    rel = np.asarray(relevance, dtype=np.float64).sum(axis=-1)
    vmax = np.percentile(np.abs(rel), percentile)
    return float(vmax if vmax > 0 else np.abs(rel).max())


def overlay(frames_rgb: np.ndarray, relevance: np.ndarray, cmap: str = "bwr",
            percentile: float = 99.0, scale_like: np.ndarray | None = None) -> np.ndarray:
    """Blend relevance ``[L, H, W, C]`` (summed over channels) onto grey frames ``[L, H, W, 3]``.

    The colour scale is symmetric, ``[-v, v]`` with ``v`` the ``percentile`` of ``|relevance|``
    over the whole clip (a few extreme voxels would otherwise wash out the rest); values
    beyond it saturate. ``scale_like``: take the scale from that relevance instead (the
    temporal part is drawn on the scale of the whole relevance). Returns uint8 ``[L, H, W, 3]``.
    """
    from matplotlib import colormaps

    rel = np.asarray(relevance, dtype=np.float64).sum(axis=-1)
    ref = relevance if scale_like is None else scale_like
    vmax = colour_scale(ref, percentile)
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


def _colour_bar(width: int, vmax: float, font, cmap: str = "bwr") -> Image.Image:
    """A horizontal colour bar ``[-vmax, vmax]`` with three labels, ``width`` pixels wide."""
    from matplotlib import colormaps

    bar_h = 12
    ramp = colormaps[cmap](np.linspace(0.0, 1.0, width))[:, :3]
    ramp = (np.repeat(ramp[None], bar_h, axis=0) * 255).round().astype(np.uint8)
    img = Image.new("RGB", (width, bar_h + _LABEL_HEIGHT), "white")
    img.paste(Image.fromarray(ramp), (0, 0))
    draw = ImageDraw.Draw(img)
    for frac, text in ((0.0, f"-{vmax:.2g} (against)"), (0.5, "0"),
                       (1.0, f"+{vmax:.2g} (for)")):
        w = draw.textlength(text, font=font)
        x = min(max(0, frac * width - w / 2), width - w)
        draw.text((x, bar_h + 2), text, fill="black", font=font)
    return img


def _gutter_width(font) -> int:
    """Width of the column of row labels (the same whether or not a temporal row is drawn)."""
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    return int(max(draw.textlength(text, font=font) for text in ROW_LABELS)) + 8


def heatmap_strip(
    clip: np.ndarray,
    relevance: np.ndarray,
    path: str | Path,
    shares: np.ndarray | None = None,
    title: str = "",
    bounds: tuple[float, float] = (-1.0, 1.0),
    min_size: int = 96,
    temporal: np.ndarray | None = None,
) -> Path:
    """Write a PNG: top row the frames, second row the relevance overlay, one column per frame;
    each column is labelled with its position and (if given) its relevance share, each row on
    its left with :data:`ROW_LABELS`. With ``temporal`` (the temporal part of the relevance,
    selective relevance) a third row shows it on the same colour scale as the second. Below,
    a colour bar of the overlay scale (relevance summed over channels, per voxel) and
    :data:`LEGEND`."""
    font = _font()
    frames = to_display(clip, bounds)
    over = overlay(frames, relevance)
    tiles_top = [_upscale(f, min_size) for f in frames]
    tiles_bottom = [_upscale(f, min_size) for f in over]
    tiles_temporal = ([] if temporal is None else
                      [_upscale(f, min_size)
                       for f in overlay(frames, temporal, scale_like=relevance)])
    w, h = tiles_top[0].size
    length = len(tiles_top)
    gutter = _gutter_width(font)
    width = max(gutter + length * (w + _GAP) - _GAP, 360)
    chars = max(20, int(width / (0.55 * _FONT_SIZE)))
    title_lines = textwrap.wrap(title, chars) if title else []
    legend_lines = textwrap.wrap(LEGEND, chars)
    title_h = _LABEL_HEIGHT * len(title_lines)
    bar = _colour_bar(min(width - gutter, 480), colour_scale(relevance), font)
    rows = 3 if tiles_temporal else 2
    body_h = _LABEL_HEIGHT + rows * h + (rows - 1) * _GAP
    canvas = Image.new("RGB", (width, title_h + body_h + _GAP + bar.size[1]
                               + _LABEL_HEIGHT * len(legend_lines)), "white")
    draw = ImageDraw.Draw(canvas)
    for k, line in enumerate(title_lines):
        draw.text((2, 2 + k * _LABEL_HEIGHT), line, fill="black", font=font)
    for row in range(rows):  # what each row shows, centred on the row at the left
        y = title_h + _LABEL_HEIGHT + row * (h + _GAP) + (h - _FONT_SIZE) // 2
        draw.text((2, y), ROW_LABELS[row], fill="black", font=font)
    for t, (top, bottom) in enumerate(zip(tiles_top, tiles_bottom)):
        x = gutter + t * (w + _GAP)
        label = f"t={t}" + ("" if shares is None else f" {100 * shares[t]:.0f}%")
        draw.text((x + 2, title_h + 2), label, fill="black", font=font)
        canvas.paste(top, (x, title_h + _LABEL_HEIGHT))
        canvas.paste(bottom, (x, title_h + _LABEL_HEIGHT + h + _GAP))
        if tiles_temporal:
            canvas.paste(tiles_temporal[t], (x, title_h + _LABEL_HEIGHT + 2 * (h + _GAP)))
    y = title_h + body_h + _GAP
    canvas.paste(bar, (gutter, y))  # under the tiles
    y += bar.size[1]
    for k, line in enumerate(legend_lines):
        draw.text((2, y + k * _LABEL_HEIGHT), line, fill="black", font=font)
    return atomic_write(path, lambda tmp: canvas.save(tmp, format="PNG"))


def heatmap_gif(
    clip: np.ndarray,
    relevance: np.ndarray,
    path: str | Path,
    shares: np.ndarray | None = None,
    bounds: tuple[float, float] = (-1.0, 1.0),
    min_size: int = 128,
    frame_ms: int = 300,
    temporal: np.ndarray | None = None,
) -> Path:
    """Write an animated GIF: each frame shows the video frame beside its relevance overlay
    (and, with ``temporal``, the temporal part on the same scale), each panel captioned with
    :data:`ROW_LABELS`, above them the frame's position and share."""
    font = _font()
    frames = to_display(clip, bounds)
    panels = [frames, overlay(frames, relevance)]
    if temporal is not None:
        panels.append(overlay(frames, temporal, scale_like=relevance))
    images = []
    for t in range(len(frames)):
        tiles = [_upscale(p[t], min_size) for p in panels]
        w, h = tiles[0].size
        top = 2 * _LABEL_HEIGHT
        img = Image.new("RGB", (len(tiles) * (w + _GAP) - _GAP, h + top), "white")
        draw = ImageDraw.Draw(img)
        label = f"frame {t}" + ("" if shares is None else
                                f": {100 * shares[t]:.0f}% of the clip's relevance")
        draw.text((2, 2), label, fill="black", font=font)
        for k, tile in enumerate(tiles):
            img.paste(tile, (k * (w + _GAP), top))
            draw.text((k * (w + _GAP) + 2, _LABEL_HEIGHT + 2), ROW_LABELS[k], fill="black",
                      font=font)
        images.append(img)
    return atomic_write(path, lambda tmp: images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0))
