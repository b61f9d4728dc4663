"""Encode uint8 RGB frames into a real video file with PyAV (used by ``kvlrp synth`` and tests)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

#: Codec tried first for each container suffix; the first one PyAV's FFmpeg can encode is used.
CODECS_BY_SUFFIX: dict[str, tuple[str, ...]] = {
    ".mp4": ("libx264", "mpeg4"),
    ".avi": ("mjpeg", "mpeg4"),
    ".webm": ("libvpx-vp9", "libvpx"),
    ".mkv": ("libx264", "ffv1", "mpeg4"),
    ".mov": ("libx264", "mpeg4"),
}

#: Pixel format each codec is fed (libx264/mpeg4/vpx need even frame sizes in yuv420p).
PIXEL_FORMATS: dict[str, str] = {
    "libx264": "yuv420p",
    "mpeg4": "yuv420p",
    "mjpeg": "yuvj444p",
    "libvpx": "yuv420p",
    "libvpx-vp9": "yuv420p",
    "ffv1": "bgr0",
}


def available_codec(suffix: str) -> str:
    """Return the first codec in :data:`CODECS_BY_SUFFIX` that this PyAV build can encode.

    Raises
    ------
    ValueError
        For an unknown suffix, or when no listed encoder is present.
    """
    import av

    suffix = suffix.lower()
    if suffix not in CODECS_BY_SUFFIX:
        raise ValueError(
            f"no encoder known for '{suffix}' files; use one of {sorted(CODECS_BY_SUFFIX)}"
        )
    for name in CODECS_BY_SUFFIX[suffix]:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # noqa: BLE001 - codec missing in this FFmpeg build
            continue
        return name
    raise ValueError(
        f"PyAV's FFmpeg has none of the encoders {CODECS_BY_SUFFIX[suffix]} for '{suffix}' files"
    )


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float = 25.0,
    codec: str | None = None,
    pix_fmt: str | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> str:
    """Encode ``frames`` (uint8 ``[T, H, W, 3]`` RGB or ``[T, H, W]`` gray) into ``path``.

    Parameters
    ----------
    path
        Output file; its suffix chooses the container (mp4, avi, webm, mkv, mov).
    frames
        The frames to encode.
    fps
        Frame rate.
    codec
        Encoder name; default: the first available one of :data:`CODECS_BY_SUFFIX`.
    pix_fmt
        Encoder pixel format; default from :data:`PIXEL_FORMATS`.
    options
        Extra encoder options (e.g. ``{"crf": "18"}`` for libx264).
    container_options
        Muxer options (e.g. ``{"movflags": "faststart"}`` for mp4).

    Returns
    -------
    str
        The codec that was used.
    """
    import av

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or frames.shape[0] == 0:
        raise ValueError(
            "frames must be a non-empty uint8 array [T, H, W, 3] or [T, H, W], "
            f"got {frames.dtype} {frames.shape}"
        )
    path = Path(path)
    codec = codec or available_codec(path.suffix)
    gray = frames.ndim == 3
    height, width = frames.shape[1:3]
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", options=dict(container_options or {})) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt or PIXEL_FORMATS.get(codec, "yuv420p")
        if options:
            stream.options = dict(options)
        for image in frames:
            frame = av.VideoFrame.from_ndarray(image, format="gray" if gray else "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return codec
