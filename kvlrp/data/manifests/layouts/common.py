"""What every layout reader shares: the result type, video file search, group-aware splits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kvlrp.data.manifests.splits import group_splits

#: File suffixes taken as videos when a layout scans folders.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv")

#: Columns of a layout's manifest table (paths absolute).
COLUMNS = ["path", "label", "split", "video_id", "group"]


class LayoutError(ValueError):
    """A dataset folder does not have the layout asked for; the message says what is missing."""


@dataclass
class LayoutResult:
    """A manifest table built from a dataset folder, and the listed videos that are missing.

    Attributes
    ----------
    table
        ``path`` (absolute), ``label``, ``split`` (train/val/test or empty: assigned later),
        ``video_id`` (unique), ``group`` (empty: no group).
    skipped
        ``path, reason`` of listed videos not found on disk.
    notes
        One-line notes (e.g. how val was made) for the command to print.
    """

    table: pd.DataFrame
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["path",
                                                                                "reason"]))
    notes: list[str] = field(default_factory=list)


def is_video(path: Path) -> bool:
    """Whether ``path`` is a file with a video suffix (not hidden)."""
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES and not path.name.startswith(
        ".")


def video_id(root: Path, path: Path) -> str:
    """Id of a video: its path relative to ``root`` without suffix, ``/``-separated."""
    return path.relative_to(root).with_suffix("").as_posix()


def group_of(name: str, pattern: str | None) -> str:
    """Group key of a video name by ``pattern`` (its first group, else the whole match);
    empty without a pattern or a match."""
    if not pattern:
        return ""
    match = re.search(pattern, name)
    if match is None:
        return ""
    return match.group(1) if match.groups() else match.group(0)


def check_regex(pattern: str | None) -> None:
    """Raise :class:`LayoutError` for a pattern that does not compile."""
    if pattern:
        try:
            re.compile(pattern)
        except re.error as err:
            raise LayoutError(f"--group-regex {pattern!r} is not a regular expression: {err}") \
                from err


def make_table(rows: list[dict]) -> pd.DataFrame:
    """A manifest table with :data:`COLUMNS` from row dicts (missing keys empty)."""
    table = pd.DataFrame(rows, columns=COLUMNS).fillna("")
    return table.astype(str)


def carve_val(table: pd.DataFrame, fraction: float, seed: int = 0) -> pd.DataFrame:
    """Move ``fraction`` of each class's train videos to val, whole groups at a time."""
    table = table.copy()
    train = table.index[table["split"] == "train"]
    if len(train) == 0 or fraction <= 0:
        return table
    sub = table.loc[train]
    splits = group_splits(sub["label"].tolist(), sub["group"].tolist(), sub["path"].tolist(),
                          {"val": fraction}, seed=seed)
    table.loc[train, "split"] = splits
    return table


def missing(path: Path, where: str) -> dict:
    """A ``skipped.csv`` row for a listed video that is not on disk."""
    return {"path": str(path), "reason": f"listed in {where} but not found"}


def skipped_table(rows: list[dict]) -> pd.DataFrame:
    """``path, reason`` table from rows."""
    return pd.DataFrame(rows, columns=["path", "reason"])


def read_lines(path: Path) -> list[list[str]]:
    """Whitespace-split non-empty, non-comment lines of a text file."""
    if not path.is_file():
        raise LayoutError(f"list file not found: {path}")
    return [line.split() for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
