"""Dataset manifests: a CSV of ``path,label`` with optional ``split``, ``video_id`` and ``group``
(videos of one group, e.g. UCF101's ``gXX`` or segments of one source, never straddle splits)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kvlrp.data.manifests.splits import (
    SPLITS,
    TEST_FRACTION,
    VAL_FRACTION,
    group_splits,
    stratified_splits,
)
from kvlrp.infra import fs

REQUIRED_COLUMNS = ("path", "label")


class ManifestError(ValueError):
    """A manifest is malformed; the message says what is wrong and what is expected."""


@dataclass(frozen=True)
class Manifest:
    """A validated manifest.

    Attributes
    ----------
    table
        One row per video: absolute ``path``, ``label`` (str), ``split``, ``video_id`` (unique),
        ``group`` (empty: the video is its own group).
    classes
        Sorted distinct labels; a label's index in it is its class index.
    source
        The CSV it was read from (``None`` if built in memory).
    root
        The folder its relative paths were resolved against (the CSV's folder; ``None``:
        unknown, then ``source``'s folder is used).
    """

    table: pd.DataFrame
    classes: list[str]
    source: Path | None = None
    root: Path | None = None

    def label_index(self, label: str) -> int:
        """Class index of ``label``."""
        return self.classes.index(label)


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate a manifest CSV; relative paths are resolved against its folder.

    A manifest without a ``split`` column gets a deterministic stratified split (per class,
    sorted by path: 20 % val, 20 % test, the rest train). Without ``video_id`` the path relative
    to the manifest folder (minus its suffix) is the id. Files are *not* checked here: missing
    ones are reported by :func:`kvlrp.data.shards.folder.prepare_shards` in ``skipped.csv``.

    Raises
    ------
    ManifestError
        Missing file or columns, empty labels or paths, unknown split names, duplicate ids.
    """
    path = fs.path(path)  # a local path or any tf.io.gfile URL (gs://, s3://, ram://, ...)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    try:
        table = fs.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ManifestError(f"manifest {path} is not a readable CSV: {err}") from err
    return manifest_from_table(table, base_dir=path.parent, source=path)


def manifest_from_table(
    table: pd.DataFrame, base_dir: str | os.PathLike, source: Path | None = None
) -> Manifest:
    """Validate a manifest table (see :func:`read_manifest`) with paths relative to ``base_dir``."""
    where = f"manifest {source}" if source else "manifest"
    table = table.copy()
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ManifestError(
            f"{where} lacks column(s) {missing}; it needs 'path,label' "
            f"(optional 'split' in {SPLITS} and 'video_id'), found {list(table.columns)}"
        )
    if table.empty:
        raise ManifestError(f"{where} has no rows")
    for column in ("path", "label"):
        table[column] = table[column].astype(str).str.strip()
        empty = table.index[table[column] == ""].tolist()
        if empty:
            raise ManifestError(f"{where} has empty '{column}' in data row(s) {_rows(empty)}")
    base_dir = fs.path(base_dir)
    relative = table["path"].tolist()
    # absolute but symlinks not followed (abspath): skipped.csv must not show their targets
    table["path"] = [p if fs.is_url(p) or Path(p).is_absolute() else
                     str(base_dir / p) if fs.is_url(base_dir) else os.path.abspath(base_dir / p)
                     for p in relative]
    if "video_id" not in table.columns or (table["video_id"].astype(str).str.strip() == "").all():
        table["video_id"] = [str(Path(p).with_suffix("")) for p in relative]
    table["video_id"] = table["video_id"].astype(str).str.strip()
    duplicated = table["video_id"][table["video_id"].duplicated()].unique().tolist()
    if duplicated:
        raise ManifestError(f"{where} repeats video_id(s) {duplicated[:5]}; ids must be unique")
    if "split" in table.columns and (table["split"].astype(str).str.strip() != "").any():
        table["split"] = table["split"].astype(str).str.strip().str.lower()
        bad = sorted(set(table["split"]) - set(SPLITS))
        if bad:
            raise ManifestError(
                f"{where} uses unknown split name(s) {bad}; allowed: {', '.join(SPLITS)}"
            )
    table["group"] = (table["group"].astype(str).str.strip() if "group" in table.columns
                      else "")
    if "split" not in table.columns or (table["split"].astype(str).str.strip() == "").all():
        if (table["group"] != "").any():
            table["split"] = group_splits(
                table["label"].tolist(), table["group"].tolist(), table["path"].tolist(),
                {"val": VAL_FRACTION, "test": TEST_FRACTION})
        else:
            table["split"] = stratified_splits(table["label"].tolist(), table["path"].tolist())
    else:
        _check_groups(table, where)
    table = table[["path", "label", "split", "video_id", "group"]].reset_index(drop=True)
    return Manifest(table=table, classes=sorted(table["label"].unique()), source=source,
                    root=base_dir if fs.is_url(base_dir) else Path(os.path.abspath(base_dir)))


def _check_groups(table: pd.DataFrame, where: str) -> None:
    """Refuse a manifest whose given splits cut a group."""
    grouped = table[table["group"] != ""]
    straddling = grouped.groupby("group")["split"].nunique()
    cut = straddling[straddling > 1].index.tolist()
    if cut:
        raise ManifestError(
            f"{where}: group(s) {cut[:5]} have videos in several splits; a group's videos "
            "must share one split (or leave 'split' empty to assign them by group)"
        )


def _rows(indices: list[int]) -> str:
    shown = ", ".join(str(i + 1) for i in indices[:5])
    return shown + (" ..." if len(indices) > 5 else "")
