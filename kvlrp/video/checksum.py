"""SHA-256 checksums of video files and of their frames, the same on every machine.

The decoded-frame checksum converts each decoded picture to RGB in swscale's bit-exact mode:
FFmpeg's SIMD conversion (what :func:`kvlrp.video.read_video` uses, for speed) can differ from
its C code by one level, so ``read_video`` frames may hash differently on another CPU while the
file and these checksums do not.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from kvlrp.infra import fs

#: Hex SHA-256 of a file's bytes (local or a URL; the one file hash of kvlrp).
file_sha256 = fs.file_sha256


def frames_sha256(frames: np.ndarray) -> str:
    """Hex SHA-256 of uint8 frames ``[T, H, W, C]`` in C order (frame after frame, row by row)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    return hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()


def decoded_sha256(path: str | os.PathLike) -> tuple[str, int]:
    """Hex SHA-256 of a video file's decoded frames as uint8 RGB, and the number of frames.

    Every frame of the first video stream is converted to ``rgb24`` bit-exactly, so the value
    is :func:`frames_sha256` of those frames on any CPU; for a lossless codec fed RGB it equals
    :func:`frames_sha256` of the frames that were encoded.
    """
    import av
    from av.video.reformatter import VideoReformatter

    from kvlrp.video.writer import conversion_flags

    digest, n_frames = hashlib.sha256(), 0
    converter, flags = VideoReformatter(), conversion_flags()
    with av.open(str(Path(path))) as container:
        for frame in container.decode(video=0):
            rgb = converter.reformat(frame, format="rgb24", interpolation=flags, threads=1)
            digest.update(np.ascontiguousarray(rgb.to_ndarray()).tobytes())
            n_frames += 1
    return digest.hexdigest(), n_frames
