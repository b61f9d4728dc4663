"""What a reader needs before the details: the numbers at a glance, and a warning when the
model cannot be told apart from guessing (its video accuracy's interval contains chance,
1 / classes), with the likely reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kvlrp.analysis.report.blocks import Callout, Facts
from kvlrp.analysis.report.tables import ci
from kvlrp.infra import fs

__all__ = ["at_a_glance", "chance_callout", "demo_config"]


def _summary(run: Path | None) -> dict[str, Any] | None:
    return None if run is None else json.loads((run / "summary.json").read_text())


def _train_row(table: list[dict[str, Any]], step: Any) -> dict[str, Any] | None:
    for row in table:
        if row.get("step") == step and row.get("control", "none") == "none":
            return row
    return None


def chance_callout(strides_run: Path | None, root: Path) -> Callout | None:
    """A warning if the video accuracy at the training step, on the reported split or on the
    split the step was chosen on, has an interval that does not lie above chance (contains
    it, or lies below; None otherwise, or without a strides run)."""
    summary = _summary(strides_run)
    if summary is None or not summary.get("classes"):
        return None
    n_classes = len(summary["classes"])
    chance = 1.0 / n_classes
    train_step = summary.get("train_step")
    tables = {summary["split"]: summary.get("table", [])}
    select_on = summary.get("selected_on")
    selection_file = strides_run / f"stride_accuracy_{select_on}.csv"
    if select_on and select_on != summary["split"] and selection_file.exists():
        tables[select_on] = fs.read_csv(selection_file).to_dict("records")
    at_chance = []
    for split, table in tables.items():
        row = _train_row(table, train_step)
        if row is not None and row["ci_low"] <= chance:  # not above chance
            at_chance.append(f"{ci(row['video_accuracy'], row['ci_low'], row['ci_high'])} on "
                             f"`{split}` ({int(row['n_videos'])} videos)")
    if not at_chance:
        return None
    text = (f"Video accuracy at the training step ({train_step}) is "
            f"{' and '.join(at_chance)}; chance with {n_classes} classes is {chance:.3f}, and "
            f"{'this interval does' if len(at_chance) == 1 else 'these intervals do'} not lie "
            "above it, so this model cannot be told apart from guessing. Its relevance "
            "profiles may then "
            "show the architecture's position bias more than a learned strategy, and "
            "differences between steps may be noise. " + _why(root, at_chance))
    return Callout("At chance level.", text)


def demo_config(root: Path) -> dict[str, Any] | None:
    """The ``kvlrp demo`` settings (``demo.json``) of the folder ``root`` or of its parent
    (a demo's study), None where no demo wrote the report's folder."""
    for folder in (root, root.parent):
        file = folder / "demo.json"
        if file.exists():
            try:
                return json.loads(file.read_text()).get("config")
            except (ValueError, AttributeError):
                return None
    return None


def _why(root: Path, at_chance: list[str]) -> str:
    """The likely reason: the demo's sizes where a demo wrote the folder, else the usual
    ones."""
    config = demo_config(root)
    if config is None:
        return ("Usual reasons: too little training or training data, an input normalisation "
                "other than the one the model was trained with, or too few evaluation videos "
                "for a narrower interval.")
    sizes = (f"`c3d_small` trained for {config.get('epochs')} epochs on "
             f"{config.get('videos_per_class')} synthetic videos per class")
    if str(config.get("preset", "")).startswith("quick"):
        return (f"Why: this is `kvlrp demo --quick`, which has {sizes}: sized to run every "
                "stage in a few minutes, not to learn the task. `kvlrp demo` without "
                "`--quick` trains a model that does.")
    return f"This report comes from `kvlrp demo` ({sizes})."


def at_a_glance(explain_run: Path | None, strides_run: Path | None) -> Facts | None:
    """The headline numbers: accuracy at the training step, the chosen step and its gain,
    the border scores at the training step."""
    items: list[tuple[str, str, str]] = []
    strides = _summary(strides_run)
    if strides is not None:
        step = strides.get("train_step")
        row = _train_row(strides.get("table", []), step)
        if row is not None:
            chance = (f"; chance {1 / len(strides['classes']):.3f}"
                      if strides.get("classes") else "")
            items.append((f"video accuracy at training step {step}",
                          ci(row["video_accuracy"], row["ci_low"], row["ci_high"]),
                          f"`{strides['split']}`, {int(row['n_videos'])} videos, 95 % "
                          f"interval{chance}"))
        if strides.get("test_gain") is not None:
            items.append((f"step chosen on `{strides['selected_on']}`",
                          str(strides["selected_step"]),
                          f"paired gain on `{strides['reported_split']}` "
                          f"{ci(strides['test_gain'], strides['test_gain_ci_low'], strides['test_gain_ci_high'], sign=True)}, "  # noqa: E501
                          f"McNemar p = {strides['mcnemar_p']:.3g}"))
    explain = _summary(explain_run)
    if explain is not None:
        border = [b for b in explain.get("border", [])
                  if b.get("step") == explain.get("train_step")] or explain.get("border", [])[:1]
        if border:
            b = border[0]
            items.append((f"border score B at step {b['step']}",
                          ci(b["border_score"], b["border_ci_low"], b["border_ci_high"]),
                          "relative to the prior: " + ci(b.get("relative_border_score"),
                                                         b.get("relative_border_ci_low"),
                                                         b.get("relative_border_ci_high"))))
    return Facts(tuple(items)) if items else None
