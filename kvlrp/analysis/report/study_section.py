"""The across-seed part of ``report.md``, from the tables of
:func:`kvlrp.analysis.study.run_study` (its figure:
:func:`~kvlrp.analysis.report.plots.plot_study`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from kvlrp.analysis.report.plots import plot_study
from kvlrp.analysis.report.tables import markdown_table


def study_section(root: Path, plots: Path) -> list[str]:
    """Markdown lines of the study section (empty if ``root`` holds no study)."""
    file = root / "summary.json"
    if not file.exists() or json.loads(file.read_text()).get("kind") != "study":
        return []
    summary = json.loads(file.read_text())
    seeds_df = pd.read_csv(root / "study_seeds.csv")
    border_df = pd.read_csv(root / "study_border.csv")
    table = pd.read_csv(root / "study_summary.csv")
    table["step"] = [("" if pd.isna(v) else str(int(v))) for v in table["step"]]
    png = plot_study(seeds_df, border_df, plots / "study.png")
    sign = summary["test_gain_sign"]
    rel = Path(os.path.relpath(png, root)).as_posix()
    return [
        f"## Across {len(summary['seeds'])} training seeds", "",
        f"One model per seed on the same shards. The step is chosen on "
        f"`{', '.join(summary['selected_on'])}` and its gain over the training step is "
        f"reported on `test` ({summary['n_test_videos']} videos), paired over the same videos "
        f"(bootstrap interval, exact McNemar). Across seeds: mean and 95 % Student-t interval "
        f"over seeds; `n_above`/`n_below`: seeds above/below the null value.", "",
        f"Val-selected test gain: mean {summary['test_gain_mean']:+.3f} "
        f"[{summary['test_gain_ci_low']:+.3f}, {summary['test_gain_ci_high']:+.3f}]; "
        f"{sign['positive']} seed(s) positive, {sign['negative']} negative, {sign['zero']} "
        f"zero. One seed's test set tells a true gain of about "
        f"{summary['detectable_gain_per_seed']:.3f} from none (half the width of the paired "
        f"95 % interval of a step's accuracy difference to the training step, mean over the "
        f"other steps and the seeds).", "",
        "Per seed:", "", markdown_table(seeds_df), "",
        "Border scores per seed and step:", "", markdown_table(border_df), "",
        "Summary over seeds:", "", markdown_table(table), "", f"![study]({rel})", "",
    ]
