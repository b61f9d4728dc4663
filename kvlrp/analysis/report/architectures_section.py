"""The across-architecture part of the report, from the tables of
:func:`kvlrp.analysis.study_architectures.run_architectures_study` (its figure:
:func:`~kvlrp.analysis.report.plots.plot_architectures`), as blocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from kvlrp.analysis.report.blocks import Block, Figure, Heading, Paragraph, Table
from kvlrp.analysis.report.plots import plot_architectures
from kvlrp.analysis.report.study_section import read_summary_of_kind
from kvlrp.analysis.report.tables import ci
from kvlrp.infra import fs

__all__ = ["architectures_blocks", "read_architectures"]


def read_architectures(root: Path) -> dict[str, Any] | None:
    """The ``summary.json`` of a study across architectures in ``root`` (None if none)."""
    return read_summary_of_kind(root, "study_architectures")


def _steps(table: pd.DataFrame) -> list[int]:
    prefix = "relative_border_score_step"
    return sorted({int(c[len(prefix):]) for c in table.columns
                   if c.startswith(prefix) and c[len(prefix):].isdigit()})


def architectures_view(table: pd.DataFrame) -> pd.DataFrame:
    """Per architecture and analyzer kind: accuracy, control, gain, the relative border score
    per explained step and its change (means over seeds with 95 % t-intervals)."""
    def interval(r: pd.Series, name: str, sign: bool = False) -> str:
        return ci(r[name], r[f"{name}_ci_low"], r[f"{name}_ci_high"], sign=sign)

    rows = []
    for _, r in table.iterrows():
        row = {"model": r["model"], "analyzer": f"{r['analyzer']} ({r['analyzer_kind']})",
               "seeds": str(r["n_seeds"]),
               "acc. at training step": interval(r, "test_accuracy_train_step"),
               "shuffled control": interval(r, "control_accuracy"),
               "selected steps": str(r["selected_steps"]),
               "gain [95% CI]": interval(r, "test_gain", sign=True),
               "seeds + / -": f"{r['n_seeds_gaining']} / {r['n_seeds_losing']}"}
        for k in _steps(table):
            row[f"relative B, step {k}"] = interval(r, f"relative_border_score_step{k}")
            change = r.get(f"relative_border_change_step{k}")
            if change is not None and pd.notna(change):
                row[f"change, step {k}"] = interval(r, f"relative_border_change_step{k}",
                                                    sign=True)
            pooled = r.get(f"pooled_relative_border_score_step{k}")
            if pooled is not None and pd.notna(pooled):
                row[f"pooled relative B, step {k}"] = interval(
                    r, f"pooled_relative_border_score_step{k}")
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def pairs_view(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per pair, quantity, analyzer kind and step: the mean over seeds of the per-seed
    difference A - B with its t-interval, and the seeds where A / B is higher."""
    return pd.DataFrame({
        "A - B": [f"{a} - {b}" for a, b in zip(pairs["model_a"], pairs["model_b"])],
        "quantity": pairs["quantity"].astype(str),
        "analyzer": ["" if pd.isna(k) else str(k) for k in pairs["analyzer_kind"]],
        "step": ["" if pd.isna(s) else str(int(s)) for s in pairs["step"]],
        "mean [95% CI]": [ci(r.mean, r.ci_low, r.ci_high, sign=True)
                          for r in pairs.itertuples()],
        "A / B higher": [f"{r.n_a_higher} / {r.n_b_higher}" for r in pairs.itertuples()],
        "McNemar p per seed": ["" if pd.isna(p) else str(p)
                               for p in pairs["per_seed_mcnemar_p"]],
    })


def _studies(summary: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every architecture's seeds, border rows and share profiles at each seed's training
    step, with a ``model`` column, each study read once
    (:func:`~kvlrp.analysis.study_architectures.read_architecture`)."""
    from kvlrp.analysis.study_architectures import read_architecture

    seeds, border, profiles = [], [], []
    for model in summary["models"]:
        data = read_architecture(summary["studies"][model], model)
        steps = data.seeds.set_index("seed")["train_step"]
        at_train = data.profiles["step"].to_numpy() == data.profiles["seed"].map(steps).to_numpy()
        seeds.append(data.seeds.assign(model=model))
        border.append(data.border.assign(model=model))
        profiles.append(data.profiles[at_train].assign(model=model))
    return tuple(pd.concat(p, ignore_index=True) for p in (seeds, border, profiles))


def architectures_blocks(root: Path, plots: Path) -> list[Block]:
    """The section across architectures (empty if ``root`` holds no such study)."""
    summary = read_architectures(root)
    if summary is None:
        return []
    table = fs.read_csv(root / "study_architectures.csv")
    pairs = fs.read_csv(root / "study_architecture_pairs.csv")
    seeds, border, profiles = _studies(summary)
    png = plot_architectures(border, seeds, profiles, summary["models"],
                             plots / "study_architectures.png")
    analyzers = pd.DataFrame([{"model": m, "natural analyzer": a["natural"],
                               "common analyzer": a.get("common", ""),
                               "study": f"`{m}/`"}
                              for m, a in summary["analyzers"].items()])
    models = ", ".join(f"`{m}`" for m in summary["models"])
    return [
        Heading(f"Across {len(summary['models'])} architectures"),
        Paragraph(f"Architectures {models}, each trained with seeds {summary['seeds']} on the "
                  f"same shards with the same clip length, step and training budget "
                  f"({summary['n_test_videos']} test videos, the same for all). Each seed is "
                  f"explained with the architecture's natural analyzer and with the common "
                  f"analyzer `{summary['common_analyzer']}`, the fair comparison across "
                  f"architectures. Means over seeds with 95 % Student-t intervals over "
                  f"seeds; accuracies do not depend on the analyzer."),
        Table(analyzers, root / "summary.json"),
        Figure(png, "Per architecture. Top: relative border score per explained step (mean "
                    "over seeds, 95 % t-interval), natural and common analyzer. Middle: "
                    "val-selected test gain per seed (paired 95 % interval; k: the selected "
                    "step) and their mean. Bottom: mean share per frame position at the "
                    "training step (mean over seeds) and the prior's shares"),
        Paragraph("Per architecture and analyzer:"),
        Table(architectures_view(table), root / "study_architectures.csv"),
        Paragraph("Paired differences between architectures (A - B per seed over the same "
                  "test videos and seeds; mean over seeds with its t-interval; exact McNemar "
                  "per seed for the accuracy):"),
        Table(pairs_view(pairs), root / "study_architecture_pairs.csv"),
        Paragraph(f"Each architecture's own study (per seed and across seeds): "
                  f"`kvlrp report` of its folder, e.g. `{summary['models'][0]}/`."),
    ]
