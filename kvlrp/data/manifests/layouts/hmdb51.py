"""``hmdb51`` layout: ``ROOT/<class>/<video>.avi`` and split files ``<class>_test_split<N>.txt``
(lines ``<video>.avi <tag>``, tag 1 train, 2 test, 0 unused), in ROOT or any folder below it."""

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

TAGS = {"0": None, "1": "train", "2": "test"}


def hmdb51(root: str | Path, split: int = 1) -> LayoutResult:
    """Official HMDB51 split ``split`` (1-3); videos tagged 0 are left out."""
    root = Path(root).resolve()
    if split not in (1, 2, 3):
        raise LayoutError(f"HMDB51 has splits 1, 2 and 3; got --split {split}")
    files = sorted(root.rglob(f"*_test_split{split}.txt"))
    if not files:
        raise LayoutError(f"no <class>_test_split{split}.txt file in or below {root}")
    rows, skipped = [], []
    suffix = f"_test_split{split}"
    for file in files:
        label = file.stem[: -len(suffix)]
        for number, parts in enumerate(read_lines(file), start=1):
            if len(parts) != 2 or parts[1] not in TAGS:
                raise LayoutError(f"{file} line {number}: expected '<video>.avi <0|1|2>', got "
                                  f"{' '.join(parts)!r}")
            split_name = TAGS[parts[1]]
            if split_name is None:
                continue
            path = root / label / parts[0]
            if not path.is_file():
                skipped.append(missing(path, file.name))
                continue
            rows.append({"path": str(path), "label": label, "split": split_name,
                         "video_id": f"{label}/{Path(parts[0]).stem}", "group": ""})
    if not rows:
        raise LayoutError(f"none of the videos the split-{split} files list is under "
                          f"{root}/<class>/")
    return LayoutResult(make_table(rows), skipped_table(skipped))
