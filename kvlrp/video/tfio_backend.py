"""Decode a video file with tensorflow-io's FFmpeg ops (optional backend).

tensorflow-io's FFmpeg kernels link against FFmpeg 4 system libraries (``libavformat.so.58``),
which current Linux distributions no longer ship. Where they cannot load, or where
tensorflow-io is not installed, :func:`read_tfio` raises :class:`BackendUnavailableError` saying
so and naming PyAV (the default backend) as the one that works.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from kvlrp.video.errors import BackendUnavailableError, VideoReadError

#: The FFmpeg 4 library tensorflow-io's FFmpeg ops are linked against.
FFMPEG4_LIBRARY = "libavformat.so.58"

_USE_PYAV = "use backend='pyav' (the default; its wheels bundle their own FFmpeg)"


def tfio_unavailable_reason() -> str | None:
    """Why the tfio backend cannot run here, or ``None`` if its FFmpeg ops can load."""
    try:
        import tensorflow_io  # noqa: F401
    except ImportError as err:
        return f"tensorflow-io is not installed ({err}); {_USE_PYAV}"
    except Exception as err:  # noqa: BLE001 - a broken install fails in many ways
        return f"tensorflow-io failed to import ({type(err).__name__}: {err}); {_USE_PYAV}"
    try:
        ctypes.CDLL(FFMPEG4_LIBRARY)
    except OSError as err:
        return (
            f"tensorflow-io's FFmpeg ops need the FFmpeg 4 libraries ({FFMPEG4_LIBRARY}), which "
            f"cannot be loaded on this system ({err}); {_USE_PYAV}"
        )
    return None


def read_tfio(path: Path) -> tuple[np.ndarray, float, int | None]:
    """Decode ``path`` with ``tfio.experimental.ffmpeg.decode_video``.

    Returns
    -------
    frames, fps, declared
        uint8 ``[T, H, W, 3]``; fps is ``nan`` (the op does not report it); declared is ``None``.

    Raises
    ------
    BackendUnavailableError
        tensorflow-io missing, or its FFmpeg ops cannot load.
    VideoReadError
        The op loaded but could not decode the file.
    """
    reason = tfio_unavailable_reason()
    if reason is not None:
        raise BackendUnavailableError(f"backend 'tfio' is unavailable: {reason}")
    import tensorflow as tf
    import tensorflow_io as tfio

    try:
        frames = tfio.experimental.ffmpeg.decode_video(tf.io.read_file(str(path))).numpy()
    except (NotImplementedError, tf.errors.NotFoundError) as err:
        raise BackendUnavailableError(
            f"backend 'tfio' is unavailable: its FFmpeg ops failed to load ({err}); {_USE_PYAV}"
        ) from err
    except tf.errors.OpError as err:
        raise VideoReadError(path, f"tensorflow-io could not decode it: {err.message}") from err
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise VideoReadError(path, "tensorflow-io decoded no frames")
    return frames.astype(np.uint8), float("nan"), None
