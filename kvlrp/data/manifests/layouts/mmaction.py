"""``mmaction`` layout: MMAction2 video lists, one ``path label`` line per video (paths relative
to ROOT, integer labels), one list per split."""

from __future__ import annotations

from pathlib import Path

from kvlrp.data.manifests.layouts.common import (
    LayoutError,
    LayoutResult,
    make_table,
    missing,
    read_lines,
    skipped_table,
)
from kvlrp.data.manifests.splits import SPLITS


def default_lists(root: Path) -> dict[str, Path]:
    """``*train*.txt``, ``*val*.txt``, ``*test*.txt`` directly in ROOT."""
    found = {}
    for split in SPLITS:
        matches = sorted(root.glob(f"*{split}*.txt"))
        if len(matches) > 1:
            raise LayoutError(f"several {split} lists in {root}: {[m.name for m in matches]}; "
                              f"pass --list {split}=FILE")
        if matches:
            found[split] = matches[0]
    return found


def mmaction(root: str | Path, lists: dict[str, str | Path] | None = None,
             classes: list[str] | None = None) -> LayoutResult:
    """Rows of MMAction2 video lists.

    Parameters
    ----------
    root
        ``data_prefix``: list paths are relative to it.
    lists
        Split name -> list file (default: :func:`default_lists`).
    classes
        Class names by label index (default: the label numbers, as strings).
    """
    root = Path(root).resolve()
    lists = {k: Path(v) for k, v in lists.items()} if lists else default_lists(root)
    bad = sorted(set(lists) - set(SPLITS))
    if bad:
        raise LayoutError(f"unknown split name(s) {bad} for --list; use {', '.join(SPLITS)}")
    if not lists:
        raise LayoutError(f"no video list (*train*.txt, *val*.txt, *test*.txt) in {root}; pass "
                          "--list train=FILE --list test=FILE")
    rows, skipped = [], []
    for split, file in lists.items():
        for number, parts in enumerate(read_lines(file), start=1):
            if len(parts) < 2 or not parts[-1].lstrip("-").isdigit():
                raise LayoutError(f"{file} line {number}: expected 'path label' with an int "
                                  f"label, got {' '.join(parts)!r}")
            index = int(parts[-1])
            if classes is not None and not 0 <= index < len(classes):
                raise LayoutError(f"{file} line {number}: label {index} outside the "
                                  f"{len(classes)} classes given")
            path = root / parts[0]
            if not path.is_file():
                skipped.append(missing(path, file.name))
                continue
            rows.append({"path": str(path), "label": classes[index] if classes else str(index),
                         "split": split, "video_id": Path(parts[0]).with_suffix("").as_posix(),
                         "group": ""})
    if not rows:
        raise LayoutError(f"none of the videos in the lists {[str(f) for f in lists.values()]} "
                          f"is under {root}")
    return LayoutResult(make_table(rows), skipped_table(skipped))
