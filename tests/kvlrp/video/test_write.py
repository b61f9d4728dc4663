"""write_video: the same frames give the same bytes (reproducible encoder and muxer settings)."""

from __future__ import annotations

import numpy as np
import pytest

from kvlrp.video import read_video, write_video
from kvlrp.video.checksum import decoded_sha256, file_sha256, frames_sha256
from kvlrp.video.writer import encoding_options


def textured_frames(n_frames: int = 24, size: int = 64) -> np.ndarray:
    """A noisy texture drifting one pixel a frame (uint8 RGB): B-frames, motion and texture."""
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (size, 2 * size, 3)).astype(float)
    frames = [np.roll(base, t, axis=1)[:, :size] + rng.normal(0, 6, (size, size, 3))
              for t in range(n_frames)]
    return np.clip(frames, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("suffix", "codec"), [(".mp4", "libx264"), (".mkv", "libx264"),
                                               (".avi", "mjpeg"), (".webm", "libvpx-vp9"),
                                               (".mp4", "mpeg4"), (".mkv", "ffv1")])
def test_same_frames_same_bytes(tmp_path, suffix, codec):
    frames = textured_frames()
    paths = [tmp_path / f"{k}{suffix}" for k in range(3)]
    for path in paths:
        write_video(path, frames, codec=codec)
    assert len({path.read_bytes() for path in paths}) == 1
    assert decoded_sha256(paths[0]) == decoded_sha256(paths[1])


def test_matroska_without_reproducible_settings_differs(tmp_path):
    """What the settings guard against: the Matroska muxer writes random UIDs by default."""
    frames = textured_frames(4, 16)
    for name in ("a.mkv", "b.mkv"):
        write_video(tmp_path / name, frames, codec="ffv1", reproducible=False)
    assert (tmp_path / "a.mkv").read_bytes() != (tmp_path / "b.mkv").read_bytes()
    assert decoded_sha256(tmp_path / "a.mkv") == decoded_sha256(tmp_path / "b.mkv")


def test_caller_options_extend_or_override_the_reproducible_ones():
    encoder, muxer = encoding_options(
        "libx264", {"crf": "21", "flags": "+global_header", "x264-params": "keyint=10",
                    "threads": "2"},
        {"movflags": "faststart", "fflags": "-autobsf"})
    assert encoder == {"crf": "21", "threads": "2", "flags": "+bitexact+global_header",
                       "x264-params": "mbtree=0:weightp=0:keyint=10"}
    assert muxer == {"fflags": "+bitexact-autobsf", "movflags": "faststart"}
    assert encoding_options("mjpeg") == ({"threads": "1", "flags": "+bitexact"},
                                         {"fflags": "+bitexact"})
    assert encoding_options("libx264", {"crf": "18"}, reproducible=False) == ({"crf": "18"}, {})


def test_checksums(tmp_path):
    frames = textured_frames(6, 16)
    path = tmp_path / "clip.mkv"
    write_video(path, frames, codec="ffv1")
    assert decoded_sha256(path) == (frames_sha256(frames), 6)
    assert frames_sha256(read_video(path).frames) == frames_sha256(frames)
    assert len(file_sha256(path)) == 64
    with pytest.raises(ValueError, match="uint8"):
        frames_sha256(frames.astype(np.int16))


def test_gray_frames_are_converted_too(tmp_path):
    gray = textured_frames(6, 16)[..., 0]
    for name in ("a.mp4", "b.mp4"):
        write_video(tmp_path / name, gray)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert read_video(tmp_path / "a.mp4").frames.shape == (6, 16, 16, 3)
