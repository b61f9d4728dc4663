"""Manifests from dataset layouts (class folders, UCF101, HMDB51, Kinetics, MMAction2) on tiny
generated trees of real video files, and on the real clips arranged as class folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kvlrp.cli import main
from kvlrp.data.manifests.layouts import LayoutError, build_manifest, write_manifest
from kvlrp.data.manifests.manifest import read_manifest
from kvlrp.data.manifests.splits import group_splits
from kvlrp.video import write_video


def _video(path: Path, frames: int = 4, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.full((frames, 16, 16, 3), value, np.uint8)
    write_video(path, data, fps=10)
    return path


def _assert_groups_whole(table: pd.DataFrame) -> None:
    grouped = table[table["group"] != ""]
    assert (grouped.groupby("group")["split"].nunique() == 1).all()


@pytest.fixture(scope="module")
def ucf_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ucf")
    classes = ["ApplyEyeMakeup", "Basketball"]
    (root / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    train, test = [], []
    for k, cls in enumerate(classes):
        for g in range(1, 7):
            for c in (1, 2):
                rel = f"{cls}/v_{cls}_g{g:02d}_c{c:02d}.avi"
                _video(root / rel, value=40 * g)
                (test if g <= 2 else train).append(f"{rel} {k + 1}")
    train.append("Basketball/v_Basketball_g09_c01.avi 2")  # listed, not on disk
    (root / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (root / "testlist01.txt").write_text("\n".join(t.split()[0] for t in test) + "\n")
    return root


def test_class_folders_group_regex_keeps_groups_whole(tmp_path):
    for cls in ("run", "jump"):
        for source in range(5):
            for seg in range(3):
                _video(tmp_path / cls / f"{cls}{source}_seg{seg}.mp4")
    result = build_manifest("class-folders", tmp_path, group_regex=r"^(.*)_seg\d+")
    table = result.table
    assert len(table) == 30 and set(table["label"]) == {"run", "jump"}
    assert table["group"].nunique() == 10
    assert set(table["split"]) == {"train", "val", "test"}
    _assert_groups_whole(table)
    # the same tree through the CSV: a manifest with a group column but no split
    out, skipped = write_manifest(result, tmp_path / "m" / "manifest.csv")
    assert pd.read_csv(skipped).empty
    again = read_manifest(out)
    assert sorted(again.table["path"]) == sorted(table["path"])
    assert (again.table.set_index("video_id")["split"]
            == table.set_index("video_id")["split"]).all()


def test_group_splits_never_cut_a_group():
    rng = np.random.default_rng(3)
    labels = [f"c{rng.integers(3)}" for _ in range(200)]
    groups = [f"g{rng.integers(25)}" for _ in range(200)]
    keys = [f"v{i}" for i in range(200)]
    splits = group_splits(labels, groups, keys, {"val": 0.2, "test": 0.2})
    table = pd.DataFrame({"group": groups, "split": splits})
    assert (table.groupby("group")["split"].nunique() == 1).all()
    assert set(splits) == {"train", "val", "test"}


def test_manifest_with_cut_group_is_refused(tmp_path):
    _video(tmp_path / "a.mp4")
    _video(tmp_path / "b.mp4")
    (tmp_path / "m.csv").write_text("path,label,split,group\na.mp4,x,train,g1\nb.mp4,y,test,g1\n")
    with pytest.raises(ValueError, match=r"group\(s\) \['g1'\] have videos in several splits"):
        read_manifest(tmp_path / "m.csv")


def test_ucf101_split_groups_and_missing(ucf_tree):
    result = build_manifest("ucf101", ucf_tree, split=1)
    table = result.table
    assert len(table) == 24
    assert set(table.loc[table["split"] == "test", "group"]) == {"g01", "g02"}
    # val carved from train by whole groups (g03..g06 of each class)
    assert (table["split"] == "val").sum() > 0
    assert set(table.loc[table["split"] == "val", "group"]) <= {"g03", "g04", "g05", "g06"}
    _assert_groups_whole(table)
    assert len(result.skipped) == 1
    assert result.skipped["path"][0].endswith("v_Basketball_g09_c01.avi")
    assert "trainlist01.txt" in result.skipped["reason"][0]
    with pytest.raises(LayoutError, match="splits 1, 2 and 3"):
        build_manifest("ucf101", ucf_tree, split=4)


def test_ucf101_cli_writes_manifest_and_skipped(ucf_tree, tmp_path, capsys):
    out = tmp_path / "manifest.csv"
    assert main(["manifest", "ucf101", str(ucf_tree), "--split", "1", "--out", str(out),
                 "--val-fraction", "0"]) == 0
    printed = capsys.readouterr().out
    assert "24 videos of 2 classes (16 train, 0 val, 8 test); 6 groups; 1 listed but missing" \
        in printed
    table = pd.read_csv(out)
    assert list(table.columns) == ["path", "label", "split", "video_id", "group"]
    assert (tmp_path / table["path"][0]).resolve().is_file()  # relative to the manifest
    assert len(pd.read_csv(tmp_path / "skipped.csv")) == 1


def test_hmdb51_tags(tmp_path):
    for name in ("a1.avi", "a2.avi", "a3.avi"):  # a4.avi is listed but missing
        _video(tmp_path / "brush_hair" / name)
    _video(tmp_path / "clap" / "b1.avi")
    _video(tmp_path / "clap" / "b2.avi")
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_text("a1.avi 1 \na2.avi 2 \na3.avi 0 \n"
                                                       "a4.avi 1 \n")
    (splits / "clap_test_split1.txt").write_text("b1.avi 1\nb2.avi 2\n")
    result = build_manifest("hmdb51", tmp_path, split=1, val_fraction=0)
    got = result.table.set_index("video_id")["split"].to_dict()
    assert got == {"brush_hair/a1": "train", "brush_hair/a2": "test", "clap/b1": "train",
                   "clap/b2": "test"}
    assert result.skipped["path"].str.endswith("a4.avi").tolist() == [True]


def test_kinetics_file_names_and_youtube_groups(tmp_path):
    rows = [("abseiling", "abc", 10, 20, "train"), ("abseiling", "abc", 30, 40, "train"),
            ("abseiling", "xyz", 0, 10, "validate"), ("archery", "qqq", 5, 15, "test"),
            ("archery", "gone", 1, 11, "train")]
    for label, yid, start, end, split in rows[:-1]:
        _video(tmp_path / split / label / f"{yid}_{start:06d}_{end:06d}.mp4")
    pd.DataFrame(rows, columns=["label", "youtube_id", "time_start", "time_end", "split"]) \
        .to_csv(tmp_path / "kinetics.csv", index=False)
    result = build_manifest("kinetics", tmp_path)
    table = result.table.set_index("video_id")
    assert table.loc["abc_000010_000020", "group"] == "abc"
    assert table.loc["xyz_000000_000010", "split"] == "val"
    assert table.loc["qqq_000005_000015", "label"] == "archery"
    assert result.skipped["path"].str.endswith("gone_000001_000011.mp4").tolist() == [True]


def test_mmaction_lists(tmp_path):
    _video(tmp_path / "videos" / "a.mp4")
    _video(tmp_path / "videos" / "b.mp4")
    (tmp_path / "train_list.txt").write_text("videos/a.mp4 0\nvideos/missing.mp4 1\n")
    (tmp_path / "val_list.txt").write_text("videos/b.mp4 1\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    out = tmp_path / "manifest.csv"
    assert main(["manifest", "mmaction", str(tmp_path), "--out", str(out),
                 "--classes-file", str(tmp_path / "classes.txt")]) == 0
    table = read_manifest(out).table.set_index("video_id")
    assert table.loc["videos/a", "label"] == "cat" and table.loc["videos/b", "split"] == "val"
    assert len(pd.read_csv(tmp_path / "skipped.csv")) == 1
    (tmp_path / "test_list.txt").write_text("videos/a.mp4 cat\n")
    with pytest.raises(LayoutError, match="line 1: expected 'path label'"):
        build_manifest("mmaction", tmp_path)


def test_real_clips_as_class_folders_prepare_root(realvideos_dir, tmp_path, capsys):
    root = tmp_path / "myvideos"
    clips = sorted(p for p in realvideos_dir.iterdir() if p.suffix in (".mp4", ".avi", ".mkv"))
    for k, clip in enumerate(clips):
        cls = "sport" if k % 2 else "household"
        (root / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, root / cls / clip.name)
    out = tmp_path / "manifest.csv"
    assert main(["manifest", "class-folders", str(root), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == len(clips) and set(table["label"]) == {"sport", "household"}
    capsys.readouterr()
    shards = tmp_path / "shards"
    assert main(["prepare", str(root), "--out", str(shards), "--workers", "0",
                 "--short-side", "32", "--no-progress"]) == 0
    assert f"{len(clips)} videos in shards; 0 skipped" in capsys.readouterr().out
    index = pd.read_csv(shards / "index.csv")
    assert sorted(index["label"].unique()) == ["household", "sport"]
