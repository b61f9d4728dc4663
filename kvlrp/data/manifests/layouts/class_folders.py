"""``class-folders`` layout: ``ROOT/<class>/<video>`` (videos may sit in sub-folders)."""

from __future__ import annotations

import logging
from pathlib import Path

from kvlrp.data.manifests.layouts.common import (
    LayoutError,
    LayoutResult,
    check_regex,
    group_of,
    is_video,
    make_table,
    video_id,
)

logger = logging.getLogger(__name__)


def class_folders(root: str | Path, group_regex: str | None = None) -> LayoutResult:
    """One row per video file under ``ROOT/<class>/``; the class folder's name is the label.

    Parameters
    ----------
    root
        The dataset folder.
    group_regex
        Regular expression searched in each file name (its first group, else the match, is
        the video's group, e.g. ``_g(\\d+)_`` for UCF101 names or ``^(.*)_seg\\d+`` for segments
        cut from one source).

    Raises
    ------
    LayoutError
        ``root`` is not a folder or holds no class folder with videos.
    """
    root = Path(root).resolve()
    check_regex(group_regex)
    if not root.is_dir():
        raise LayoutError(f"dataset folder not found: {root}")
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        videos = sorted(p for p in folder.rglob("*") if is_video(p))
        if not videos:
            others = sum(1 for p in folder.rglob("*") if p.is_file())
            logger.warning("class folder %s holds no videos%s: left out (no class %r)", folder,
                           f" ({others} other file(s))" if others else "", folder.name)
        for path in videos:
            rows.append({"path": str(path), "label": folder.name, "split": "",
                         "video_id": video_id(root, path),
                         "group": group_of(path.name, group_regex)})
    if not rows:
        raise LayoutError(
            f"{root} holds no videos in class folders; expected ROOT/<class>/<video> "
            "(e.g. ROOT/basketball/clip1.mp4)"
        )
    return LayoutResult(make_table(rows))
