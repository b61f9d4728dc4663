"""The final strides tables and ``summary.json`` from the clip predictions of the reported split
(and of the selection split, if it is another one); used by one run and by ``kvlrp merge``
alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from kvlrp.analysis.measures.accuracy import best_step, stride_table, video_predictions
from kvlrp.analysis.measures.selection import add_paired_columns, select_and_report
from kvlrp.analysis.runs.skeleton import write_summary
from kvlrp.infra.atomic import write_csv

__all__ = ["TIE_RULE", "write_strides_reports"]

TIE_RULE = ("highest video accuracy; among ties the training step if tied, else the smallest "
            "tied step")


def write_strides_reports(out: Path, clips: pd.DataFrame, sel_clips: pd.DataFrame | None,
                          context: dict) -> dict:
    """Write ``stride_accuracy.csv``, ``clip_predictions.csv``, ``video_predictions.csv``
    (and, for a selection split of its own, its ``stride_accuracy_<split>.csv`` and
    ``video_predictions_<split>.csv``) and ``summary.json``; returns the summary."""
    split, select_on = context["split"], context["select_on"]
    train_step, n_boot, seed = context["train_step"], context["n_boot"], context["seed"]
    videos = video_predictions(clips)
    table = stride_table(clips, context["clip_len"], n_boot=n_boot, seed=seed,
                         fps=context.get("fps"))
    best = best_step(table, train_step=train_step)
    table = add_paired_columns(table, videos, train_step, n_boot=n_boot, seed=seed)
    files = {
        "stride_accuracy": write_csv(table, out / "stride_accuracy.csv"),
        "clip_predictions": write_csv(clips, out / "clip_predictions.csv"),
        "video_predictions": write_csv(videos, out / "video_predictions.csv"),
    }
    selection_videos = videos
    if select_on != split:
        selection_videos = _write_selection_split(out, sel_clips, context, files)
    selection = select_and_report(selection_videos, videos, train_step, select_on, split,
                                  n_boot=n_boot, seed=seed)
    shuffled = table[table["control"] == "shuffled"]
    fields: dict[str, Any] = {
        "equal_counts": context.get("equal_counts", False), "best": best,
        "tie_rule": TIE_RULE, "classes": context["classes"], **selection,
        "shuffled_control": shuffled.to_dict("records")[0] if len(shuffled) else None,
        "table": table.to_dict("records"),
    }
    return write_summary(out, "strides", context, files, fields)


def _write_selection_split(out: Path, sel_clips: pd.DataFrame | None, context: dict,
                           files: dict[str, Path]) -> pd.DataFrame:
    """Write the tables of the split the step is chosen on (into ``files``); returns its
    video predictions."""
    select_on = context["select_on"]
    selection_videos = video_predictions(sel_clips)
    sel_table = stride_table(sel_clips, context["clip_len"], n_boot=context["n_boot"],
                             seed=context["seed"], fps=context.get("select_fps"))
    files[f"stride_accuracy_{select_on}"] = write_csv(
        sel_table, out / f"stride_accuracy_{select_on}.csv")
    files[f"video_predictions_{select_on}"] = write_csv(
        selection_videos, out / f"video_predictions_{select_on}.csv")
    return selection_videos
