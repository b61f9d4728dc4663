"""Manifest validation: clear errors for malformed manifests, defaults for optional columns."""

from __future__ import annotations

import pandas as pd
import pytest

from kvlrp.data.manifests.manifest import ManifestError, read_manifest
from kvlrp.data.manifests.splits import stratified_splits


def write(tmp_path, text: str):
    path = tmp_path / "manifest.csv"
    path.write_text(text)
    return path


def test_paths_resolved_and_optional_columns_filled(tmp_path):
    rows = ["path,label"] + [f"clips/{c}_{k}.mp4,{c}" for c in ("b", "a") for k in range(5)]
    manifest = read_manifest(write(tmp_path, "\n".join(rows) + "\n"))
    table = manifest.table
    assert manifest.classes == ["a", "b"] and manifest.label_index("b") == 1
    assert list(table.columns) == ["path", "label", "split", "video_id", "group"]
    assert table["path"].iloc[0] == str((tmp_path / "clips/b_0.mp4").resolve())
    assert table["video_id"].iloc[0] == "clips/b_0"
    for label in ("a", "b"):  # stratified: 1 val, 1 test, 3 train per class
        counts = table[table["label"] == label]["split"].value_counts().to_dict()
        assert counts == {"train": 3, "val": 1, "test": 1}


def test_split_and_id_columns_are_kept(tmp_path):
    manifest = read_manifest(write(tmp_path, "path,label,split,video_id\n/abs/x.avi,k,Test,v1\n"))
    assert manifest.table.to_dict("records") == [
        {"path": "/abs/x.avi", "label": "k", "split": "test", "video_id": "v1",
         "group": ""}]


def test_missing_columns(tmp_path):
    with pytest.raises(ManifestError, match=r"lacks column\(s\) \['label'\].*needs 'path,label'"):
        read_manifest(write(tmp_path, "path,class\na.mp4,x\n"))


def test_unknown_split_names_list_the_allowed_ones(tmp_path):
    with pytest.raises(ManifestError, match=r"unknown split name\(s\) \['dev'\]; allowed: train"):
        read_manifest(write(tmp_path, "path,label,split\na.mp4,x,train\nb.mp4,x,dev\n"))


def test_empty_labels_and_duplicate_ids(tmp_path):
    with pytest.raises(ManifestError, match=r"empty 'label' in data row\(s\) 2"):
        read_manifest(write(tmp_path, "path,label\na.mp4,x\nb.mp4,\n"))
    with pytest.raises(ManifestError, match=r"repeats video_id\(s\) \['v'\]"):
        read_manifest(write(tmp_path, "path,label,video_id\na.mp4,x,v\nb.mp4,x,v\n"))


def test_missing_or_empty_manifest(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "none.csv")
    with pytest.raises(ManifestError, match="not a readable CSV|has no rows"):
        read_manifest(write(tmp_path, ""))
    with pytest.raises(ManifestError, match="has no rows"):
        read_manifest(write(tmp_path, "path,label\n"))


def test_stratified_splits_are_deterministic_and_stratified():
    labels = ["a"] * 10 + ["b"] * 3
    keys = [f"k{i:02d}" for i in range(13)]
    first = stratified_splits(labels, keys, seed=1)
    assert first == stratified_splits(labels, keys, seed=1)
    assert first != stratified_splits(labels, keys, seed=2)
    table = pd.DataFrame({"label": labels, "split": first})
    assert table.groupby("label")["split"].nunique().to_dict() == {"a": 3, "b": 3}
