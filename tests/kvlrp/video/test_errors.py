"""Broken inputs raise one VideoReadError naming the path and the reason; truncation is reported."""

from __future__ import annotations

import os
import pickle
import socket

import numpy as np
import pytest

from kvlrp.video import VideoReadError, read_video, write_video


def noise_frames(n_frames: int = 40) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n_frames, 32, 48, 3), dtype=np.uint8)


def truncate(path, fraction: float = 0.5):
    data = path.read_bytes()
    out = path.with_name("cut_" + path.name)
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def expect_error(path, *fragments: str) -> VideoReadError:
    with pytest.raises(VideoReadError) as info:
        read_video(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.path == str(path) and str(path) in str(err)
    for fragment in fragments:
        assert fragment in err.reason, err.reason
    return err


@pytest.mark.parametrize(
    ("name", "codec", "container_options"),
    [
        ("clip.avi", "mjpeg", None),  # header declares the frame count
        ("clip.mkv", "libx264", None),  # only the duration is declared
        ("clip.webm", "libvpx", None),
        ("clip.mp4", "libx264", {"movflags": "faststart"}),  # index first, data cut
    ],
)
def test_truncated_file_is_reported_not_shortened(tmp_path, name, codec, container_options):
    full = tmp_path / name
    write_video(full, noise_frames(), codec=codec, container_options=container_options)
    cut = truncate(full)
    err = expect_error(cut)
    assert "truncated" in err.reason
    assert "40" in err.reason  # the declared count is named
    partial = read_video(cut, strict=False)
    assert 0 < partial.n_frames < 40
    assert partial.declared_frames is not None and partial.declared_frames >= 38


def test_truncated_mp4_without_index(tmp_path):
    full = tmp_path / "clip.mp4"
    write_video(full, noise_frames())  # index (moov) at the end: cutting loses it
    expect_error(truncate(full), "not a readable video container")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    expect_error(path, "empty file (0 bytes)")


def test_random_bytes(tmp_path):
    path = tmp_path / "random.mp4"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    expect_error(path, "not a readable video container")


def test_text_file(tmp_path):
    path = tmp_path / "notes.avi"
    path.write_text("this is not a video\n" * 40)
    expect_error(path, "not a video", "text file")


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nowhere.mp4", "file not found")


def test_socket_is_unreadable(tmp_path):
    """A real OS-level read failure that root cannot override: open() on a socket fails."""
    path = tmp_path / "sock.mp4"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        expect_error(path, "not a regular file")
    finally:
        server.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied(tmp_path):
    path = tmp_path / "locked.mp4"
    write_video(path, noise_frames(4))
    path.chmod(0)
    expect_error(path, "not readable")


def test_read_error_of_open_is_wrapped(tmp_path, monkeypatch):
    """An OSError while opening (EACCES for non-root users) becomes a VideoReadError."""
    path = tmp_path / "clip.mp4"
    write_video(path, noise_frames(4))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", denied)
    expect_error(path, "not readable", "Permission denied")


def test_folder_without_frames(tmp_path):
    (tmp_path / "readme.txt").write_text("no frames here")
    expect_error(tmp_path, "no frame images")


def test_folder_with_corrupt_frame(tmp_path):
    (tmp_path / "0001.png").write_bytes(b"not a png")
    expect_error(tmp_path, "0001.png", "not a readable image")


def test_error_survives_pickling():
    err = pickle.loads(pickle.dumps(VideoReadError("/x.mp4", "empty file (0 bytes)")))
    assert (err.path, err.reason) == ("/x.mp4", "empty file (0 bytes)")


def test_frame_size_changing_mid_stream(tmp_path):
    """Two MPEG-TS streams of different frame sizes, concatenated (a real decoder reads both)."""
    import av

    def write_ts(path, frames):
        with av.open(str(path), "w", format="mpegts") as container:
            stream = container.add_stream("mpeg2video", rate=25)
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = "yuv420p"
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())

    write_ts(tmp_path / "a.ts", noise_frames(5)[:, :16, :16])
    write_ts(tmp_path / "b.ts", noise_frames(5)[:, :32, :24])
    joined = tmp_path / "joined.ts"
    joined.write_bytes((tmp_path / "a.ts").read_bytes() + (tmp_path / "b.ts").read_bytes())
    expect_error(joined, "frame size changes within the video", "(16, 16)", "(32, 24)")


@pytest.mark.parametrize("name", ["clip.mkv", "clip.mp4", "clip.avi"])
def test_damage_inside_the_file_is_reported(tmp_path, name):
    """A tenth of the file overwritten with random bytes: fewer frames decode, and we say so."""
    path = tmp_path / name
    write_video(path, noise_frames())
    data = bytearray(path.read_bytes())
    third = len(data) // 3
    data[third:third + len(data) // 10] = np.random.default_rng(2).bytes(len(data) // 10)
    damaged = tmp_path / f"damaged_{name}"
    damaged.write_bytes(bytes(data))
    err = expect_error(damaged)
    assert "truncated or damaged" in err.reason or "truncated or corrupt" in err.reason
