"""Encode uint8 RGB frames into a real video file with PyAV (used by ``kvlrp synth`` and tests).

By default the file's bytes are a function of the frames, the settings and the PyAV build
alone (``reproducible=True``): the same frames give the same file in every run and on machines
with other core counts. What that takes was measured with PyAV 18.1's bundled FFmpeg
(libavcodec 62.28) and libx264 (core 165):

- With x264's macroblock-tree rate control (``mbtree``) on an AVX-512 CPU, the bitstream
  depended on the contents of freshly allocated heap memory at some frame widths (32-192 px;
  not 16, 128 or 256): the same frames encoded differently from run to run, even in one thread.
  It disappears with ``mbtree`` off or x264's AVX-512 code masked; ``mbtree`` also made AVX2 and
  AVX-512 CPUs write different bytes. Weighted P-frame analysis (``weightp``) made x264's C code
  and its SIMD code write different bytes. Both are off: x86-64 CPUs from SSSE3 to AVX-512 then
  write the same bytes (tested 32-256 px); x264's plain C and SSE2-only code too up to 96 px,
  not always from 192 px on.
- libx264, mpeg4 and mjpeg split their work by the thread count, which defaults to the number
  of cores, and the split changes the bytes: one thread.
- The Matroska/WebM muxer writes random segment and track UIDs, every muxer the libavformat
  version and the mjpeg encoder the libavcodec version: FFmpeg's ``bitexact`` flags leave them
  out.
- FFmpeg's SIMD RGB-to-YUV conversion differs from its C code by one level here and there:
  frames are converted in swscale's bit-exact mode, which gives the C result on every CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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

#: Encoder options of a reproducible file, for every codec (one thread, no version string).
REPRODUCIBLE_OPTIONS: dict[str, str] = {"threads": "1", "flags": "+bitexact"}

#: Further encoder options of a reproducible file, per codec (see the module's docstring).
REPRODUCIBLE_CODEC_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"x264-params": "mbtree=0:weightp=0"},
}

#: Muxer options of a reproducible file (no random UIDs, no version string).
REPRODUCIBLE_CONTAINER_OPTIONS: dict[str, str] = {"fflags": "+bitexact"}

#: swscale flags of the RGB conversion of a reproducible file: bilinear, bit-exact.
REPRODUCIBLE_CONVERSION = ("BILINEAR", "BITEXACT", "ACCURATE_RND")


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


def encoding_options(
    codec: str,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    reproducible: bool = True,
) -> tuple[dict[str, str], dict[str, str]]:
    """The encoder and muxer options :func:`write_video` passes to FFmpeg.

    With ``reproducible``, the options of :data:`REPRODUCIBLE_OPTIONS`,
    :data:`REPRODUCIBLE_CODEC_OPTIONS` and :data:`REPRODUCIBLE_CONTAINER_OPTIONS` come first;
    the caller's own options then override them, except that flags written ``+name`` / ``-name``
    are added to ours and ``x264-params`` are appended (x264 reads them in order, so the
    caller's win).

    Returns
    -------
    tuple of dict
        Encoder options, muxer options.
    """
    if not reproducible:
        return dict(options or {}), dict(container_options or {})
    codec_defaults = {**REPRODUCIBLE_OPTIONS, **REPRODUCIBLE_CODEC_OPTIONS.get(codec, {})}
    return (_merge(codec_defaults, options or {}),
            _merge(REPRODUCIBLE_CONTAINER_OPTIONS, container_options or {}))


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float = 25.0,
    codec: str | None = None,
    pix_fmt: str | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    reproducible: bool = True,
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
    reproducible
        Same frames and settings, same bytes (see the module's docstring and
        :func:`encoding_options`). ``False`` leaves FFmpeg's defaults (threads by core count).

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
    encoder_options, muxer_options = encoding_options(codec, options, container_options,
                                                      reproducible)
    height, width = frames.shape[1:3]
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", options=muxer_options) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt or PIXEL_FORMATS.get(codec, "yuv420p")
        if encoder_options:
            stream.options = encoder_options
        for frame in _encoder_frames(frames, stream.pix_fmt, reproducible):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return codec


def conversion_flags() -> int:
    """swscale flags of :data:`REPRODUCIBLE_CONVERSION`, as PyAV's ``interpolation``."""
    from av.video.reformatter import Interpolation

    flags = Interpolation[REPRODUCIBLE_CONVERSION[0]]
    for name in REPRODUCIBLE_CONVERSION[1:]:
        flags |= Interpolation[name]
    return flags


def _encoder_frames(frames: np.ndarray, pix_fmt: str, reproducible: bool) -> Iterator:
    """PyAV frames for the encoder: converted to ``pix_fmt`` bit-exactly if ``reproducible``.

    Otherwise the encoder converts them itself, with FFmpeg's fastest code for this CPU.
    """
    import av
    from av.video.reformatter import VideoReformatter

    source_format = "gray" if frames.ndim == 3 else "rgb24"
    frames = (av.VideoFrame.from_ndarray(image, format=source_format) for image in frames)
    if not reproducible:
        yield from frames
        return
    converter, flags = VideoReformatter(), conversion_flags()
    for frame in frames:
        yield converter.reformat(frame, format=pix_fmt, interpolation=flags, threads=1)


def _merge(ours: dict[str, str], theirs: dict[str, str]) -> dict[str, str]:
    """``ours`` updated by ``theirs``; ``+flag``/``-flag`` values and x264-params are joined."""
    merged = dict(ours)
    for key, value in theirs.items():
        if key in merged and key.endswith("flags") and value.startswith(("+", "-")):
            merged[key] += value
        elif key in merged and key.endswith("-params"):
            merged[key] += ":" + value
        else:
            merged[key] = value
    return merged
