"""The across-seed part of ``report.md`` and its figure, from the tables of
:func:`kvlrp.analysis.study.run_study`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd


def plot_study(seeds_df: pd.DataFrame, border_df: pd.DataFrame, path: str | Path) -> Path:
    """Left: relative border score per explained step, one line per seed. Right: the
    val-selected test gain per seed with its paired 95 % interval."""
    from kvlrp.analysis.report.plots import _pyplot, _save

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    ax = axes[0]
    column = ("relative_border_score" if border_df["relative_border_score"].notna().any()
              else "border_score")
    for seed, g in border_df.groupby("seed"):
        g = g.sort_values("step")
        ax.plot(g["step"], g[column], "o-", label=f"seed {seed}")
    means = border_df.groupby("step")[column].mean()
    ax.plot(means.index, means.to_numpy(), "k--", lw=2, label="mean")
    ax.axhline(1.0, color="0.6", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel(column.replace("_", " "))
    ax.set_xticks(sorted(border_df["step"].unique()))
    ax.legend(fontsize=7)
    ax = axes[1]
    x = range(len(seeds_df))
    gain = seeds_df["test_gain"].astype(float)
    err = [gain - seeds_df["test_gain_ci_low"].astype(float),
           seeds_df["test_gain_ci_high"].astype(float) - gain]
    ax.errorbar(list(x), gain, yerr=err, fmt="o", capsize=3)
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_xticks(list(x))
    ax.set_xticklabels([f"seed {s}\nstep {k}" for s, k in zip(seeds_df["seed"],
                                                            seeds_df["selected_step"])],
                       fontsize=7)
    ax.set_ylabel("test gain (val-selected step)")
    fig.tight_layout()
    return _save(fig, path)


def study_section(root: Path, plots: Path) -> list[str]:
    """Markdown lines of the study section (empty if ``root`` holds no study)."""
    from kvlrp.analysis.report.markdown import markdown_table

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
