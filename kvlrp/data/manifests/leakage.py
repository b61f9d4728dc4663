"""Refuse manifests that list one video file in two splits under two video ids (the same video
in train and test would leak test data into training)."""

from __future__ import annotations

import hashlib
import os
import stat
from collections import defaultdict

import pandas as pd

from kvlrp.data.manifests.manifest import ManifestError

_CHUNK = 1 << 20


def check_leakage(table: pd.DataFrame) -> None:
    """Raise if rows of two different splits name the same file (the same path after following
    symlinks, or byte-identical content).

    Empty and missing files are left to ``prepare`` (listed in ``skipped.csv``); frame folders
    are compared by identity only. Duplicates inside one split are not leakage and pass.

    Raises
    ------
    ManifestError
        One line naming the video ids (and their splits) that share a file.
    """
    if "split" not in table.columns or table["split"].nunique() < 2:
        return
    groups: dict[object, list[int]] = defaultdict(list)
    by_size: dict[int, list[int]] = defaultdict(list)
    paths = table["path"].tolist()
    splits = table["split"].astype(str).tolist()
    for i, path in enumerate(paths):
        try:
            st = os.stat(path)
        except OSError:  # missing files are reported by prepare, in skipped.csv
            continue
        groups[("inode", st.st_dev, st.st_ino)].append(i)
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            by_size[st.st_size].append(i)
    for members in by_size.values():
        if len({splits[i] for i in members}) > 1:  # only then can content leak across splits
            for i in members:
                try:
                    groups[("sha1", _digest(paths[i]))].append(i)
                except OSError:
                    continue
    for members in groups.values():
        if len({splits[i] for i in members}) > 1:
            who = ", ".join(f"{table['video_id'].iloc[i]!r} ({splits[i]})" for i in members[:4])
            raise ManifestError(
                f"the manifest lists one video file under {len(members)} video ids in different "
                f"splits: {who}; list each video once, in one split (a video in two splits "
                "leaks test data into training)")


def _digest(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
