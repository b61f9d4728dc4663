"""The synthetic dataset: deterministic to the byte in every format, stratified, real H.264
files, and classes that differ only in slow dynamics whose evidence grows with the temporal
baseline."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kvlrp
from kvlrp.data.synth import CLASSES, SynthParams, read_synth_info, render_video, rendered_videos
from kvlrp.data.synth import write_synthetic_dataset as write
from kvlrp.video import read_video
from kvlrp.video.checksum import decoded_sha256, frames_sha256

#: A small set at a width where libx264 with its default settings wrote different bytes per run.
SMALL = dict(videos_per_class=2, size=32, min_frames=24, max_frames=40)

#: The formats ``kvlrp synth --format`` offers.
FORMATS = (".mp4", ".mkv", ".avi", ".webm")


def test_fixture_dataset_layout(synthetic_manifest):
    table = pd.read_csv(synthetic_manifest)
    assert list(table.columns) == ["path", "label", "split", "video_id"]
    assert sorted(table["label"].unique()) == list(CLASSES)
    assert table.groupby("label")["split"].apply(set).map(len).eq(3).all()  # stratified
    info = read_synth_info(synthetic_manifest.parent)
    assert info["codec"] == "libx264" and info["n_videos"] == 16
    video = read_video(synthetic_manifest.parent / table["path"].iloc[0])
    assert video.frames.shape[1:] == (32, 32, 3) and 24 <= video.n_frames <= 48
    assert video.fps == pytest.approx(25.0)


@pytest.mark.parametrize("suffix", FORMATS)
def test_same_seed_same_bytes_other_seed_other_videos(tmp_path, suffix):
    """Two runs with one seed write identical files, manifest and synth.json; another seed not."""
    a, b, c = (write(tmp_path / name, seed=seed, suffix=suffix, **SMALL)
               for name, seed in (("a", 5), ("b", 5), ("c", 6)))
    assert a.read_bytes() == b.read_bytes()
    assert (a.parent / "synth.json").read_bytes() == (b.parent / "synth.json").read_bytes()
    paths = pd.read_csv(a)["path"]
    assert len(paths) == 4 * SMALL["videos_per_class"]
    for path in paths:
        assert (a.parent / path).read_bytes() == (b.parent / path).read_bytes(), path
    files = {name: [v["file_sha256"] for v in read_synth_info(m.parent)["videos"]]
             for name, m in (("a", a), ("c", c))}
    frames = {name: [v["frames_sha256"] for v in read_synth_info(m.parent)["videos"]]
              for name, m in (("a", a), ("c", c))}
    assert not set(files["a"]) & set(files["c"])
    assert not set(frames["a"]) & set(frames["c"])


def test_files_do_not_depend_on_the_state_of_the_heap(tmp_path):
    """``kvlrp synth`` in two processes whose fresh heap memory is filled differently (glibc's
    MALLOC_PERTURB_): libx264's default settings read such memory (AVX-512 CPUs) and wrote
    different files; the reproducible settings do not."""
    outs = []
    for fill in ("1", "200"):
        out = tmp_path / f"fill{fill}"
        subprocess.run(
            [sys.executable, "-m", "kvlrp", "synth", "--out", str(out), "--videos-per-class", "1",
             "--size", "32", "--min-frames", "24", "--max-frames", "40"],
            cwd=Path(kvlrp.__file__).parents[1], env={**os.environ, "MALLOC_PERTURB_": fill},
            check=True, capture_output=True)
        outs.append(out)
    files = sorted(path.relative_to(outs[0]) for path in outs[0].rglob("*") if path.is_file())
    assert len(files) == 4 + 2
    for path in files:
        assert (outs[0] / path).read_bytes() == (outs[1] / path).read_bytes(), path


def test_synth_json_records_the_checksums(tmp_path):
    """Per video: the file's SHA-256, its decoded frames' and the rendered frames'."""
    manifest = write(tmp_path, seed=2, **SMALL)
    info = read_synth_info(tmp_path)
    table = pd.read_csv(manifest)
    assert [v["path"] for v in info["videos"]] == table["path"].tolist()
    assert [v["video_id"] for v in info["videos"]] == table["video_id"].tolist()
    params = SynthParams(**info["params"])
    for record, label in zip(info["videos"], table["label"]):
        path = tmp_path / record["path"]
        assert record["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert (record["frames_sha256"], record["n_frames"]) == decoded_sha256(path)
        k = int(record["video_id"].rsplit("_", 1)[1])
        rendered = render_video(label, np.random.default_rng([2, CLASSES.index(label), k]),
                                params)
        assert record["rendered_sha256"] == frames_sha256(rendered)
        assert record["frames_sha256"] != record["rendered_sha256"]  # H.264 is lossy
    assert info["encoder"]["options"]["threads"] == "1"
    assert info["encoder"]["options"]["x264-params"] == "mbtree=0:weightp=0"
    assert info["encoder"]["container_options"] == {"fflags": "+bitexact"}
    assert {"pyav", "libavcodec", "libavformat", "libswscale"} <= set(info["encoder"])


def test_lossless_codec_decodes_to_the_rendered_frames(tmp_path):
    write(tmp_path, seed=1, suffix=".mkv", codec="ffv1", **{**SMALL, "videos_per_class": 1})
    for record in read_synth_info(tmp_path)["videos"]:
        assert record["frames_sha256"] == record["rendered_sha256"]
        frames = read_video(tmp_path / record["path"]).frames
        assert frames_sha256(frames) == record["rendered_sha256"]


def test_class_changes_only_the_dynamics():
    """Same seed, different class: identical first frame, diverging later frames."""
    params = SynthParams(size=32, min_frames=20, max_frames=20)
    videos = {c: render_video(c, np.random.default_rng(11), params) for c in CLASSES}
    for label in CLASSES[1:]:
        np.testing.assert_array_equal(videos[label][0], videos[CLASSES[0]][0])
    last = [videos[c][-1].astype(int) for c in CLASSES]
    assert all(np.abs(last[i] - last[j]).mean() > 5 for i in range(4) for j in range(i + 1, 4))


def _displacement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer (dy, dx) translation from frame a to frame b by phase correlation."""
    spectrum = np.conj(np.fft.fft2(a - a.mean())) * np.fft.fft2(b - b.mean())
    corr = np.real(np.fft.ifft2(spectrum / (np.abs(spectrum) + 1e-9)))
    shift = np.array(np.unravel_index(np.argmax(corr), corr.shape), float)
    size = np.array(corr.shape)
    shift[shift > size / 2] -= size[shift > size / 2]
    return shift


def _guess_class(shift: np.ndarray, baseline: int) -> str:
    """Class from one frame pair: the drift expected over ``baseline`` frames vs the shake."""
    threshold = 0.125 * baseline + 0.5
    dy, dx = shift
    if abs(dx) > threshold and abs(dx) > abs(dy):
        return "drift_sideways"
    if abs(dy) > threshold:
        return "drift_down" if dy > 0 else "drift_up"
    return "still"


def test_evidence_grows_with_the_temporal_baseline():
    """A frame-pair motion estimate is near chance 1 frame apart and reliable 16 frames apart."""
    params = SynthParams(min_frames=64, max_frames=64)
    videos = [(c, render_video(c, np.random.default_rng([3, i, k]), params).mean(-1))
              for i, c in enumerate(CLASSES) for k in range(4)]
    accuracy = {}
    for baseline in (1, 16):
        hits = [_guess_class(_displacement(v[t], v[t + baseline]), baseline) == c
                for c, v in videos for t in range(0, 64 - baseline, 6)]
        accuracy[baseline] = float(np.mean(hits))
    assert accuracy[1] < 0.45, accuracy
    assert accuracy[16] > 0.75, accuracy


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="size must be an even number"):
        write(tmp_path, size=31)
    with pytest.raises(TypeError, match="unknown synthetic parameter"):
        write(tmp_path, wobble=3)
    with pytest.raises(ValueError, match="unknown synthetic class"):
        render_video("spin", np.random.default_rng(0))


def test_synth_command(tmp_path, capsys):
    from kvlrp.cli import main

    assert main(["synth", "--out", str(tmp_path), "--videos-per-class", "1", "--size", "16",
                 "--min-frames", "6", "--max-frames", "8"]) == 0
    printed = capsys.readouterr().out
    assert "codec libx264 (H.264)" in printed and f"manifest: {tmp_path}" in printed
    assert len(pd.read_csv(tmp_path / "manifest.csv")) == 4


def test_rendering_in_threads_gives_the_same_videos_and_files(tmp_path):
    """``workers`` renders videos in threads: the frames and the encoded files stay the same."""
    jobs = [(label, k) for label in CLASSES for k in range(3)]
    params = SynthParams(size=16, min_frames=6, max_frames=12)
    alone = list(rendered_videos(jobs, 4, params, workers=1))
    threaded = list(rendered_videos(jobs, 4, params, workers=3))
    assert len(alone) == len(threaded) == len(jobs)
    for (label, k), a, b in zip(jobs, alone, threaded):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(
            a, render_video(label, np.random.default_rng([4, CLASSES.index(label), k]), params))
    kwargs = dict(videos_per_class=2, size=16, min_frames=6, max_frames=12, seed=4)
    one = pd.read_csv(write(tmp_path / "one", workers=1, **kwargs))
    two = pd.read_csv(write(tmp_path / "two", workers=2, **kwargs))
    pd.testing.assert_frame_equal(one, two)
    for path in one["path"]:
        assert (tmp_path / "one" / path).read_bytes() == (tmp_path / "two" / path).read_bytes()
    with pytest.raises(ValueError, match="workers must be in 1.."):
        write(tmp_path / "bad", workers=0, **kwargs)
