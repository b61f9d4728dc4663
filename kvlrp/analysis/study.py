"""``run_study``: several training runs (seeds) on the same shards, each explained and evaluated
per step, and the findings summarised across seeds.

Per seed ``s`` the folder ``out/seed<s>`` holds ``model/`` (trained with seed ``s``),
``explain/`` (:func:`kvlrp.analysis.explain.run.run_explain` with the study's analyzer), with a
``common_analyzer`` that differs from it also ``explain_common/`` (the same clips explained
with that analyzer, to compare architectures under one rule), and ``strides/``
(:func:`kvlrp.analysis.strides.run.run_strides`, the step chosen on ``val`` and reported on
``test`` with paired tests). Every stage resumes, so an interrupted study re-run with the same
settings continues where it stopped.

Tables in ``out``:

- ``study_seeds.csv``: one row per seed: the val-selected step and its paired test gain
  (interval, McNemar p, videos gained/lost), the test accuracy at the training step, and
  ``paired_ci_half_width``: half the width of the paired 95 % interval of the test accuracy
  difference of the other steps to the training step (mean over those steps), the size of gain
  the test set can tell from none.
- ``study_border.csv``: one row per seed, analyzer kind (``natural``: the study's analyzer;
  ``common``: ``common_analyzer``, only when given) and explained step: border score, relative
  border score (intervals over clips), temporal fraction, the paired change of the relative
  border score against the training step (interval over videos), and, where explain's tables
  have them, the pooled relative border score and change (NaN otherwise).
- ``study_summary.csv``: one row per quantity (and analyzer kind for border quantities):
  across-seed mean, standard deviation, a 95 % t-interval over seeds, and how many seeds are
  above / below the null value (1 for border scores, 0 for gains and changes).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvlrp.analysis.measures.seeds import t_interval
from kvlrp.infra.atomic import write_csv, write_json

logger = logging.getLogger(__name__)

SEED_COLUMNS = ["seed", "train_step", "selected_step", "selected_on", "reported_split",
                "n_test_videos", "test_accuracy_train_step", "test_accuracy_selected_step",
                "test_gain", "test_gain_ci_low", "test_gain_ci_high", "mcnemar_p", "n_gained",
                "n_lost", "best_step_on_test", "paired_ci_half_width"]
BORDER_COLUMNS = ["seed", "analyzer_kind", "analyzer", "step", "n_clips", "border_score",
                  "border_ci_low", "border_ci_high",
                  "relative_border_score", "relative_border_ci_low", "relative_border_ci_high",
                  "temporal_fraction", "temporal_border_score", "relative_border_change",
                  "relative_border_change_ci_low", "relative_border_change_ci_high",
                  "pooled_relative_border_score", "pooled_relative_border_ci_low",
                  "pooled_relative_border_ci_high", "pooled_relative_border_change",
                  "pooled_relative_border_change_ci_low",
                  "pooled_relative_border_change_ci_high"]
#: Columns read from explain's ``border_changes.csv`` (the pooled ones only where it has them;
#: the score columns likewise from ``border_scores.csv``): NaN otherwise.
_CHANGE_KEYS = [c for c in BORDER_COLUMNS if "change" in c]
SUMMARY_COLUMNS = ["quantity", "step", "analyzer_kind", "null_value", "n_seeds", "mean", "std",
                   "ci_low", "ci_high", "n_above", "n_below", "per_seed"]


def summarize_seeds(seeds_df: pd.DataFrame, border_df: pd.DataFrame) -> pd.DataFrame:
    """``study_summary.csv`` from the per-seed tables."""
    rows = []

    def add(quantity: str, step, null: float, values: pd.Series, kind: str = "") -> None:
        vals = [float(x) for x in values]
        mean, std, low, high = t_interval(vals)
        finite = [x for x in vals if np.isfinite(x)]
        rows.append({"quantity": quantity, "step": step, "analyzer_kind": kind,
                     "null_value": null,
                     "n_seeds": len(finite), "mean": mean, "std": std, "ci_low": low,
                     "ci_high": high, "n_above": sum(x > null for x in finite),
                     "n_below": sum(x < null for x in finite),
                     "per_seed": " ".join(f"{x:.4g}" for x in vals)})

    add("test_gain", np.nan, 0.0, seeds_df["test_gain"])
    add("test_accuracy_train_step", np.nan, math.nan, seeds_df["test_accuracy_train_step"])
    add("test_accuracy_selected_step", np.nan, math.nan,
        seeds_df["test_accuracy_selected_step"])
    border_df = border_df.copy()
    if "analyzer_kind" not in border_df:
        border_df["analyzer_kind"] = "natural"
    for (kind, step), g in border_df.groupby(["analyzer_kind", "step"], sort=True):
        add("border_score", step, 1.0, g["border_score"], kind)
        add("relative_border_score", step, 1.0, g["relative_border_score"], kind)
        add("temporal_fraction", step, math.nan, g["temporal_fraction"], kind)
        for quantity, null in (("relative_border_change", 0.0),
                               ("pooled_relative_border_score", 1.0),
                               ("pooled_relative_border_change", 0.0)):
            if quantity in g and g[quantity].notna().any():
                add(quantity, step, null, g[quantity], kind)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _seed_row(seed: int, strides: Mapping[str, Any]) -> dict:
    row = {k: strides.get(k) for k in SEED_COLUMNS}
    row["seed"] = seed
    row["train_step"] = strides.get("train_step")
    row["best_step_on_test"] = strides.get("best", {}).get("best_step")
    videos = pd.read_csv(strides["files"]["video_predictions"])
    row["n_test_videos"] = int(videos["video_id"].nunique())
    table = pd.DataFrame(strides.get("table", []))
    half = math.nan
    if {"diff_ci_low", "diff_ci_high", "control"} <= set(table.columns):
        other = table[(table["control"] == "none") & (table["step"] != row["train_step"])]
        if len(other):
            half = float(((other["diff_ci_high"] - other["diff_ci_low"]) / 2).mean())
    row["paired_ci_half_width"] = half
    return row


def border_rows(seed: int, explain_dir: Path, analyzer_kind: str = "natural",
                analyzer: str = "") -> list[dict]:
    """``study_border.csv`` rows of one seed's explain folder (class ``all``): its border
    scores and changes, with the pooled columns where explain wrote them (NaN otherwise)."""
    borders = pd.read_csv(explain_dir / "border_scores.csv")
    borders = borders[borders["class"].astype(str) == "all"]
    changes_file = explain_dir / "border_changes.csv"
    changes = pd.read_csv(changes_file) if changes_file.exists() else pd.DataFrame()
    rows = []
    for b in borders.to_dict("records"):
        row = {k: b.get(k, math.nan) for k in BORDER_COLUMNS}
        row.update(seed=seed, analyzer_kind=analyzer_kind, analyzer=analyzer)
        c = changes[changes["step"] == b["step"]] if len(changes) else changes
        rel = dict.fromkeys(_CHANGE_KEYS, math.nan)
        if len(c):
            c = c.iloc[0]
            for key in rel:
                source = key if key in c or key.startswith("pooled_") else key.replace(
                    "relative_", "", 1)
                rel[key] = c.get(source, math.nan)
        row.update(rel)
        rows.append(row)
    return rows


def run_study(
    shard_dir: str | Path,
    out_dir: str | Path,
    seeds: Sequence[int] = (0, 1, 2),
    train_kwargs: Mapping[str, Any] | None = None,
    explain_steps: Sequence[int] | None = None,
    stride_steps: Sequence[int] = (1, 2, 3, 4, 6, 8),
    explain_kwargs: Mapping[str, Any] | None = None,
    strides_kwargs: Mapping[str, Any] | None = None,
    n_boot: int = 1000,
    progress: bool = True,
    common_analyzer: str | None = None,
) -> dict:
    """Train, explain and evaluate one model per seed; write the per-seed and across-seed
    tables (see the module docstring) and ``summary.json`` (``kind: study``).

    Parameters
    ----------
    shard_dir
        Shard folder (with ``train``, ``val`` and ``test`` splits for the honest protocol;
        without ``val`` the strides summaries say the choice was made on ``test``).
    seeds
        Training seeds; each also seeds that run's bootstrap, prior and flipping.
    train_kwargs
        Passed to :func:`kvlrp.training.train` (``model``, ``clip_len``, ``step``, ``size``,
        ``epochs``, ...), except ``seed``.
    explain_steps
        Steps explained (default: the training step and the largest stride step).
    explain_kwargs, strides_kwargs
        Passed to ``run_explain`` / ``run_strides`` (``analyzer``, ``clips_per_video``,
        ``prior_seeds``, ``flip_videos``, ``flip_fill``, ...).
    common_analyzer
        A second analyzer explaining the same steps into ``explain_common/`` (rows of kind
        ``common`` in ``study_border.csv``); the same as ``explain_kwargs["analyzer"]``: the
        ``explain/`` run serves both kinds. None: only the study's analyzer.

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    from kvlrp.analysis.explain.config import DEFAULT_ANALYZER
    from kvlrp.analysis.explain.frames import check_analyzer_name
    from kvlrp.analysis.explain.run import run_explain
    from kvlrp.analysis.runs.provenance import run_provenance
    from kvlrp.analysis.strides.run import run_strides
    from kvlrp.models import load_model
    from kvlrp.training import train

    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct ints, at least one; got {seeds}")
    out = Path(out_dir)
    train_kwargs = dict(train_kwargs or {})
    if "seed" in train_kwargs:
        raise ValueError("train_kwargs must not hold 'seed': the study sets it per run")
    explain_kwargs = dict(explain_kwargs or {})
    natural = str(explain_kwargs.get("analyzer", DEFAULT_ANALYZER))
    if common_analyzer is not None:  # a bad name fails now, not after the training
        check_analyzer_name(common_analyzer)
    kinds = {"natural": ("explain", natural)}
    if common_analyzer is not None:
        kinds["common"] = ("explain" if common_analyzer == natural else "explain_common",
                           str(common_analyzer))
    seed_rows, b_rows, runs = [], [], {}
    for i, seed in enumerate(seeds):
        folder = out / f"seed{seed}"
        logger.info("study: seed %s (%d/%d) -> %s", seed, i + 1, len(seeds), folder)
        train(shard_dir, folder / "model", seed=seed, progress=progress, **train_kwargs)
        model, info = load_model(folder / "model")
        steps = list(explain_steps or dict.fromkeys([info.step, max(stride_steps)]))
        for sub, name in dict(kinds.values()).items():
            run_explain(model, info, shard_dir, folder / sub, steps=steps, seed=seed,
                        n_boot=n_boot, progress=progress, model_path=folder / "model",
                        **{**explain_kwargs, "analyzer": name})
        strides = run_strides(model, info, shard_dir, folder / "strides", steps=stride_steps,
                              seed=seed, n_boot=n_boot, progress=progress,
                              model_path=folder / "model", **dict(strides_kwargs or {}))
        seed_rows.append(_seed_row(seed, strides))
        for kind, (sub, name) in kinds.items():
            b_rows += border_rows(seed, folder / sub, kind, name)
        runs[seed] = str(folder)
    seeds_df = pd.DataFrame(seed_rows, columns=SEED_COLUMNS)
    border_df = pd.DataFrame(b_rows, columns=BORDER_COLUMNS)
    summary_df = summarize_seeds(seeds_df, border_df)
    files = {
        "study_seeds": write_csv(seeds_df, out / "study_seeds.csv"),
        "study_border": write_csv(border_df, out / "study_border.csv"),
        "study_summary": write_csv(summary_df, out / "study_summary.csv"),
    }
    gain = summary_df[summary_df["quantity"] == "test_gain"].iloc[0]
    summary = {
        "kind": "study", "seeds": seeds, "shards": str(shard_dir), "train": train_kwargs,
        "analyzers": {kind: name for kind, (_, name) in kinds.items()},
        "explain_folders": {kind: sub for kind, (sub, _) in kinds.items()},
        "stride_steps": [int(s) for s in stride_steps],
        "n_test_videos": int(seeds_df["n_test_videos"].max()),
        "selected_on": sorted(set(seeds_df["selected_on"].astype(str))),
        "test_gain_mean": gain["mean"], "test_gain_ci_low": gain["ci_low"],
        "test_gain_ci_high": gain["ci_high"],
        "test_gain_sign": {"positive": int(gain["n_above"]), "negative": int(gain["n_below"]),
                           "zero": len(seeds) - int(gain["n_above"]) - int(gain["n_below"])},
        # Half the width of the paired 95 % interval of the test accuracy difference between
        # another step and the training step (mean over the other steps and the seeds): a
        # true gain about this large is what one seed's test set can tell from no gain.
        "detectable_gain_per_seed": float(np.nanmean(seeds_df["paired_ci_half_width"]))
        if seeds_df["paired_ci_half_width"].notna().any() else math.nan,
        "across_seed_interval": "95 % Student-t interval of the mean over seeds",
        "runs": runs, "files": {k: str(v) for k, v in files.items()},
        # one model per seed: each seed's explain/strides summary names its model file
        "provenance": run_provenance(None, shard_dir),
    }
    write_json(summary, out / "summary.json")
    return summary
