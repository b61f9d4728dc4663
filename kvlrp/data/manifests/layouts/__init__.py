"""Manifests from the dataset layouts of the field: class folders, UCF101, HMDB51, Kinetics,
MMAction2 lists (see :func:`build_manifest`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from kvlrp.data.manifests.layouts.class_folders import class_folders
from kvlrp.data.manifests.layouts.common import (
    LayoutError,
    LayoutResult,
    carve_val,
    check_regex,
    group_of,
)
from kvlrp.data.manifests.layouts.hmdb51 import hmdb51
from kvlrp.data.manifests.layouts.kinetics import kinetics
from kvlrp.data.manifests.layouts.mmaction import mmaction
from kvlrp.data.manifests.layouts.ucf101 import ucf101
from kvlrp.data.manifests.splits import TEST_FRACTION, VAL_FRACTION, group_splits
from kvlrp.infra.atomic import write_csv

#: Layout name -> reader ``(root, **options) -> LayoutResult``.
LAYOUTS: dict[str, Callable[..., LayoutResult]] = {
    "class-folders": class_folders,
    "ucf101": ucf101,
    "hmdb51": hmdb51,
    "kinetics": kinetics,
    "mmaction": mmaction,
}

__all__ = ["LAYOUTS", "LayoutError", "LayoutResult", "build_manifest", "write_manifest"]


def build_manifest(
    layout: str, root: str | os.PathLike, group_regex: str | None = None,
    val_fraction: float = VAL_FRACTION, test_fraction: float = TEST_FRACTION, seed: int = 0,
    **options: Any,
) -> LayoutResult:
    """Read a dataset folder in ``layout`` and give every video a split.

    Videos of a layout without splits (class folders) get train/val/test by whole groups,
    stratified by class (``val_fraction``, ``test_fraction``); a layout with train and test
    but no val gets val carved from train (``val_fraction``, whole groups; 0: no val).

    Parameters
    ----------
    layout
        One of :data:`LAYOUTS`.
    root
        The dataset folder.
    group_regex
        Group key from each file name where the layout gives none (see
        :func:`kvlrp.data.manifests.layouts.class_folders.class_folders`).
    **options
        Passed to the layout reader (``split=N`` for ucf101/hmdb51, ``annotations=[...]`` for
        kinetics, ``lists={...}``, ``classes=[...]`` for mmaction).
    """
    if layout not in LAYOUTS:
        raise LayoutError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    check_regex(group_regex)
    if layout == "class-folders":
        options["group_regex"] = group_regex
    result = LAYOUTS[layout](root, **options)
    table = result.table
    if group_regex and layout != "class-folders":
        empty = table["group"] == ""
        table.loc[empty, "group"] = [group_of(Path(p).name, group_regex)
                                     for p in table.loc[empty, "path"]]
    if (table["split"] == "").all():
        table["split"] = group_splits(table["label"].tolist(), table["group"].tolist(),
                                      table["path"].tolist(),
                                      {"val": val_fraction, "test": test_fraction}, seed=seed)
        result.notes.append(f"splits assigned by whole groups per class ({val_fraction:.0%} val, "
                            f"{test_fraction:.0%} test)")
    elif "val" not in set(table["split"]) and val_fraction > 0:
        table = carve_val(table, val_fraction, seed=seed)
        result.notes.append(f"val carved from train: {val_fraction:.0%} of each class's train "
                            "videos, whole groups")
    result.table = table.reset_index(drop=True)
    return result


def write_manifest(result: LayoutResult, out: str | os.PathLike) -> tuple[Path, Path]:
    """Write the manifest CSV (paths relative to its folder) and ``skipped.csv`` beside it.

    Returns
    -------
    tuple
        ``(manifest path, skipped path)``.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = result.table.copy()
    base = out.parent.resolve()
    table["path"] = [Path(os.path.relpath(p, base)).as_posix() for p in table["path"]]
    if (table["group"] == "").all():
        table = table.drop(columns="group")
    manifest = write_csv(table, out)
    skipped = write_csv(pd.DataFrame(result.skipped, columns=["path", "reason"]),
                        out.parent / "skipped.csv")
    return manifest, skipped
