"""``report.md`` and its plots, built from the CSVs and ``summary.json`` files of ``explain``
and ``strides`` runs found in a folder (or its sub-folders)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from kvlrp.analysis.report.plots import plot_flipping, plot_profiles, plot_strides, plot_temporal
from kvlrp.analysis.report.study_section import study_section
from kvlrp.analysis.report.tables import markdown_table
from kvlrp.infra import fs
from kvlrp.infra.atomic import atomic_write

_FILLS = {"mean": "the clip's mean frame", "zero": "zeros (mid-grey)",
          "freeze": "its predecessor (freeze: appearance kept, motion removed)"}


def find_runs(root: str | Path) -> dict[str, Path]:
    """Folders holding an ``explain`` and a ``strides`` run (``summary.json`` with ``kind``),
    searched in ``root`` and up to two levels below it."""
    root = fs.path(root)  # local, or any tf.io.gfile URL
    if not root.is_dir():
        raise FileNotFoundError(f"report folder {root} does not exist")
    runs: dict[str, Path] = {}
    for pattern in ("summary.json", "*/summary.json", "*/*/summary.json"):
        for p in sorted(root.glob(pattern)):
            try:
                kind = json.loads(p.read_text()).get("kind")
            except (ValueError, AttributeError, UnicodeDecodeError) as err:
                raise ValueError(f"{p} is not a readable summary ({type(err).__name__}: "
                                 f"{str(err).splitlines()[0] if str(err) else 'not an object'}"
                                 "); re-run the command that wrote it") from None
            if kind in ("explain", "strides") and kind not in runs:
                runs[kind] = p.parent
    if not runs:
        raise FileNotFoundError(
            f"no explain or strides results under {root}: expected a summary.json written by "
            f"`kvlrp explain` or `kvlrp strides` in it or in a sub-folder"
        )
    return runs


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(str(path), str(root))).as_posix()


def _explain_section(run: Path, root: Path, plots: Path) -> list[str]:
    """The explain part of ``report.md``: border scores, profiles, temporal relevance, frame
    flipping and heatmaps (each with its figure)."""
    summary = json.loads((run / "summary.json").read_text())
    table = fs.read_csv(run / "frame_relevance_summary.csv")
    borders = fs.read_csv(run / "border_scores.csv")
    return (_border_lines(run, summary, borders)
            + _profile_lines(table, borders, root, plots)
            + _temporal_lines(table, borders, summary, root, plots)
            + _flipping_lines(run, summary, root, plots)
            + _heatmap_lines(run, root))


def _border_lines(run: Path, summary: dict, borders: pd.DataFrame) -> list[str]:
    """What was explained, the border scores per step and their paired changes."""
    out = ["## Where in the clip the model looks", ""]
    out.append(
        f"Analyzer `{summary['analyzer']}`, explaining the {summary['target']} class, "
        f"split `{summary['split']}`, {summary['clips_per_video']} clips per video, "
        f"training step {summary.get('train_step')}. Clips with zero total relevance "
        f"(excluded, counted): {summary['n_excluded']} of {summary['n_clips']}. "
        f"Prior: {summary['prior']}."
    )
    out += ["", "Border score B = mean(p[0], p[L-1]) / mean(p[1..L-2]) of the mean share "
            "profile (B > 1: borders dominate), 95 % bootstrap interval over clips; *relative* "
            "divides the profile by the re-initialised architecture's profile first.", ""]
    b = borders[borders["class"].astype(str) == "all"].copy()
    b["B [95% CI]"] = [f"{r.border_score:.3f} [{r.border_ci_low:.3f}, {r.border_ci_high:.3f}]"
                       for r in b.itertuples()]
    b["relative B [95% CI]"] = [
        f"{r.relative_border_score:.3f} [{r.relative_border_ci_low:.3f}, "
        f"{r.relative_border_ci_high:.3f}]" if np.isfinite(r.relative_border_score) else "n/a"
        for r in b.itertuples()]
    out.append(markdown_table(b[["step", "n_clips", "B [95% CI]", "prior_border_score",
                                 "relative B [95% CI]"]]))
    changes = run / "border_changes.csv"
    if changes.exists() and len(fs.read_csv(changes)):
        out += ["", "Change of B against the reference step, paired over the same videos "
                "(each video's clips averaged; 95 % bootstrap resampling videos jointly for "
                "both steps):", "", markdown_table(fs.read_csv(changes))]
    return out


def _profile_lines(table: pd.DataFrame, borders: pd.DataFrame, root: Path,
                   plots: Path) -> list[str]:
    """The share profiles (figure, and raw and relative shares per position and step)."""
    png = plot_profiles(table, borders, plots / "frame_relevance.png")
    everything = table[table["class"].astype(str) == "all"]
    wide = everything.pivot(index="position", columns="step", values="mean_share")
    wide.columns = [f"share, step {s}" for s in wide.columns]
    rel = everything.pivot(index="position", columns="step", values="relative_share")
    rel.columns = [f"relative, step {s}" for s in rel.columns]
    return ["", f"![frame relevance]({_rel(png, root)})", "",
            markdown_table(pd.concat([wide, rel], axis=1).reset_index()), ""]


def _flipping_lines(run: Path, summary: dict, root: Path, plots: Path) -> list[str]:
    """Frame flipping: the areas under the curves, the verdict and the figure (if flipped)."""
    flip = run / "frame_flipping.csv"
    if not flip.exists():
        return []
    curves = fs.read_csv(flip)
    auc_file = run / "frame_flipping_auc.csv"
    if auc_file.exists():
        aucs = fs.read_csv(auc_file)
    else:
        aucs = curves.groupby(["step", "method"], sort=False)["auc"].first().reset_index()
    png = plot_flipping(curves, plots / "frame_flipping.png")
    out = ["## Faithfulness: frame flipping", "",
           f"Frames replaced by {_FILLS[summary.get('flip_fill', 'mean')]}, in "
           "order of frame relevance (most relevant first) or at random; the curve is the "
           "model's probability of the explained class. Deletion removes frames (lower "
           "area = the ordering found the frames the model relies on); insertion starts "
           "from a clip with every frame replaced and restores them (higher area = "
           "better). Orderings: the analyzer's frame relevance, `gradient_abs` (summed "
           "absolute input gradient per frame), `random` (seeded). Intervals: 95 % "
           "bootstrap over clips; `diff_vs_*` pair each clip's area with the same clip's "
           "area under the other ordering.", "", markdown_table(aucs, digits=4), ""]
    return out + _flipping_verdict(aucs) + [f"![frame flipping]({_rel(png, root)})", ""]


def _heatmap_lines(run: Path, root: Path) -> list[str]:
    """Up to six heatmap strips (if any were drawn)."""
    heatmaps = sorted((run / "heatmaps").glob("*.png"))
    if not heatmaps:
        return []
    return (["## Heatmaps", "", "Top: frames; middle: relevance (red positive, blue "
             "negative, one symmetric scale per clip); bottom (when computed): its temporal "
             "part (selective relevance), on the same scale. Animated versions: `.gif` beside "
             "each.", ""]
            + [f"![{p.stem}]({_rel(p, root)})" for p in heatmaps[:6]] + [""])


def _temporal_lines(table: pd.DataFrame, borders: pd.DataFrame, summary: dict, root: Path,
                    plots: Path) -> list[str]:
    """Temporal vs spatial relevance per step and class (selective relevance)."""
    if "temporal_share" not in table.columns or not table["temporal_share"].notna().any():
        return []
    png = plot_temporal(table, plots / "temporal_relevance.png")
    cols = ["step", "class", "n_clips", "temporal_fraction", "temporal_border_score",
            "temporal_border_ci_low", "temporal_border_ci_high", "border_score"]
    return ["## Temporal vs spatial relevance", "",
            f"Selective relevance (Hiley et al. 2020), sigma = {summary.get('temporal_sigma')}: "
            "relevance at voxels where the relevance map changes fast in time (|temporal "
            "Sobel derivative| above sigma standard deviations of the clip) is temporal, the "
            "rest spatial. `temporal_fraction`: the share of all relevance that is temporal; "
            "`temporal_border_score`: the border score of the temporal part alone (95 % "
            "bootstrap over clips).", "", markdown_table(borders[cols]), "",
            f"![temporal relevance]({_rel(png, root)})", ""]


def _flipping_verdict(aucs: pd.DataFrame) -> list[str]:
    """One sentence per step and curve: which ordering ranks frames best, and whether its
    paired difference to random excludes 0."""
    if "rank" not in aucs.columns:
        return []
    lines = []
    for (step, kind), g in aucs.groupby(["step", "curve"]):
        best = g.sort_values("rank").iloc[0]
        if best["method"] == "random":
            verdict = "no ordering beats a random order"
        else:
            low, high = best["diff_vs_random_ci_low"], best["diff_vs_random_ci_high"]
            sure = (high < 0) if kind == "deletion" else (low > 0)
            verdict = (f"`{best['method']}` ranks frames best; against random its paired "
                       f"difference is {best['diff_vs_random']:+.4f} [{low:+.4f}, "
                       f"{high:+.4f}], " + ("an established difference" if sure else
                                            "an interval that includes no difference"))
        lines.append(f"- step {step}, {kind}: {verdict}.")
    return lines + [""]


def _strides_section(run: Path, root: Path, plots: Path) -> list[str]:
    summary = json.loads((run / "summary.json").read_text())
    table = fs.read_csv(run / "stride_accuracy.csv")
    best = summary["best"]
    png = plot_strides(table, plots / "stride_accuracy.png", best)
    out = ["## Accuracy per step (no retraining)", ""]
    out.append(
        f"Split `{summary['split']}`, {summary['clips_per_video']} clips per video, clip "
        f"probabilities averaged per video; interval: 95 % bootstrap over videos. The "
        f"`shuffled` row permutes each clip's frames (seeded) at the training step."
    )
    gain = "n/a" if best["gain"] is None else f"{best['gain']:+.3f}"
    out += ["", f"Best step on `{summary['split']}` itself: **{best['best_step']}** (video "
            f"accuracy "
            f"{best['best_video_accuracy']:.3f}); training step {best['train_step']}: "
            f"{best['train_video_accuracy']}; gain {gain}. Tie rule: {summary['tie_rule']}", "",
            markdown_table(table), "", f"![accuracy per step]({_rel(png, root)})", ""]
    return out[:-5] + _selection_lines(summary) + out[-5:]


def _selection_lines(summary: dict) -> list[str]:
    """The honest gain: step chosen on one split, paired comparison on the reported one."""
    if summary.get("selected_step") is None:
        return []
    if summary.get("test_gain") is None:
        return ["", f"Step {summary['selected_step']} chosen on `{summary['selected_on']}`; "
                f"{summary.get('selection_note', '')}.", ""]
    return [
        "", f"Step chosen on `{summary['selected_on']}`: **{summary['selected_step']}**. On "
        f"`{summary['reported_split']}`: video accuracy {summary['test_accuracy_train_step']:.3f}"
        f" at the training step, {summary['test_accuracy_selected_step']:.3f} at the chosen "
        f"step; paired gain {summary['test_gain']:+.3f} (95 % paired bootstrap over videos "
        f"[{summary['test_gain_ci_low']:+.3f}, {summary['test_gain_ci_high']:+.3f}]; "
        f"{summary['n_gained']} videos gained, {summary['n_lost']} lost; exact McNemar "
        f"p = {summary['mcnemar_p']:.3g}). {summary['selection_note']}. The table's "
        f"`diff_vs_train_step` columns pair every row with the training step the same way."]


def build_report(root: str | Path) -> Path:
    """Write ``root/report.md`` and ``root/plots/*.png``; returns the report's path."""
    root = fs.path(root)  # local, or any tf.io.gfile URL
    runs = find_runs(root)
    plots = root / "plots"
    lines = ["# kvlrp report", ""]
    for kind, run in runs.items():
        lines.append(f"- {kind}: `{_rel(run, root)}`")
    lines.append("")
    lines += study_section(root, plots)
    if "explain" in runs:
        lines += _explain_section(runs["explain"], root, plots)
    if "strides" in runs:
        lines += _strides_section(runs["strides"], root, plots)
    text = "\n".join(lines)
    return atomic_write(root / "report.md", lambda tmp: tmp.write_text(text))
