"""``ucf101`` layout: ``classInd.txt``, ``trainlist0N.txt`` and ``testlist0N.txt`` beside (or in a
``ucfTrainTestlist`` folder beside) the class folders ``ROOT/<class>/v_<class>_gXX_cYY.avi``."""

from __future__ import annotations

import re
from pathlib import Path

from kvlrp.data.manifests.layouts.common import (
    LayoutError,
    LayoutResult,
    make_table,
    missing,
    read_lines,
    skipped_table,
)

GROUP_PATTERN = re.compile(r"_g(\d+)_c\d+", re.IGNORECASE)


def _lists_dir(root: Path) -> Path:
    for candidate in (root, root / "ucfTrainTestlist"):
        if (candidate / "classInd.txt").is_file():
            return candidate
    raise LayoutError(f"classInd.txt not found in {root} or {root / 'ucfTrainTestlist'}; the "
                      "ucf101 layout needs classInd.txt, trainlist0N.txt and testlist0N.txt")


def ucf101(root: str | Path, split: int = 1) -> LayoutResult:
    """Official UCF101 split ``split`` (1-3): train and test lists, group ``gXX`` per video.

    Videos listed but missing go to ``skipped``; labels come from the class folder in each
    listed path (``classInd.txt`` fixes the class list).
    """
    root = Path(root).resolve()
    if split not in (1, 2, 3):
        raise LayoutError(f"UCF101 has splits 1, 2 and 3; got --split {split}")
    lists = _lists_dir(root)
    classes = [parts[-1] for parts in read_lines(lists / "classInd.txt")]
    rows, skipped = [], []
    for name, split_name in ((f"trainlist{split:02d}.txt", "train"),
                             (f"testlist{split:02d}.txt", "test")):
        for parts in read_lines(lists / name):
            relative = parts[0].replace("\\", "/")
            label = relative.split("/")[0]
            if label not in classes:
                raise LayoutError(f"{lists / name}: class {label!r} of {relative} is not in "
                                  "classInd.txt")
            path = root / relative
            if not path.is_file():
                skipped.append(missing(path, name))
                continue
            match = GROUP_PATTERN.search(path.name)
            rows.append({"path": str(path), "label": label, "split": split_name,
                         "video_id": Path(relative).with_suffix("").as_posix(),
                         "group": f"g{int(match.group(1)):02d}" if match else ""})
    if not rows:
        raise LayoutError(f"none of the videos listed in {lists} split {split} is under {root}")
    return LayoutResult(make_table(rows), skipped_table(skipped))
