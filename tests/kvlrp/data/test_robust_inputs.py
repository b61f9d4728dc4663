"""Issue 16, data side: manifests confined to their folder, leakage between splits, shard reuse
keyed by content, a lock per output folder, bounds on sizes, decode workers that die, output
names built from data, atomic heatmaps and plots. Each bad input: one line, nothing lost."""

from __future__ import annotations

import os
import shutil
import signal

import numpy as np
import pandas as pd
import pytest
from cli_helpers import main
from cli_helpers import one_line as _one_line

from kvlrp.data.manifests.manifest import ManifestError
from kvlrp.data.shards.folder import prepare_shards, read_index
from kvlrp.video import write_video

#: the robustness set (bad input, damaged files, kills, resumes): ``pytest -m robust``
pytestmark = pytest.mark.robust


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    """Four tiny real videos (two classes, train and test) beside their manifest."""
    root = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    rows = []
    for k in range(4):
        write_video(root / f"v{k}.mp4", rng.integers(0, 256, (8 + k, 16, 16, 3), dtype=np.uint8))
        rows.append((f"v{k}.mp4", "ab"[k % 2], "train" if k < 2 else "test", f"v{k}"))
    pd.DataFrame(rows, columns=["path", "label", "split", "video_id"]).to_csv(
        root / "manifest.csv", index=False)
    return root


def _manifest(folder, rows) -> os.PathLike:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.csv"
    pd.DataFrame(rows, columns=["path", "label", "split", "video_id"]).to_csv(path, index=False)
    return path


# --- manifest paths outside the manifest's folder ---

@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_paths_outside_the_manifest_folder_are_refused(video_folder, tmp_path, how):
    sub = tmp_path / "data"
    sub.mkdir()
    shutil.copy(video_folder / "v0.mp4", sub / "inside.mp4")
    outside = video_folder / "v1.mp4"
    if how == "symlink":
        (sub / "link.mp4").symlink_to(outside)
        path = "link.mp4"
    else:
        path = os.path.relpath(outside, sub) if how == "dotdot" else str(outside)
    manifest = _manifest(sub, [("inside.mp4", "a", "train", "in"), (path, "b", "test", "out")])
    out = tmp_path / "shards"
    with pytest.raises(ManifestError) as err:
        prepare_shards(manifest, out, workers=0, progress=False)
    message = _one_line(str(err.value))
    assert "1 video(s) outside its folder" in message and "'out'" in message
    assert "--allow-outside-root" in message and "put the manifest in a folder" in message
    if how == "symlink":  # never discloses where a symlink points
        assert str(outside) not in message and "symlink" in message
    assert not out.exists()  # refused before anything was written
    # the documented opt-out reads them
    result = prepare_shards(manifest, out, workers=0, progress=False, allow_outside_root=True)
    assert result.n_videos == 2 and result.skipped.empty


def test_prepare_command_refuses_outside_paths_in_one_line(video_folder, tmp_path, capsys):
    manifest = _manifest(tmp_path / "m", [(str(video_folder / "v0.mp4"), "a", "train", "x"),
                                          (str(video_folder / "v2.mp4"), "b", "test", "y")])
    out = tmp_path / "shards"
    assert main(["prepare", str(manifest), "--out", str(out), "--workers", "0",
                 "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("kvlrp prepare: ") and "2 video(s) outside" in line
    assert not out.exists()
    assert main(["prepare", str(manifest), "--out", str(out), "--workers", "0", "--no-progress",
                 "--allow-outside-root"]) == 0
    assert len(read_index(out)) == 2


def test_manifest_command_says_when_prepare_needs_the_opt_out(video_folder, tmp_path, capsys):
    root = tmp_path / "tree"
    for k, cls in enumerate("ab"):
        (root / cls).mkdir(parents=True)
        shutil.copy(video_folder / f"v{k}.mp4", root / cls / f"v{k}.mp4")
    assert main(["manifest", "class-folders", str(root), "--out",
                 str(tmp_path / "elsewhere" / "m.csv")]) == 0
    assert "--allow-outside-root" in capsys.readouterr().out
    assert main(["manifest", "class-folders", str(root), "--out", str(root / "m.csv")]) == 0
    assert "--allow-outside-root" not in capsys.readouterr().out


# --- leakage: one file in two splits ---

@pytest.mark.parametrize("how", ["copy", "symlink", "same path"])
def test_one_video_in_two_splits_is_refused(video_folder, tmp_path, how):
    folder = tmp_path / "data"
    folder.mkdir()
    for k in range(3):
        shutil.copy(video_folder / f"v{k}.mp4", folder / f"v{k}.mp4")
    twin = {"copy": "twin.mp4", "symlink": "twin.mp4", "same path": "v0.mp4"}[how]
    if how == "copy":
        shutil.copy(folder / "v0.mp4", folder / "twin.mp4")
    elif how == "symlink":
        (folder / "twin.mp4").symlink_to(folder / "v0.mp4")
    rows = [("v0.mp4", "a", "train", "first"), ("v1.mp4", "b", "train", "v1"),
            ("v2.mp4", "a", "test", "v2"), (twin, "a", "test", "second")]
    out = tmp_path / "shards"
    with pytest.raises(ManifestError) as err:
        prepare_shards(_manifest(folder, rows), out, workers=0, progress=False)
    message = _one_line(str(err.value))
    assert "'first' (train)" in message and "'second' (test)" in message
    assert "list each video once" in message
    assert not out.exists()


def test_equal_sized_distinct_videos_and_duplicates_within_a_split_pass(video_folder, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for k in range(2):  # raw frames of one shape: files of close (often equal) size
        write_video(folder / f"n{k}.mp4", rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8))
    shutil.copy(folder / "n0.mp4", folder / "again.mp4")
    rows = [("n0.mp4", "a", "train", "n0"), ("again.mp4", "a", "train", "again"),
            ("n1.mp4", "b", "test", "n1")]
    result = prepare_shards(_manifest(folder, rows), tmp_path / "shards", workers=0,
                            progress=False)
    assert result.n_videos == 3


# --- shard reuse keyed by the manifest rows, not the ids ---

def test_a_changed_label_rebuilds_its_shard(video_folder, tmp_path):
    from kvlrp.data.clips.pipeline import video_dataset

    folder = tmp_path / "data"
    shutil.copytree(video_folder, folder)
    first = prepare_shards(folder / "manifest.csv", tmp_path / "shards", workers=0,
                           progress=False, videos_per_shard=1)
    assert first.n_videos == 4
    table = pd.read_csv(folder / "manifest.csv")
    table.loc[table["video_id"] == "v3", "label"] = "a"  # was b; the classes stay a, b
    table.to_csv(folder / "manifest.csv", index=False)
    again = prepare_shards(folder / "manifest.csv", tmp_path / "shards", workers=0,
                           progress=False, videos_per_shard=1)
    assert again.n_reused_shards == 3  # only v3's shard is rebuilt
    index = read_index(tmp_path / "shards").set_index("video_id")
    assert index.loc["v3", "label"] == "a" and index.loc["v3", "label_index"] == 0
    labels = {e["video_id"].numpy().decode(): int(e["label"])
              for e in video_dataset(tmp_path / "shards", "test")}
    assert labels == {"v2": 0, "v3": 0}


# --- two runs into one folder; unique temporary names ---

def test_second_prepare_into_a_busy_folder_is_refused(video_folder, tmp_path):
    from kvlrp.infra.folder_lock import FolderBusyError, folder_lock

    out = tmp_path / "shards"
    with folder_lock(out, "kvlrp prepare"):
        with pytest.raises(FolderBusyError) as err:
            prepare_shards(video_folder / "manifest.csv", out, workers=0, progress=False)
        message = _one_line(str(err.value))
        assert "another kvlrp prepare run is writing into" in message
        assert "another output folder" in message
        assert not list(out.glob("*.tfrecord"))  # the refused run wrote nothing
    result = prepare_shards(video_folder / "manifest.csv", out, workers=0, progress=False)
    assert result.n_videos == 4  # the lock is released with its holder
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_lock_held_by_another_process_and_released_when_it_dies(video_folder, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "shards"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time; "
         f"fd = os.open({str(out / '.kvlrp.lock')!r}, os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match="another kvlrp prepare run"):
            prepare_shards(video_folder / "manifest.csv", out, workers=0, progress=False)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert prepare_shards(video_folder / "manifest.csv", out, workers=0,
                          progress=False).n_videos == 4


def test_shard_temporary_files_have_unique_names(tmp_path, monkeypatch):
    import tensorflow as tf

    from kvlrp.data.shards import folder as shards

    seen = []
    real = tf.io.TFRecordWriter

    def recording(path, *args, **kwargs):  # the real writer; its file names are recorded
        seen.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(tf.io, "TFRecordWriter", recording)
    for _ in range(2):
        shards._write_shard(tf, tmp_path / "train-00000-of-00001.tfrecord", [b"x"])
    assert len(set(seen)) == 2 and all(n.startswith(".train-00000") for n in seen)
    assert [p.name for p in tmp_path.iterdir()] == ["train-00000-of-00001.tfrecord"]


# --- bounds on sizes ---

@pytest.mark.parametrize("option, value, words", [
    ("--short-side", "100000", "short_side must be in 1..2160"),
    ("--workers", "-3", "argument --workers: expected an int >= 0"),
    ("--videos-per-shard", "0", "argument --videos-per-shard: expected a positive int"),
])
def test_prepare_sizes_are_bounded(video_folder, tmp_path, capsys, option, value, words):
    out = tmp_path / "shards"
    assert main(["prepare", str(video_folder / "manifest.csv"), "--out", str(out), option, value,
                 "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert words in line and value in line
    assert not out.exists()


# --- decode workers that die ---

def test_a_killed_worker_becomes_an_error_for_its_item_only():
    from process_targets import square_or_die_on_three

    from kvlrp.data.shards.robust_pool import ordered_map

    results = list(ordered_map(square_or_die_on_three, range(6), workers=2,
                               on_death=lambda x: f"died on {x}"))
    assert results == [0, 1, 4, "died on 3", 16, 25]


def test_prepare_lists_a_video_whose_worker_died(video_folder):
    from kvlrp.data.shards.decode_worker import DecodeTask
    from kvlrp.data.shards.folder import _died

    decoded = _died(DecodeTask(str(video_folder / "v0.mp4"), "jpeg", 95, None, False))
    assert decoded.error.startswith("the decode worker died while decoding this video")
    assert "--short-side" in decoded.error


def test_prepare_finishes_when_a_real_decode_worker_is_killed(synthetic_manifest,
                                                             synthetic_shards, tmp_path,
                                                             monkeypatch, capsys, caplog):
    """End to end: `kvlrp prepare --workers 2`, one video's worker process SIGKILLed (each
    time it is tried, so also when retried alone); the rest of the shards are whole."""
    import logging

    import tensorflow as tf

    from kvlrp.data.shards.decode_worker import KILL_WORKER_ON_ENV

    table = pd.read_csv(synthetic_manifest, dtype=str)
    victim = table[table["split"] == "train"].iloc[3]  # mid-shard, other videos on each side
    name = os.path.basename(victim["path"])
    monkeypatch.setenv(KILL_WORKER_ON_ENV, name)
    out = tmp_path / "shards"
    with caplog.at_level(logging.WARNING, logger="kvlrp.data.shards.robust_pool"):
        code = main(["prepare", str(synthetic_manifest), "--out", str(out), "--workers", "2",
                     "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"{len(table) - 1} videos in shards; 1 skipped" in printed
    assert "worker process died" in caplog.text  # a real process died, not a decode error
    skipped = pd.read_csv(out / "skipped.csv")
    assert skipped["path"].map(os.path.basename).tolist() == [name]
    assert skipped["reason"][0].startswith("the decode worker died while decoding this video")
    assert f"skipped {skipped['path'][0]}: the decode worker died" in printed
    # every other video: the same index row and the same example as an undisturbed run
    expected = read_index(synthetic_shards)
    expected = expected[expected["video_id"] != victim["video_id"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(read_index(out), expected)

    def examples(folder):
        """video_id -> the serialized example, from every shard file of ``folder``."""
        out = {}
        for f in sorted(folder.glob("*.tfrecord")):
            for raw in tf.data.TFRecordDataset(str(f)).as_numpy_iterator():
                feature = tf.train.Example.FromString(raw).features.feature
                out[feature["video_id"].bytes_list.value[0].decode()] = raw
        return out

    undisturbed = examples(synthetic_shards)
    del undisturbed[victim["video_id"]]
    assert examples(out) == undisturbed  # labels, sizes and every encoded frame
    # the hook never kills the process that started the pool: in-process, the video is decoded
    again = prepare_shards(synthetic_manifest, tmp_path / "in_process", workers=0,
                           progress=False)
    assert again.n_videos == len(table) and again.skipped.empty


# --- output names built from data ---

@pytest.mark.parametrize("vid", ["../../../x", "a/b", "/etc/passwd", ".hidden", "ok-id_1.2"])
def test_names_from_data_stay_flat_and_inside(tmp_path, vid):
    from kvlrp.infra.safe_paths import confined, safe_part

    name = safe_part(vid)
    assert "/" not in name and not name.startswith(".") and name
    path = confined(tmp_path, f"step1_{name}_clip0.png")
    assert path.parent == tmp_path
    if vid == "ok-id_1.2":
        assert name == vid  # clean ids are kept as they are
    with pytest.raises(ValueError, match="would leave the output folder"):
        confined(tmp_path, f"{vid}.png" if "/" in vid else "../x.png")


def test_distinct_ids_never_share_a_name():
    from kvlrp.infra.safe_paths import safe_part

    ids = ["a/b", "a_b", "a?b", "a b", "../a_b"]
    assert len({safe_part(i) for i in ids}) == len(ids)


def test_heatmaps_of_a_traversal_id_are_written_inside_their_folder(tmp_path):
    from kvlrp.analysis.explain.run import _heatmaps

    rng = np.random.default_rng(0)
    folder = tmp_path / "out" / "heatmaps"
    folder.mkdir(parents=True)
    kept = [{"clip": rng.uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32),
             "relevance": rng.uniform(0, 1, (4, 8, 8, 3)).astype(np.float32),
             "shares": np.full(4, 0.25), "target": 0, "video_id": vid, "clip_index": 0,
             "label": "a", "predicted": "a", "step": 1}
            for vid in ("../../../escaped", "sub/dir")]
    files = _heatmaps(kept, folder, 2, (-1.0, 1.0), ["a"])
    assert len(files) == 4 and all(f.parent == folder and f.is_file() for f in files)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        f.name for f in files)


# --- heatmaps and plots written atomically ---

def test_heatmaps_replace_a_file_by_rename_and_leave_no_temporary(tmp_path):
    from kvlrp.analysis.explain.heatmaps import heatmap_gif, heatmap_strip

    rng = np.random.default_rng(0)
    clip = rng.uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)
    rel = rng.uniform(0, 1, clip.shape).astype(np.float32)
    for write, name in ((heatmap_strip, "h.png"), (heatmap_gif, "h.gif")):
        target = tmp_path / name
        target.write_bytes(b"old")
        before = target.stat().st_ino
        write(clip, rel, target)
        assert target.stat().st_ino != before  # a new file renamed over the old one
        assert target.read_bytes()[:3] in (b"\x89PN", b"GIF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.gif", "h.png"]


def test_a_failing_plot_keeps_the_old_file_whole(tmp_path):
    from kvlrp.analysis.report.plots import _pyplot, _save

    plt = _pyplot()
    target = tmp_path / "plot.nosuchformat"
    target.write_bytes(b"the previous plot")
    fig = plt.figure()
    with pytest.raises(ValueError):
        _save(fig, target)  # matplotlib refuses the format midway
    assert target.read_bytes() == b"the previous plot"
    assert [p.name for p in tmp_path.iterdir()] == ["plot.nosuchformat"]
    fig = plt.figure()
    plt.plot([0, 1], [1, 0])
    assert _save(fig, tmp_path / "ok.png").read_bytes()[:4] == b"\x89PNG"
