"""The strides part of the report: accuracy per step with its figure, the step chosen on one
split and its paired gain on another (the protocol), as blocks."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from kvlrp.analysis.report.blocks import Block, Facts, Figure, Heading, Paragraph, Table
from kvlrp.analysis.report.plots import plot_strides
from kvlrp.analysis.report.tables import ci, count, num, stride_view
from kvlrp.infra import fs

__all__ = ["protocol_facts", "strides_blocks"]


def strides_blocks(run: Path, plots: Path) -> list[Block]:
    """Everything the report says about the strides run in ``run`` (figure into ``plots``)."""
    summary = json.loads((run / "summary.json").read_text())
    table = fs.read_csv(run / "stride_accuracy.csv")
    best = summary["best"]
    png = plot_strides(table, plots / "stride_accuracy.png", best)
    gain = "n/a" if best["gain"] is None else f"{best['gain']:+.3f}"
    out: list[Block] = [
        Heading("Accuracy per step (no retraining)"),
        Paragraph(f"Split `{summary['split']}`, {count(summary['clips_per_video'], 'clip')} "
                  "per video, "
                  "clip probabilities averaged per video; interval: 95 % bootstrap over "
                  "videos. The *shuffled* row permutes each clip's frames (seeded) at the "
                  "training step; *vs training step* pairs every row with the training step "
                  "over the same videos (95 % paired bootstrap, exact McNemar p)."),
    ]
    facts = protocol_facts(summary)
    if facts is not None:
        out += [Heading("The step chosen on one split, reported on another", 3), facts]
        if summary.get("selection_note"):
            out.append(Paragraph(summary["selection_note"][:1].upper()
                                 + summary["selection_note"][1:] + "."))
    out += [
        Figure(png, "Video accuracy per step (95 % interval) and clip accuracy; the cross is "
                    "the frame-shuffled control"),
        Table(stride_view(table), run / "stride_accuracy.csv"),
        Paragraph(f"Best step on `{summary['split']}` itself: **{best['best_step']}** (video "
                  f"accuracy {best['best_video_accuracy']:.3f}); training step "
                  f"{best['train_step']}: {num(best['train_video_accuracy'])}; gain {gain}. "
                  f"Tie rule: {summary['tie_rule']}."),
    ]
    short = _short_clips(table)
    if short:
        out.append(Paragraph(short))
    return out


def protocol_facts(summary: dict) -> Facts | None:
    """The honest gain: the step chosen on one split and its paired comparison on the reported
    one (None without a selection)."""
    if summary.get("selected_step") is None:
        return None
    chosen = (str(summary["selected_step"]), f"chosen on `{summary['selected_on']}`")
    if summary.get("test_gain") is None:
        return Facts((("selected step", *chosen),))
    on = summary["reported_split"]
    train = _accuracy_row(summary, summary.get("train_step"))
    selected = _accuracy_row(summary, summary["selected_step"])
    return Facts((
        ("selected step", *chosen),
        (f"`{on}` accuracy at training step {summary.get('train_step')}",
         ci(summary["test_accuracy_train_step"], *train), "video accuracy, 95 % interval"),
        (f"`{on}` accuracy at the selected step",
         ci(summary["test_accuracy_selected_step"], *selected), "video accuracy, 95 % interval"),
        (f"paired gain on `{on}`",
         ci(summary["test_gain"], summary["test_gain_ci_low"], summary["test_gain_ci_high"],
            sign=True),
         f"95 % paired bootstrap over {summary.get('n_paired_videos', 'the')} videos; "
         f"{summary['n_gained']} gained, {summary['n_lost']} lost"),
        ("exact McNemar p", f"{summary['mcnemar_p']:.3g}",
         "the videos only one of the two steps classifies right"),
    ))


def _accuracy_row(summary: dict, step: int | None) -> tuple[float | None, float | None]:
    """The interval of the video accuracy at ``step`` in the summary's table."""
    for row in summary.get("table", []):
        if row.get("step") == step and row.get("control", "none") == "none":
            return row.get("ci_low"), row.get("ci_high")
    return None, None


def _short_clips(table: pd.DataFrame) -> str:
    """A sentence on the clips that ran past a video's end (empty if none did)."""
    rows = table[table["n_short_clips"] > 0] if "n_short_clips" in table else table.iloc[:0]
    if rows.empty:
        return ""
    parts = ", ".join(f"step {r.step}: {r.n_short_clips} of {r.n_clips}"
                      for r in rows.itertuples())
    return (f"Clips that ran past their video's end (and followed the short-video policy): "
            f"{parts}.")
