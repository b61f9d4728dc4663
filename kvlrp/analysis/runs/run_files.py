"""Shared pieces of resumable runs (``kvlrp strides``, ``kvlrp explain``): the settings
fingerprint that decides whether partial results may be reused (compared by
:func:`kvlrp.infra.resume.check`), and per-step tables that survive a round trip through
``partial/`` unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from kvlrp.data.shards.folder import shard_fingerprint
from kvlrp.infra import fs
from kvlrp.infra.atomic import write_csv
from kvlrp.infra.resume import fingerprint

__all__ = ["model_fingerprint", "read_table", "run_settings", "shard_fingerprint",
           "write_table"]

#: SHA-1 of the model's weights (partial results of another model are not reused).
model_fingerprint = fingerprint


def run_settings(model: Any, info: Any, shard_dir: str | Path, split: str,
                 clips_per_video: int | str) -> dict:
    """What every evaluation's partial results depend on: the shard content of the split
    (:func:`shard_fingerprint`, never the path alone), clip settings and the model's weights
    (callers add their own settings, e.g. ``batch_size``)."""
    return {"shards": shard_fingerprint(shard_dir, split), "split": split,
            "clips_per_video": clips_per_video, "clip_len": info.clip_len,
            "size": info.size, "normalization": info.normalization,
            "short_policy": info.short_policy, "model": model_fingerprint(model)}


def write_table(df: pd.DataFrame, path: Path) -> list[list[str]]:
    """Write ``df`` as CSV atomically; returns its ``[column, dtype]`` pairs for
    :func:`read_table` (a list: JSON state files sort their keys)."""
    write_csv(df, path)
    return [[str(c), str(t)] for c, t in df.dtypes.items()]


def read_table(path: Path, columns: list[list[str]]) -> pd.DataFrame:
    """Read a table written by :func:`write_table` back with the same columns, dtypes and
    values (floats parsed round-trip, text columns kept as text)."""
    dtypes = dict(columns)
    text = [c for c, t in dtypes.items() if t in ("object", "str", "string")]
    try:
        df = fs.read_csv(path, dtype={c: str for c in text}, keep_default_na=False,
                         na_values=[""], float_precision="round_trip")
    except pd.errors.EmptyDataError:  # an empty table (no rows, maybe no header)
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
    df = df[list(dtypes)]
    return df.astype({c: t for c, t in dtypes.items() if c not in text and str(df[c].dtype) != t})
