"""Decode a video file with PyAV (FFmpeg bundled in its wheels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kvlrp.video.errors import VideoReadError

#: FFmpeg demuxers that open non-video files as if they were video (a text file reads as 'tty').
NON_VIDEO_FORMATS = frozenset({"tty"})

#: Frames a decode may fall short of a *duration-based* frame count before it counts as truncated.
DURATION_SLACK_FRAMES = 2
DURATION_SLACK_FRACTION = 0.02


def declared_frame_count(container, stream) -> int | None:
    """Frames the container declares: its exact count, else duration x average rate; or ``None``."""
    if stream.frames and stream.frames > 0:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        return None
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / 1_000_000
    else:
        return None
    return int(round(seconds * float(rate)))


def is_short_of_declared(decoded: int, declared: int | None, exact: bool) -> bool:
    """Whether ``decoded`` frames fall short of the declared count (with slack if estimated)."""
    if declared is None:
        return False
    if exact:
        return decoded < declared
    slack = max(DURATION_SLACK_FRAMES, int(DURATION_SLACK_FRACTION * declared))
    return decoded < declared - slack


def read_pyav(path: Path, strict: bool = True,
              source: Any = None) -> tuple[np.ndarray, float, int | None]:
    """Decode every frame of the first video stream of ``path`` as RGB.

    Parameters
    ----------
    path
        A video file that exists and is non-empty.
    strict
        Raise when fewer frames decode than the container declares (a truncated or damaged
        file); with ``False`` the decoded frames are returned and the caller compares counts.

    Returns
    -------
    frames, fps, declared
        uint8 ``[T, H, W, 3]``, frames per second, declared frame count (``None`` if unknown).

    Raises
    ------
    VideoReadError
        Not a video, no video stream, decoder errors, no frames, or (strict) truncated.
    """
    import av
    from av.video.reformatter import VideoReformatter

    try:
        container = av.open(str(path) if source is None else source)
    except av.FFmpegError as err:
        reason = f"not a readable video container ({_ffmpeg_reason(err)})"
        raise VideoReadError(path, reason) from err
    with container:
        if container.format.name in NON_VIDEO_FORMATS:
            raise VideoReadError(
                path, f"not a video (FFmpeg reads it with its '{container.format.name}' "
                "demuxer, i.e. as a text file)"
            )
        if not container.streams.video:
            raise VideoReadError(path, f"no video stream in this {container.format.name} file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        declared = declared_frame_count(container, stream)
        exact = bool(stream.frames and stream.frames > 0)
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else float("nan")
        frames: list[np.ndarray] = []
        failure: str | None = None
        # one reformatter for the whole video: frame.to_ndarray(format=...) would set up a new
        # conversion context per frame (5x slower on small frames)
        to_rgb = VideoReformatter()
        try:
            for frame in container.decode(stream):
                frames.append(to_rgb.reformat(frame, format="rgb24").to_ndarray())
        except av.FFmpegError as err:
            failure = _ffmpeg_reason(err)
        except (ValueError, MemoryError) as err:
            failure = f"{type(err).__name__}: {err}"
    of_declared = f" of {declared} declared" if declared is not None else ""
    if not frames:
        detail = f": {failure}" if failure else ""
        raise VideoReadError(path, f"no frame could be decoded{detail}")
    if failure is not None and strict:
        raise VideoReadError(
            path,
            f"decoding failed after {len(frames)}{of_declared} frames "
            f"(truncated or corrupt): {failure}",
        )
    if strict and is_short_of_declared(len(frames), declared, exact):
        source = "frame count" if exact else "duration x frame rate"
        raise VideoReadError(
            path,
            f"truncated or damaged: decoded {len(frames)} frames but the container declares "
            f"{declared} ({source})",
        )
    sizes = sorted({frame.shape[:2] for frame in frames})
    if len(sizes) > 1:
        raise VideoReadError(path, f"the frame size changes within the video: {sizes}")
    return np.stack(frames), fps, declared


def _ffmpeg_reason(err: Exception) -> str:
    """The FFmpeg message of a PyAV error without the repeated file name."""
    message = getattr(err, "strerror", None) or str(err)
    return str(message)
