"""The explain part of the report: border scores and profiles, temporal relevance, frame
flipping and heatmaps, as blocks (:mod:`~kvlrp.analysis.report.blocks`), with their figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from kvlrp.analysis.explain.heatmaps import heatmap_stem
from kvlrp.analysis.measures.layer_profiles import top_border_channels
from kvlrp.analysis.report.blocks import (
    Block,
    Bullets,
    Figure,
    Heading,
    HeatmapClip,
    Heatmaps,
    Paragraph,
    Table,
)
from kvlrp.analysis.report.plots import (
    plot_flipping,
    plot_layer_profiles,
    plot_profiles,
    plot_temporal,
)
from kvlrp.analysis.report.tables import (
    border_view,
    change_view,
    channel_view,
    count,
    flipping_view,
    layer_border_view,
    profile_view,
    temporal_view,
)
from kvlrp.infra import fs

__all__ = ["MAX_HEATMAPS_PER_STEP", "explain_blocks", "flipping_verdict"]

#: Heatmap clips shown per step (the folder may hold more).
MAX_HEATMAPS_PER_STEP = 3
_FILLS = {"mean": "the clip's mean frame", "zero": "zeros (mid-grey)",
          "freeze": "its predecessor (freeze: appearance kept, motion removed)"}


def explain_blocks(run: Path, plots: Path) -> list[Block]:
    """Everything the report says about the explain run in ``run`` (figures into ``plots``)."""
    summary = json.loads((run / "summary.json").read_text())
    table = fs.read_csv(run / "frame_relevance_summary.csv")
    borders = fs.read_csv(run / "border_scores.csv")
    return (_border_blocks(run, summary, borders, table, plots)
            + _heatmap_blocks(run)
            + _temporal_blocks(run, table, borders, summary, plots)
            + _layer_blocks(run, plots)
            + _flipping_blocks(run, summary, plots))


def _border_blocks(run: Path, summary: dict, borders: pd.DataFrame, table: pd.DataFrame,
                   plots: Path) -> list[Block]:
    """What was explained, the share profile with its intervals, border scores per step and
    their paired changes."""
    png = plot_profiles(table, borders, plots / "frame_relevance.png")
    out: list[Block] = [
        Heading("Where in the clip the model looks"),
        Paragraph(f"Analyzer `{summary['analyzer']}`, explaining the {summary['target']} "
                  f"class, split `{summary['split']}`, {count(summary['clips_per_video'], 'clip')} "
                  f"per video, training step {summary.get('train_step')}. Clips with zero total "
                  f"relevance (excluded, counted): {summary['n_excluded']} of "
                  f"{summary['n_clips']}. Prior: {summary['prior']}."),
        Figure(png, "Share of the clip's relevance per frame position (mean over clips, 95 % "
                    "bootstrap interval shaded; dashed: the re-initialised architecture's "
                    "prior); below, the profile relative to that prior"),
        Paragraph("Border score B = mean(p[0], p[L-1]) / mean(p[1..L-2]) of the mean share "
                  "profile (B > 1: the borders dominate), 95 % bootstrap interval over clips; "
                  "*relative* divides the profile by the re-initialised architecture's profile "
                  "first. *Pooled relative* B sums relevance over all clips before dividing "
                  "(ratio of sums, 95 % bootstrap over videos; n/a where a denominator's "
                  "interval includes 0). Read the per-clip relative B for non-negative "
                  "analyzers such as deep_taylor; for signed analyzers (cp_lrp, attnlrp, "
                  "lrp.epsilon), whose clip totals can be near zero or negative, read the "
                  "pooled one, the estimator that stays defined."),
        Table(border_view(borders), run / "border_scores.csv"),
    ]
    changes = run / "border_changes.csv"
    if changes.exists() and len(change_table := fs.read_csv(changes)):
        out += [Paragraph("Change of B against the reference step, paired over the same "
                          "videos (each video's clips averaged; 95 % bootstrap resampling "
                          "videos jointly for both steps):"),
                Table(change_view(change_table), changes)]
    out += [Paragraph("Mean share per frame position over all clips (in brackets: relative "
                      "to the prior, mean 1):"),
            Table(profile_view(table), run / "frame_relevance_summary.csv")]
    return out


def _heatmap_blocks(run: Path) -> list[Block]:
    """Up to :data:`MAX_HEATMAPS_PER_STEP` heatmap clips per step, with their frame shares."""
    strips = sorted((run / "heatmaps").glob("*.png")) if (run / "heatmaps").is_dir() else []
    if not strips:
        return []
    clips = _clip_rows(run)
    shown: dict[str, int] = {}
    items = []
    for strip in sorted(strips, key=lambda p: (_step_of(p.stem), p.stem)):
        step = _step_of(strip.stem)
        if shown.get(step, 0) >= MAX_HEATMAPS_PER_STEP:
            continue
        shown[step] = shown.get(step, 0) + 1
        gif = strip.with_suffix(".gif")
        row = clips.get(strip.stem)
        title = strip.stem if row is None else (
            f"{row['video_id']}, step {row['step']}, clip {row['clip_index']}: label "
            f"{row['label']}, predicted {row['predicted']}")
        items.append(HeatmapClip(strip, gif if gif.exists() else None, title,
                                 None if row is None else row["shares"]))
    return [Heading("Heatmaps"),
            Paragraph("Each clip: **input** (its frames), **relevance** overlaid (red: for the "
                      "explained class, blue: against it; one symmetric scale per clip) and, "
                      "where computed, its **temporal part** (selective relevance, same "
                      "scale); the percentages are each frame's share of the clip's "
                      "relevance."),
            Heatmaps(tuple(items))]


def _step_of(stem: str) -> str:
    return stem.split("_", 1)[0]


def _clip_rows(run: Path) -> dict[str, dict[str, Any]]:
    """Per heatmap file stem: the clip's video, step, labels and frame shares (from
    ``frame_relevance.csv``)."""
    file = run / "frame_relevance.csv"
    if not file.exists():
        return {}
    frame = fs.read_csv(file, dtype={"video_id": str, "label": str, "predicted": str})
    out = {}
    for (step, video, clip), g in frame.groupby(["step", "video_id", "clip_index"], sort=False):
        g = g.sort_values("position")
        first = g.iloc[0]
        out[heatmap_stem(int(step), str(video), int(clip))] = {
            "video_id": video, "step": int(step), "clip_index": int(clip),
            "label": first["label"], "predicted": first["predicted"],
            "shares": tuple(float(v) for v in g["share"])}
    return out


def _temporal_blocks(run: Path, table: pd.DataFrame, borders: pd.DataFrame, summary: dict,
                     plots: Path) -> list[Block]:
    """Temporal vs spatial relevance per step and class (selective relevance)."""
    if "temporal_share" not in table.columns or not table["temporal_share"].notna().any():
        return []
    png = plot_temporal(table, plots / "temporal_relevance.png")
    return [Heading("Temporal vs spatial relevance"),
            Paragraph(f"Selective relevance (Hiley et al. 2020), sigma = "
                      f"{summary.get('temporal_sigma')}: relevance at voxels where the "
                      "relevance map changes fast in time (|temporal Sobel derivative| above "
                      "sigma standard deviations of the clip) is temporal, the rest spatial. "
                      "*Temporal fraction*: the share of all relevance that is temporal; "
                      "*temporal B*: the border score of the temporal part alone (95 % "
                      "bootstrap over clips)."),
            Table(temporal_view(borders), run / "border_scores.csv"),
            Figure(png, "Share of each frame position's relevance that is temporal, per step "
                        "(black: all clips with its 95 % interval; dashed: each class)")]


def _layer_blocks(run: Path, plots: Path) -> list[Block]:
    """Frame-position relevance per layer (``--layers``) and per channel of one layer
    (``--channels-layer``), where the run measured them."""
    out: list[Block] = []
    profiles_file, borders_file = run / "layer_profiles.csv", run / "layer_border_scores.csv"
    if profiles_file.exists() and borders_file.exists():
        profiles = fs.read_csv(profiles_file)
        if len(profiles):
            png = plot_layer_profiles(profiles, plots / "layer_profiles.png")
            out += [Heading("Where the preference arises: relevance by layer"),
                    Paragraph("The relevance arriving at each layer's output, summed over "
                              "everything but its time axis and mapped to input frames "
                              "through the layer's temporal receptive field (each input "
                              "frame to the nearest output position's window centre; a "
                              "position's relevance split evenly over its frames), as a "
                              "share of the layer's total. Depth 0 is the input (the frame "
                              "profile above). A border preference present at the first "
                              "convolutions is made early; one that appears only near the "
                              "classifier is made late. *Time cells*: the layer's distinct "
                              "temporal positions (1: no frame resolution left)."),
                    Figure(png, "Share of each layer's relevance per input frame position, "
                                "input at the top (below: relative to the re-initialised "
                                "architecture's prior, where computed)"),
                    Paragraph("B and relative B per layer as for the frame profile above "
                              "(per clip, 95 % bootstrap over clips); *pooled relative* B "
                              "sums the layer's relevance over all clips before dividing "
                              "(95 % bootstrap over videos; n/a where a denominator's "
                              "interval includes 0). Read the per-clip relative B for "
                              "non-negative analyzers such as deep_taylor; for signed "
                              "analyzers (cp_lrp, attnlrp, lrp.epsilon), whose totals at a "
                              "layer can be near zero or negative, read the pooled one."),
                    Table(layer_border_view(fs.read_csv(borders_file)), borders_file)]
    channels_file = run / "concept_profiles.csv"
    if channels_file.exists():
        channels = fs.read_csv(channels_file)
        if len(channels):
            layer = str(channels["layer"].iloc[0])
            out += [Heading(f"Channels of `{layer}` at the borders", level=3),
                    Paragraph(f"Relevance of layer `{layer}` per channel and input frame "
                              "(concept x time, in the spirit of concept relevance "
                              "propagation), mean over clips. The channels carrying most of "
                              "the relevance at the first and last frames, with their share "
                              "of that border relevance and of all the layer's relevance:"),
                    Table(channel_view(top_border_channels(channels)), channels_file)]
    return out


def _flipping_blocks(run: Path, summary: dict, plots: Path) -> list[Block]:
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
    out: list[Block] = [
        Heading("Faithfulness: frame flipping"),
        Paragraph(f"Frames replaced by {_FILLS[summary.get('flip_fill', 'mean')]}, in order of "
                  "frame relevance (most relevant first) or at random; the curve is the "
                  "model's probability of the explained class. Deletion removes frames (lower "
                  "area = the ordering found the frames the model relies on); insertion "
                  "starts from a clip with every frame replaced and restores them (higher "
                  "area = better). Orderings: the analyzer's frame relevance, `gradient_abs` "
                  "(summed absolute input gradient per frame), `random` (seeded). Intervals: "
                  "95 % bootstrap over clips; *vs* columns pair each clip's area with the same "
                  "clip's area under the other ordering."),
        Table(flipping_view(aucs), auc_file if auc_file.exists() else flip)]
    verdict = flipping_verdict(aucs)
    if verdict:
        out.append(Bullets(tuple(verdict)))
    return out + [Figure(png, "Probability of the explained class as frames are removed "
                              "(deletion) or restored (insertion), per ordering and step")]


def flipping_verdict(aucs: pd.DataFrame) -> list[str]:
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
        lines.append(f"step {step}, {kind}: {verdict}.")
    return lines
