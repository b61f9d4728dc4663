"""Clip spans in seconds: the frame rate the clips of a shard folder are cut at."""

from __future__ import annotations

import math
import os

import pandas as pd


def clip_fps(shard_dir: str | os.PathLike, split: str | None = None) -> tuple[float | None,
                                                                                 str]:
    """The frame rate of a split's frames and how it is known.

    Returns
    -------
    (fps or None, note)
        The ``prepare --fps`` rate when the shards were resampled; else the rate every video
        of the split shares; else ``None`` (rates differ, or older shards without an ``fps``
        column), with a note saying which.
    """
    from kvlrp.data.shards.folder import read_dataset_info, read_index

    target = read_dataset_info(shard_dir).get("fps")
    if target:
        return float(target), f"all videos resampled to {target:g} fps by `kvlrp prepare --fps`"
    index = read_index(shard_dir)
    if split is not None:
        index = index[index["split"] == split]
    if "fps" not in index.columns:
        return None, "the shards record no frame rates (prepared by an older kvlrp)"
    rates = pd.to_numeric(index["fps"], errors="coerce").dropna().round(3).unique()
    if len(rates) == 1 and math.isfinite(rates[0]) and rates[0] > 0:
        return float(rates[0]), f"every video is {rates[0]:g} fps"
    shown = ", ".join(f"{r:g}" for r in sorted(rates))
    return None, (f"videos differ in frame rate ({shown} fps), so a step spans different "
                  "times; prepare the shards with --fps F to make them equal")


def span_seconds(span_frames: int, fps: float | None) -> float:
    """A span of ``span_frames`` frames in seconds (NaN when the rate is unknown)."""
    return float(span_frames) / fps if fps else float("nan")
