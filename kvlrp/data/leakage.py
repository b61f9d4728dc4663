"""Refuse manifests that list one file under two video ids (the same video in train and test
would leak test data into training)."""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict

import pandas as pd

from kvlrp.data.manifest import ManifestError

_CHUNK = 1 << 20


def check_leakage(table: pd.DataFrame) -> None:
    """Raise if two rows of a manifest table name the same file (same path after following
    symlinks, or byte-identical content).

    Raises
    ------
    ManifestError
        One line naming the video ids (and their splits) that share a file.
    """
    groups: dict[object, list[int]] = defaultdict(list)
    by_size: dict[int, list[int]] = defaultdict(list)
    paths = table["path"].tolist()
    for i, path in enumerate(paths):
        try:
            st = os.stat(path)
        except OSError:  # missing files are reported by prepare, in skipped.csv
            continue
        groups[(st.st_dev, st.st_ino)].append(i)
        by_size[st.st_size].append(i)
    for members in by_size.values():
        if len(members) < 2:
            continue
        inodes = {(os.stat(paths[i]).st_dev, os.stat(paths[i]).st_ino) for i in members}
        if len(inodes) < 2:
            continue
        for i in members:
            groups[("sha1", _digest(paths[i]))].append(i)
    for members in groups.values():
        if len(members) > 1:
            who = ", ".join(f"{table['video_id'].iloc[i]!r} ({table['split'].iloc[i]})"
                            for i in members[:4])
            raise ManifestError(
                f"the manifest lists one file under {len(members)} video ids: {who}; each "
                "video may appear once (a video in two splits leaks test data into training)")


def _digest(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
