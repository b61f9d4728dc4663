"""The across-seed part of the report, from the tables of
:func:`kvlrp.analysis.study.run_study` (its figure:
:func:`~kvlrp.analysis.report.plots.plot_study`), as blocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kvlrp.analysis.report.blocks import Block, Figure, Heading, Paragraph, Table
from kvlrp.analysis.report.plots import plot_study
from kvlrp.analysis.report.tables import study_border_view, study_seeds_view, study_summary_view
from kvlrp.infra import fs

__all__ = ["read_study", "read_summary_of_kind", "study_blocks"]


def read_summary_of_kind(root: Path, kind: str) -> dict[str, Any] | None:
    """The ``summary.json`` in ``root`` if its ``kind`` is ``kind`` (None otherwise)."""
    file = root / "summary.json"
    if not file.exists():
        return None
    summary = json.loads(file.read_text())
    return summary if summary.get("kind") == kind else None


def read_study(root: Path) -> dict[str, Any] | None:
    """The study's ``summary.json`` in ``root`` (None if ``root`` holds no study)."""
    return read_summary_of_kind(root, "study")


def study_blocks(root: Path, plots: Path) -> list[Block]:
    """The study section (empty if ``root`` holds no study)."""
    summary = read_study(root)
    if summary is None:
        return []
    seeds_df = fs.read_csv(root / "study_seeds.csv")
    border_df = fs.read_csv(root / "study_border.csv")
    table = fs.read_csv(root / "study_summary.csv")
    png = plot_study(seeds_df, border_df, plots / "study.png")
    sign = summary["test_gain_sign"]
    return [
        Heading(f"Across {len(summary['seeds'])} training seeds"),
        Paragraph(f"One model per seed on the same shards. The step is chosen on "
                  f"`{', '.join(summary['selected_on'])}` and its gain over the training step "
                  f"is reported on `test` ({summary['n_test_videos']} videos), paired over the "
                  f"same videos (bootstrap interval, exact McNemar). Across seeds: mean and "
                  f"95 % Student-t interval over seeds; *above / below null*: seeds above / "
                  f"below the null value."),
        Paragraph(f"Val-selected test gain: mean {summary['test_gain_mean']:+.3f} "
                  f"[{summary['test_gain_ci_low']:+.3f}, {summary['test_gain_ci_high']:+.3f}]; "
                  f"{sign['positive']} seed(s) positive, {sign['negative']} negative, "
                  f"{sign['zero']} zero. One seed's test set tells a true gain of about "
                  f"{summary['detectable_gain_per_seed']:.3f} from none (half the width of the "
                  f"paired 95 % interval of a step's accuracy difference to the training step, "
                  f"mean over the other steps and the seeds)."),
        Figure(png, "Left: relative border score per explained step, one line per seed. "
                    "Right: the val-selected test gain per seed with its paired 95 % interval"),
        Paragraph("Per seed:"),
        Table(study_seeds_view(seeds_df), root / "study_seeds.csv"),
        Paragraph("Border scores per seed and step:"),
        Table(study_border_view(border_df), root / "study_border.csv"),
        Paragraph("Summary over seeds:"),
        Table(study_summary_view(table), root / "study_summary.csv"),
    ]
