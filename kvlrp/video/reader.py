"""``read_video``: one entry point for every supported source and backend."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kvlrp.infra.fs import is_url
from kvlrp.infra.fs import path as fs_path
from kvlrp.video.errors import VideoReadError
from kvlrp.video.frame_folder import read_frame_folder
from kvlrp.video.video import Video

#: Backend names :func:`read_video` accepts.
BACKENDS = ("pyav", "tfio")

#: Frame rate given to a frame folder when the caller names none.
DEFAULT_FOLDER_FPS = 25.0


def read_video(
    path: str | os.PathLike,
    backend: str = "pyav",
    strict: bool = True,
    folder_fps: float = DEFAULT_FOLDER_FPS,
) -> Video:
    """Decode a video file (mp4, avi, webm, mkv, ...) or a folder of numbered frames.

    Parameters
    ----------
    path
        A video file, or a folder of numbered JPEG/PNG frames.
    backend
        ``"pyav"`` (default) or ``"tfio"`` (tensorflow-io's FFmpeg ops; where they cannot load,
        :class:`~kvlrp.video.errors.BackendUnavailableError` says why).
    strict
        Raise :class:`VideoReadError` when fewer frames decode than the container declares
        (truncated or damaged file). With ``False`` the decoded part is returned and
        ``Video.declared_frames`` lets the caller see the shortfall.
    folder_fps
        Frame rate reported for a frame folder (folders carry none).

    Returns
    -------
    Video
        uint8 RGB frames ``[T, H, W, 3]`` (grayscale expanded), frame rate and path.

    Raises
    ------
    VideoReadError
        Missing, empty, unreadable, non-video, corrupt or truncated input; the message names the
        path and the reason.
    ValueError
        Unknown backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; choose one of {BACKENDS}")
    if is_url(path):  # gs://, s3://, hdfs://, ram://: decoded from a tf.io.gfile file object
        return _read_url(fs_path(path), backend, strict)
    path = Path(path)
    if path.is_dir():
        return Video(read_frame_folder(path), float(folder_fps), str(path))
    _check_readable_file(path)
    if backend == "tfio":
        from kvlrp.video.tfio_backend import read_tfio

        frames, fps, declared = read_tfio(path)
    else:
        from kvlrp.video.pyav_backend import read_pyav

        frames, fps, declared = read_pyav(path, strict=strict)
    return Video(frames, fps, str(path), declared)


def _read_url(path, backend: str, strict: bool) -> Video:
    """:func:`read_video` of a ``tf.io.gfile`` URL: PyAV decodes from the open file object."""
    import tensorflow as tf

    if backend != "pyav":
        raise ValueError(f"videos at URLs ({path}) are read with the pyav backend only")
    try:
        if path.is_dir():
            raise VideoReadError(path, "a folder: frame folders must be on a local disk")
        size = tf.io.gfile.stat(str(path)).length
    except tf.errors.NotFoundError as err:
        raise VideoReadError(path, "file not found") from err
    except tf.errors.OpError as err:
        raise VideoReadError(path, f"cannot access file: {err.message}") from err
    if size == 0:
        raise VideoReadError(path, "empty file (0 bytes)")
    from kvlrp.video.pyav_backend import read_pyav

    try:
        with path.open("rb") as handle:
            if looks_like_text(handle.read(512)):
                raise VideoReadError(path, "not a video: it is a text file")
            handle.seek(0)
            frames, fps, declared = read_pyav(path, strict=strict, source=handle)
    except tf.errors.OpError as err:
        raise VideoReadError(path, f"file is not readable: {err.message}") from err
    return Video(frames, fps, str(path), declared)


def _check_readable_file(path: Path) -> None:
    """Raise :class:`VideoReadError` unless ``path`` is a non-empty regular file we can read."""
    try:
        info = path.stat()
    except FileNotFoundError as err:
        raise VideoReadError(path, "file not found") from err
    except OSError as err:
        raise VideoReadError(path, f"cannot access file: {err.strerror or err}") from err
    if not stat.S_ISREG(info.st_mode):
        raise VideoReadError(path, "not a regular file or frame folder")
    if info.st_size == 0:
        raise VideoReadError(path, "empty file (0 bytes)")
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as err:
        raise VideoReadError(path, f"file is not readable: {err.strerror or err}") from err
    if looks_like_text(head):
        raise VideoReadError(path, "not a video: it is a text file")


def looks_like_text(head: bytes) -> bool:
    """Whether a file's first bytes are printable UTF-8 text (video containers are binary)."""
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:  # a multi-byte character cut at the end is still text
        if err.start < len(head) - 3:
            return False
        text = head[: err.start].decode("utf-8")
    return all(ch.isprintable() or ch in "\t\r\n\f" for ch in text)
