"""prepare_shards / kvlrp prepare: bad videos listed in skipped.csv, resumable, parallel."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from repo_paths import REPO_ROOT

from kvlrp.data.shards.folder import INDEX_COLUMNS, prepare_shards, read_index
from kvlrp.video import write_video


@pytest.fixture(scope="module")
def mixed_manifest(tmp_path_factory):
    """Four good videos (two classes, 2 containers) and four bad ones, with splits."""
    root = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(0)
    rows = []
    for k in range(4):
        name = f"good{k}.{'mp4' if k % 2 else 'mkv'}"
        write_video(root / name, rng.integers(0, 256, (10 + k, 16, 24, 3), dtype=np.uint8))
        rows.append((name, "ab"[k % 2], "train" if k < 2 else "val"))
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.mp4").write_text("not a video\n")
    full = root / "good0.mkv"
    (root / "cut.mkv").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    rows += [("empty.mp4", "a", "train"), ("notes.mp4", "b", "train"),
             ("missing.mp4", "a", "val"), ("cut.mkv", "a", "train")]
    table = pd.DataFrame(rows, columns=["path", "label", "split"])
    table.to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def test_bad_videos_are_skipped_with_reasons(mixed_manifest, tmp_path):
    result = prepare_shards(mixed_manifest, tmp_path, workers=0, progress=False,
                            videos_per_shard=3)
    assert result.n_videos == 4
    reasons = dict(zip(result.skipped["path"].map(lambda p: p.rsplit("/", 1)[-1]),
                       result.skipped["reason"]))
    assert set(reasons) == {"empty.mp4", "notes.mp4", "missing.mp4", "cut.mkv"}
    assert reasons["empty.mp4"] == "empty file (0 bytes)"
    assert "text file" in reasons["notes.mp4"]
    assert reasons["missing.mp4"] == "file not found"
    assert "truncated" in reasons["cut.mkv"]
    on_disk = pd.read_csv(tmp_path / "skipped.csv")
    assert list(on_disk.columns) == ["path", "reason"] and len(on_disk) == 4
    index = read_index(tmp_path)
    assert list(index.columns) == INDEX_COLUMNS
    assert sorted(index["video_id"]) == ["good0", "good1", "good2", "good3"]
    assert index.set_index("video_id")["n_frames"].to_dict() == {
        "good0": 10, "good1": 11, "good2": 12, "good3": 13}
    assert (index["height"] == 16).all() and (index["width"] == 24).all()
    assert json.loads((tmp_path / "classes.json").read_text()) == ["a", "b"]
    assert index.set_index("video_id")["label_index"].to_dict()["good1"] == 1
    for shard in index["shard"]:
        assert (tmp_path / shard).is_file() and shard.split("-")[0] in {"train", "val"}


def test_rerun_reuses_finished_shards(mixed_manifest, tmp_path):
    first = prepare_shards(mixed_manifest, tmp_path, workers=0, progress=False,
                           videos_per_shard=2)
    shards = sorted(p.name for p in tmp_path.glob("*.tfrecord"))
    stamps = {name: (tmp_path / name).stat().st_mtime_ns for name in shards}
    again = prepare_shards(mixed_manifest, tmp_path, workers=0, progress=False,
                           videos_per_shard=2)
    assert again.n_reused_shards == len(json.loads(
        (tmp_path / "progress.json").read_text())["shards"])
    assert {name: (tmp_path / name).stat().st_mtime_ns for name in shards} == stamps
    # an interrupted run leaves a shard missing: only that one is rebuilt
    (tmp_path / shards[0]).unlink()
    third = prepare_shards(mixed_manifest, tmp_path, workers=0, progress=False,
                           videos_per_shard=2)
    assert third.n_reused_shards == again.n_reused_shards - 1
    assert (tmp_path / shards[0]).is_file()
    assert read_index(tmp_path).equals(read_index(tmp_path))
    assert third.n_videos == first.n_videos and len(third.skipped) == len(first.skipped)
    with pytest.raises(ValueError, match="built with other options"):
        prepare_shards(mixed_manifest, tmp_path, encoding="raw", workers=0, progress=False,
                       videos_per_shard=2)


def test_progress_is_a_resume_state_and_names_the_options_that_changed(mixed_manifest,
                                                                       tmp_path, caplog):
    import logging

    prepare_shards(mixed_manifest, tmp_path, workers=0, progress=False, videos_per_shard=2)
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress["settings"]["encoding"] == "jpeg"
    assert progress["settings"]["classes"] == ["a", "b"]
    with pytest.raises(ValueError) as err:
        prepare_shards(mixed_manifest, tmp_path, short_side=8, jpeg_quality=80, workers=0,
                       progress=False, videos_per_shard=2)
    assert "built with other options" in str(err.value)
    assert "jpeg_quality: 95 -> 80, short_side: None -> 8" in str(err.value)
    assert "use a new --out folder" in str(err.value)
    # a folder of the first layout ("config" in place of "settings") is still reused whole
    old = {"config": progress["settings"], "shards": progress["shards"]}
    (tmp_path / "progress.json").write_text(json.dumps(old))
    again = prepare_shards(mixed_manifest, tmp_path, workers=0, progress=False,
                           videos_per_shard=2)
    assert again.n_reused_shards == len(progress["shards"])
    # an unreadable progress file (a truncated write of another tool) rebuilds every shard
    (tmp_path / "progress.json").write_text('{"settings": {"enc')
    with caplog.at_level(logging.WARNING, logger="kvlrp.data.shards.shard_progress"):
        rebuilt = prepare_shards(mixed_manifest, tmp_path, workers=0, progress=False,
                                 videos_per_shard=2)
    assert rebuilt.n_reused_shards == 0 and rebuilt.n_videos == again.n_videos
    assert "progress.json is unreadable" in caplog.text and "built again" in caplog.text
    assert json.loads((tmp_path / "progress.json").read_text()) == progress


def test_changed_manifest_replaces_stale_shards(mixed_manifest, tmp_path):
    prepare_shards(mixed_manifest, tmp_path, workers=0, progress=False, videos_per_shard=2)
    smaller = tmp_path / "smaller.csv"
    table = pd.read_csv(mixed_manifest)
    table["path"] = [str(mixed_manifest.parent / p) for p in table["path"]]
    table[table["path"].str.contains("good")].to_csv(smaller, index=False)
    result = prepare_shards(smaller, tmp_path, workers=0, progress=False, videos_per_shard=2,
                            allow_outside_root=True)  # its paths point to another folder
    assert result.n_videos == 4 and result.skipped.empty
    on_disk = {p.name for p in tmp_path.glob("*.tfrecord")}
    assert on_disk == set(read_index(tmp_path)["shard"])


def test_process_pool_gives_the_same_shards(synthetic_manifest, synthetic_shards, tmp_path):
    result = prepare_shards(synthetic_manifest, tmp_path, workers=2, progress=False)
    assert result.n_videos == 16 and result.skipped.empty
    pd.testing.assert_frame_equal(read_index(tmp_path), read_index(synthetic_shards))


def test_shards_are_the_same_bytes_from_two_processes(synthetic_manifest, tmp_path):
    """The TFRecord files do not depend on the process that wrote them (protobuf writes the
    feature map in a per-process order unless asked for deterministic bytes)."""
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"shards{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "kvlrp", "prepare", str(synthetic_manifest),
                        "--out", str(out), "--workers", "0"], check=True, env=env,
                       capture_output=True, cwd=REPO_ROOT)
        outs.append(out)
    files = sorted(p.name for p in outs[0].glob("*.tfrecord"))
    assert files and files == sorted(p.name for p in outs[1].glob("*.tfrecord"))
    for name in files:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_short_side_resizes_once(synthetic_manifest, tmp_path):
    prepare_shards(synthetic_manifest, tmp_path, short_side=20, workers=0, progress=False)
    index = read_index(tmp_path)
    assert (index["height"] == 20).all() and (index["width"] == 20).all()


def test_option_errors(synthetic_manifest, tmp_path):
    with pytest.raises(ValueError, match="unknown frame encoding 'png'"):
        prepare_shards(synthetic_manifest, tmp_path, encoding="png")
    with pytest.raises(ValueError, match="jpeg_quality must be in 1..95"):
        prepare_shards(synthetic_manifest, tmp_path, jpeg_quality=100)


@pytest.mark.parametrize("bad, words", [
    ({"encoding": "png"}, "unknown frame encoding 'png'"),
    ({"jpeg_quality": 0}, "jpeg_quality must be in 1..95, got 0"),
    ({"short_side": 0}, "short_side must be in 1..2160 or None, got 0"),
    ({"short_side": 4000}, "short_side must be in 1..2160 or None, got 4000"),
    ({"videos_per_shard": 0}, "videos_per_shard must be in 1..100000, got 0"),
    ({"fps": -5.0}, "fps: a frame rate must be a positive finite number, got -5.0"),
])
def test_both_runners_refuse_bad_options_alike(synthetic_manifest, tmp_path, bad, words):
    from kvlrp.data.shards.beam_prepare import prepare_shards_beam

    for prepare in (prepare_shards, prepare_shards_beam):
        with pytest.raises(ValueError, match=words):
            prepare(synthetic_manifest, tmp_path / "out", **bad)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_prepare_command_prints_where_outputs_went(mixed_manifest, tmp_path, capsys):
    from kvlrp.cli import main

    out = tmp_path / "shards"
    assert main(["prepare", str(mixed_manifest), "--out", str(out), "--workers", "0",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "4 videos in shards; 4 skipped" in printed
    assert f"shards: {out}" in printed and str(out / "skipped.csv") in printed
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label,split\na.mp4,x,holdout\n")
    assert main(["prepare", str(bad), "--out", str(out)]) == 2
    assert "allowed: train, val, test" in capsys.readouterr().err
