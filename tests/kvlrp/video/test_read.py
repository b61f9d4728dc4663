"""read_video on real files the tests encode themselves, in every supported container.

Tolerances: lossless sources (FFV1, PNG frames) must decode exactly; lossy codecs (H.264,
MJPEG, MPEG-4 part 2, VP8, VP9 at their default quality) must come within a mean absolute error
of 12 grey levels of the source, and much closer to the right frame than to its neighbour.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kvlrp.video import BackendUnavailableError, Video, read_video, write_video

T, H, W = 20, 32, 48


def moving_pattern(n_frames: int = T, height: int = H, width: int = W) -> np.ndarray:
    """Smooth colour pattern moving 3 px/frame right and 1 px/frame down (uint8 RGB)."""
    t = np.arange(n_frames)[:, None, None]
    y = np.arange(height)[None, :, None]
    x = np.arange(width)[None, None, :]
    base = 128 + 90 * np.sin(2 * np.pi * (x + 3 * t) / 32) * np.cos(2 * np.pi * (y - t) / 40)
    base = base + np.zeros((n_frames, height, width))
    return np.stack([base, 0.8 * base + 20, 255 - base], -1).clip(0, 255).astype(np.uint8)


def assert_matches(decoded: np.ndarray, source: np.ndarray, lossless: bool) -> None:
    assert decoded.dtype == np.uint8 and decoded.shape == source.shape
    error = np.abs(decoded.astype(int) - source.astype(int))
    if lossless:
        np.testing.assert_array_equal(decoded, source)
        return
    neighbour = np.abs(decoded[:-1].astype(int) - source[1:].astype(int)).mean()
    assert error.mean() < 12, f"mean abs error {error.mean():.2f}"
    assert error.mean() < neighbour / 2, "decoded frames are not aligned with their source"


@pytest.mark.parametrize(
    ("suffix", "codec", "lossless"),
    [
        (".mp4", "libx264", False),
        (".avi", "mjpeg", False),
        (".avi", "mpeg4", False),
        (".webm", "libvpx", False),
        (".webm", "libvpx-vp9", False),
        (".mkv", "libx264", False),
        (".mkv", "ffv1", True),
    ],
)
def test_containers_decode_to_source_frames(tmp_path, suffix, codec, lossless):
    source = moving_pattern()
    path = tmp_path / f"clip_{codec}{suffix}"
    assert write_video(path, source, fps=30, codec=codec) == codec
    video = read_video(path)
    assert isinstance(video, Video)
    assert video.path == str(path)
    assert video.fps == pytest.approx(30.0)
    assert video.n_frames == T and video.declared_frames == T
    assert_matches(video.frames, source, lossless)


def test_ntsc_frame_rate(tmp_path):
    path = tmp_path / "ntsc.mp4"
    write_video(path, moving_pattern(8), fps=30000 / 1001)
    assert read_video(path).fps == pytest.approx(29.97, abs=1e-3)


def test_odd_size_comes_out_rgb(tmp_path):
    source = moving_pattern(6, 33, 47)
    path = tmp_path / "odd.mkv"
    write_video(path, source, codec="ffv1")
    assert_matches(read_video(path).frames, source, lossless=True)


def test_grayscale_video_comes_out_rgb(tmp_path):
    gray = moving_pattern(6)[..., 0]
    path = tmp_path / "gray.mkv"
    write_video(path, gray, codec="ffv1", pix_fmt="gray")
    frames = read_video(path).frames
    assert frames.shape == (6, H, W, 3)
    for channel in range(3):
        np.testing.assert_array_equal(frames[..., channel], gray)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_frame_folder_in_numeric_order(tmp_path, suffix):
    source = moving_pattern(12)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(source):  # unpadded numbers: frame_10 must come after frame_9
        Image.fromarray(frame).save(folder / f"frame_{t + 1}{suffix}", quality=95)
    (folder / "notes.txt").write_text("not a frame")
    video = read_video(folder, folder_fps=12.5)
    assert video.fps == 12.5
    assert_matches(video.frames, source, lossless=suffix == ".png")


def test_grayscale_png_folder_comes_out_rgb(tmp_path):
    gray = moving_pattern(4)[..., 0]
    for t, frame in enumerate(gray):
        Image.fromarray(frame, mode="L").save(tmp_path / f"{t:04d}.png")
    frames = read_video(tmp_path).frames
    assert frames.shape == (4, H, W, 3)
    np.testing.assert_array_equal(frames[..., 2], gray)


def test_tfio_backend_says_why_it_cannot_run(tmp_path):
    """tensorflow-io is absent here, or its FFmpeg 4 ops cannot load: the error says which."""
    from kvlrp.video.tfio_backend import tfio_unavailable_reason

    reason = tfio_unavailable_reason()
    if reason is None:
        pytest.skip("tensorflow-io's FFmpeg ops load on this machine; nothing to report")
    path = tmp_path / "clip.mp4"
    write_video(path, moving_pattern(4))
    with pytest.raises(BackendUnavailableError) as info:
        read_video(path, backend="tfio")
    message = str(info.value)
    assert "pyav" in message
    assert "tensorflow-io is not installed" in message or "libavformat.so.58" in message


def test_tfio_reason_names_the_missing_ffmpeg4_library(monkeypatch):
    """With tensorflow-io importable, the real check for FFmpeg 4's libavformat.so.58 runs."""
    import ctypes
    import sys
    import types

    from kvlrp.video.tfio_backend import FFMPEG4_LIBRARY, tfio_unavailable_reason

    try:
        ctypes.CDLL(FFMPEG4_LIBRARY)
    except OSError:
        pass
    else:
        pytest.skip(f"{FFMPEG4_LIBRARY} is present on this machine")
    monkeypatch.setitem(sys.modules, "tensorflow_io", types.ModuleType("tensorflow_io"))
    reason = tfio_unavailable_reason()
    assert "FFmpeg 4 libraries (libavformat.so.58)" in reason and "backend='pyav'" in reason


def test_unknown_backend(tmp_path):
    with pytest.raises(ValueError, match="unknown video backend 'opencv'"):
        read_video(tmp_path / "x.mp4", backend="opencv")
