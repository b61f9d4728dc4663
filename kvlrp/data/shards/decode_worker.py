"""Decode one video for a shard (runs in worker processes; imports no TensorFlow)."""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
from dataclasses import dataclass

import numpy as np

from kvlrp.video import VideoReadError, read_video
from kvlrp.video.resample import resample_indices

#: Frame encodings a shard can hold.
ENCODINGS = ("jpeg", "raw")

#: Fault injection (for tests of a killed worker): a decode worker *process* given a file of
#: this name (``os.path.basename``) kills itself with SIGKILL, as the out-of-memory killer
#: would. Never the process that started the pool (``workers=0`` decodes such a file normally).
KILL_WORKER_ON_ENV = "KVLRP_KILL_DECODE_WORKER_ON"


@dataclass(frozen=True)
class DecodeTask:
    """What to decode and how to store its frames."""

    path: str
    encoding: str = "jpeg"
    jpeg_quality: int = 95
    short_side: int | None = None
    allow_truncated: bool = False
    fps: float | None = None


@dataclass(frozen=True)
class DecodedVideo:
    """A decoded video ready for a TFRecord example, or the reason it could not be decoded."""

    path: str
    frames: list[bytes] | None = None
    n_frames: int = 0
    height: int = 0
    width: int = 0
    error: str | None = None
    source_fps: float | None = None
    source_frames: int = 0


def decode_task(task: DecodeTask) -> DecodedVideo:
    """Decode ``task.path`` and encode its frames; never raises for a bad video."""
    _die_if_named(task.path)
    try:
        video = read_video(task.path, strict=not task.allow_truncated)
    except VideoReadError as err:
        return DecodedVideo(task.path, error=err.reason)
    except Exception as err:  # noqa: BLE001 - one bad file must not stop the run
        return DecodedVideo(task.path, error=f"{type(err).__name__}: {err}")
    frames = video.frames
    source_frames = len(frames)
    if task.fps is not None:
        if not (video.fps > 0):  # NaN or 0: the container declares no rate
            return DecodedVideo(task.path, error=f"no frame rate in the file (got {video.fps}); "
                                                 "cannot resample to --fps")
        frames = frames[resample_indices(source_frames, video.fps, task.fps)]
    if task.short_side is not None:
        frames = resize_short_side(frames, task.short_side)
    n_frames, height, width = frames.shape[:3]
    if task.encoding == "raw":
        payload = [np.ascontiguousarray(frames).tobytes()]
    else:
        payload = [encode_jpeg(frame, task.jpeg_quality) for frame in frames]
    return DecodedVideo(task.path, payload, n_frames, height, width,
                        source_fps=float(video.fps), source_frames=source_frames)


def _die_if_named(path: str) -> None:
    """SIGKILL this worker process if :data:`KILL_WORKER_ON_ENV` names ``path``'s file."""
    name = os.environ.get(KILL_WORKER_ON_ENV)
    if name and os.path.basename(path) == name and multiprocessing.parent_process() is not None:
        os.kill(os.getpid(), signal.SIGKILL)


def resize_short_side(frames: np.ndarray, short_side: int) -> np.ndarray:
    """Resize uint8 ``[T, H, W, 3]`` frames (area/bilinear) so that ``min(H, W) == short_side``."""
    from PIL import Image

    height, width = frames.shape[1:3]
    if min(height, width) == short_side:
        return frames
    scale = short_side / min(height, width)
    new_size = (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.stack([np.asarray(Image.fromarray(f).resize(new_size, method)) for f in frames])


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of one uint8 RGB frame (4:4:4, no chroma subsampling)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()
