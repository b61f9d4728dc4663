"""The report's tables: narrow views of the CSVs (at most eight columns, a value and its
interval in one cell; the CSVs keep every column) and their markdown form."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["border_view", "change_view", "ci", "count", "flipping_view", "markdown_table", "num",
           "profile_view", "stride_view", "study_border_view", "study_seeds_view",
           "study_summary_view", "temporal_view"]


def markdown_table(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub markdown table of ``df`` (floats rounded)."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else f"{v:.{digits}f}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, df.columns)) + " |",
             "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _missing(value: Any) -> bool:
    try:
        return value is None or math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def num(value: Any, digits: int = 3, sign: bool = False) -> str:
    """A number as text (``n/a`` when missing; ``+`` for positive differences with ``sign``)."""
    if _missing(value):
        return "n/a"
    return f"{float(value):{'+' if sign else ''}.{digits}f}"


def count(n: Any, noun: str) -> str:
    """``1 clip``, ``4 clips``, ``all clips`` (a count or a word such as ``all``)."""
    return f"{n} {noun}" if str(n) == "1" else f"{n} {noun}s"


def ci(value: Any, low: Any, high: Any, digits: int = 3, sign: bool = False,
       missing: str = "n/a") -> str:
    """``value [low, high]`` (``missing`` when the value is missing; no interval when the
    bounds are)."""
    if _missing(value):
        return missing
    if _missing(low) or _missing(high):
        return num(value, digits, sign)
    return (f"{num(value, digits, sign)} [{num(low, digits, sign)}, "
            f"{num(high, digits, sign)}]")


def border_view(borders: pd.DataFrame) -> pd.DataFrame:
    """Border scores of all clips per step: B, the prior's B and relative B with intervals
    (and the pooled relative B, where the table has it)."""
    b = borders[borders["class"].astype(str) == "all"]
    return pd.DataFrame({
        "step": b["step"].astype(int).astype(str),
        "clips": b["n_clips"].astype(int).astype(str),
        "B [95% CI]": [ci(r.border_score, r.border_ci_low, r.border_ci_high)
                       for r in b.itertuples()],
        "prior B": [num(v) for v in b["prior_border_score"]],
        "relative B [95% CI]": [ci(r.relative_border_score, r.relative_border_ci_low,
                                   r.relative_border_ci_high) for r in b.itertuples()],
        **({} if "pooled_relative_border_score" not in b.columns else {
            "pooled relative B [95% CI]": [
                ci(r.pooled_relative_border_score, r.pooled_relative_border_ci_low,
                   r.pooled_relative_border_ci_high) for r in b.itertuples()]}),
    })


def change_view(changes: pd.DataFrame) -> pd.DataFrame:
    """Paired changes of B and relative B (and pooled relative B, where the table has it)
    against the reference step."""
    return pd.DataFrame({
        "step": changes["step"].astype(int).astype(str),
        "vs step": changes["reference_step"].astype(int).astype(str),
        "videos": changes["n_videos"].astype(int).astype(str),
        "change of B [95% CI]": [ci(r.border_change, r.border_change_ci_low,
                                    r.border_change_ci_high, sign=True)
                                 for r in changes.itertuples()],
        "change of relative B [95% CI]": [
            ci(r.relative_border_change, r.relative_border_change_ci_low,
               r.relative_border_change_ci_high, sign=True) for r in changes.itertuples()],
        **({} if "pooled_relative_border_change" not in changes.columns else {
            "change of pooled relative B [95% CI]": [
                ci(r.pooled_relative_border_change, r.pooled_relative_border_change_ci_low,
                   r.pooled_relative_border_change_ci_high, sign=True)
                for r in changes.itertuples()]}),
    })


def profile_view(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean share per position (all clips) and step, with the relative share beside it."""
    everything = summary[summary["class"].astype(str) == "all"]
    out = pd.DataFrame({"position": sorted(everything["position"].astype(int).unique())})
    for step, g in everything.groupby("step"):
        g = g.set_index(g["position"].astype(int)).reindex(out["position"])
        out[f"step {step}: share (relative)"] = [
            f"{num(s)} ({num(r, 2)})" if not _missing(r) else num(s)
            for s, r in zip(g["mean_share"], g["relative_share"])]
    out["position"] = out["position"].astype(str)
    return out


def temporal_view(borders: pd.DataFrame) -> pd.DataFrame:
    """Temporal fraction and the border score of the temporal part, per step and class."""
    return pd.DataFrame({
        "step": borders["step"].astype(int).astype(str),
        "class": borders["class"].astype(str),
        "clips": borders["n_clips"].astype(int).astype(str),
        "temporal fraction": [num(v) for v in borders["temporal_fraction"]],
        "temporal B [95% CI]": [ci(r.temporal_border_score, r.temporal_border_ci_low,
                                   r.temporal_border_ci_high) for r in borders.itertuples()],
        "B (all relevance)": [num(v) for v in borders["border_score"]],
    })


def flipping_view(aucs: pd.DataFrame) -> pd.DataFrame:
    """Areas under the flipping curves and their paired differences, per step, curve and
    ordering."""
    def diff(r: Any, other: str) -> str:
        return ci(getattr(r, f"diff_vs_{other}", None),
                  getattr(r, f"diff_vs_{other}_ci_low", None),
                  getattr(r, f"diff_vs_{other}_ci_high", None), digits=4, sign=True,
                  missing="\u2014")  # (an ordering against itself)

    out = pd.DataFrame({
        "step": aucs["step"].astype(int).astype(str),
        "curve": aucs["curve"].astype(str) if "curve" in aucs else "deletion",
        "ordering": aucs["method"].astype(str),
        "AUC [95% CI]": [ci(r.auc, getattr(r, "auc_ci_low", None),
                            getattr(r, "auc_ci_high", None), digits=4)
                         for r in aucs.itertuples()],
    })
    if "diff_vs_random" in aucs:
        out["vs random [95% CI]"] = [diff(r, "random") for r in aucs.itertuples()]
    if "diff_vs_gradient_abs" in aucs:
        out["vs gradient_abs [95% CI]"] = [diff(r, "gradient_abs") for r in aucs.itertuples()]
    if "rank" in aucs:
        out["rank"] = aucs["rank"].astype(str)
    return out


def stride_view(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per step: span, videos, clip and video accuracy (with interval), the paired
    difference to the training step and McNemar's p."""
    def span(r: Any) -> str:
        seconds = getattr(r, "span_seconds", None)
        return f"{int(r.span_frames)}" + ("" if _missing(seconds) else f" ({seconds:.2f} s)")

    out = pd.DataFrame({
        "step": table["step"].astype(int).astype(str),
        "frames": table["control"].map({"none": "in order"}).fillna(table["control"]),
        "span, frames": [span(r) for r in table.itertuples()],
        "videos": table["n_videos"].astype(int).astype(str),
        "clip acc.": [num(v) for v in table["clip_accuracy"]],
        "video acc. [95% CI]": [ci(r.video_accuracy, r.ci_low, r.ci_high)
                                for r in table.itertuples()],
    })
    if "diff_vs_train_step" in table:
        out["vs training step [95% CI]"] = [
            ci(r.diff_vs_train_step, r.diff_ci_low, r.diff_ci_high, sign=True)
            for r in table.itertuples()]
        out["McNemar p"] = [num(v, 3) for v in table["mcnemar_p"]]
    return out


def study_seeds_view(seeds: pd.DataFrame) -> pd.DataFrame:
    """Per seed: the val-selected step, test video accuracies and the paired gain (with the
    videos gained and lost)."""
    return pd.DataFrame({
        "seed": seeds["seed"].astype(str),
        "selected step": seeds["selected_step"].astype(str),
        "acc. at training step": [num(v) for v in seeds["test_accuracy_train_step"]],
        "acc. at selected step": [num(v) for v in seeds["test_accuracy_selected_step"]],
        "gain [95% CI]": [ci(r.test_gain, r.test_gain_ci_low, r.test_gain_ci_high, sign=True)
                          for r in seeds.itertuples()],
        "McNemar p": [num(v) for v in seeds["mcnemar_p"]],
        "gained / lost": [f"{r.n_gained} / {r.n_lost}" for r in seeds.itertuples()],
    })


def study_border_view(border: pd.DataFrame) -> pd.DataFrame:
    """Per seed and step: B and relative B with intervals, temporal fraction, and the paired
    change of relative B (and the analyzer, where the study explained with two)."""
    view = pd.DataFrame({
        "seed": border["seed"].astype(str),
        "step": border["step"].astype(str),
        "B [95% CI]": [ci(r.border_score, r.border_ci_low, r.border_ci_high)
                       for r in border.itertuples()],
        "relative B [95% CI]": [ci(r.relative_border_score, r.relative_border_ci_low,
                                   r.relative_border_ci_high) for r in border.itertuples()],
        "temporal fraction": [num(v) for v in border["temporal_fraction"]],
        "change of relative B [95% CI]": [
            ci(r.relative_border_change, r.relative_border_change_ci_low,
               r.relative_border_change_ci_high, sign=True) for r in border.itertuples()],
    })
    if "analyzer" in border and border["analyzer_kind"].nunique() > 1:
        view.insert(1, "analyzer", [f"{a} ({k})" for a, k in zip(border["analyzer"],
                                                                 border["analyzer_kind"])])
    return view


def study_summary_view(table: pd.DataFrame) -> pd.DataFrame:
    """Per quantity: mean over seeds with its t-interval, SD, and the seeds above / below the
    null value."""
    kinds = table["analyzer_kind"] if "analyzer_kind" in table else pd.Series([""] * len(table))
    several = kinds.fillna("").astype(str).replace("", np.nan).nunique() > 1
    quantity = [f"{q} ({k})" if several and isinstance(k, str) and k else str(q)
                for q, k in zip(table["quantity"], kinds)]
    return pd.DataFrame({
        "quantity": quantity,
        "step": ["" if _missing(v) or v == "" else str(int(float(v))) for v in table["step"]],
        "seeds": table["n_seeds"].astype(str),
        "mean [95% CI]": [ci(r.mean, r.ci_low, r.ci_high) for r in table.itertuples()],
        "SD": [num(v) for v in table["std"]],
        "null": [num(v, 0) if not _missing(v) else "" for v in table["null_value"]],
        "above / below null": [f"{r.n_above} / {r.n_below}" if not _missing(r.null_value)
                               else "" for r in table.itertuples()],
    })


def layer_border_view(borders: pd.DataFrame) -> pd.DataFrame:
    """Border scores per step and layer (``layer_border_scores.csv``): depth, time cells,
    B and relative B with intervals (and the pooled relative B, where the table has it)."""
    b = borders
    return pd.DataFrame({
        "step": borders["step"].astype(int).astype(str),
        "depth": borders["depth"].astype(int).astype(str),
        "layer": borders["layer"].astype(str),
        "time cells": borders["time_cells"].astype(int).astype(str),
        "B [95% CI]": [ci(r.border_score, r.border_ci_low, r.border_ci_high)
                       for r in borders.itertuples()],
        "relative B [95% CI]": [ci(r.relative_border_score, r.relative_border_ci_low,
                                   r.relative_border_ci_high) for r in borders.itertuples()],
        **({} if "pooled_relative_border_score" not in b.columns else {
            "pooled relative B [95% CI]": [
                ci(r.pooled_relative_border_score, r.pooled_relative_border_ci_low,
                   r.pooled_relative_border_ci_high) for r in b.itertuples()]}),
    })


def channel_view(top: pd.DataFrame) -> pd.DataFrame:
    """The channels carrying most border relevance (``top_border_channels``): their share
    of the border relevance, running total and share of all relevance."""
    return pd.DataFrame({
        "step": top["step"].astype(int).astype(str),
        "channel": top["channel"].astype(int).astype(str),
        "share of border relevance": [num(v) for v in top["border_share"]],
        "cumulative": [num(v) for v in top["cumulative_border_share"]],
        "share of all relevance": [num(v) for v in top["channel_share"]],
    })
