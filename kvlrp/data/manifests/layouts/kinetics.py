"""``kinetics`` layout: annotation CSVs ``label,youtube_id,time_start,time_end,split`` and clips
named ``{youtube_id}_{time_start:06d}_{time_end:06d}.<ext>`` anywhere below ROOT."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kvlrp.data.manifests.layouts.common import (
    LayoutError,
    LayoutResult,
    is_video,
    make_table,
    missing,
    skipped_table,
)

#: Kinetics split names -> manifest split names.
SPLIT_NAMES = {"train": "train", "validate": "val", "val": "val", "valid": "val",
               "test": "test"}
COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def clip_stem(youtube_id: str, start: float, end: float) -> str:
    """File stem of a Kinetics clip: ``{youtube_id}_{start:06d}_{end:06d}``."""
    return f"{youtube_id}_{int(start):06d}_{int(end):06d}"


def kinetics(root: str | Path, annotations: list[str | Path] | None = None) -> LayoutResult:
    """Rows of the annotation CSVs whose clip file exists; group = ``youtube_id`` (clips of one
    YouTube video never straddle splits).

    Parameters
    ----------
    root
        Folder holding the clips (in any sub-folders).
    annotations
        The CSV files (default: every ``*.csv`` directly in ROOT). A CSV without a ``split``
        column takes its split from its file name (``train.csv``, ``validate.csv``, ...).
    """
    root = Path(root).resolve()
    files = [Path(a) for a in annotations] if annotations else sorted(root.glob("*.csv"))
    if not files:
        raise LayoutError(f"no Kinetics annotation CSV in {root}; pass --annotations FILE.csv "
                          "(columns label,youtube_id,time_start,time_end,split)")
    on_disk = {p.stem: p for p in sorted(root.rglob("*")) if is_video(p)}
    rows, skipped = [], []
    for file in files:
        if not file.is_file():
            raise LayoutError(f"annotation file not found: {file}")
        table = pd.read_csv(file, dtype=str, keep_default_na=False)
        lacking = [c for c in COLUMNS if c not in table.columns]
        if lacking:
            raise LayoutError(f"{file} lacks column(s) {lacking}; Kinetics CSVs have "
                              "label,youtube_id,time_start,time_end,split")
        for record in table.to_dict("records"):
            raw_split = record.get("split", "") or file.stem
            split = SPLIT_NAMES.get(raw_split.strip().lower())
            if split is None:
                raise LayoutError(f"{file}: unknown split {raw_split!r}; expected one of "
                                  f"{sorted(SPLIT_NAMES)}")
            stem = clip_stem(record["youtube_id"], float(record["time_start"]),
                             float(record["time_end"]))
            path = on_disk.get(stem)
            if path is None:
                skipped.append(missing(root / f"{stem}.mp4", file.name))
                continue
            rows.append({"path": str(path), "label": record["label"], "split": split,
                         "video_id": stem, "group": record["youtube_id"]})
    if not rows:
        raise LayoutError(f"none of the clips listed in {[f.name for f in files]} is under "
                          f"{root} (expected files named youtubeid_000010_000020.mp4)")
    return LayoutResult(make_table(rows), skipped_table(skipped))
