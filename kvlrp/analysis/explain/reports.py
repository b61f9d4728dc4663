"""The explain tables: where each step's tables are kept in ``partial/``, and the final tables
and ``summary.json`` assembled from them (:func:`write_explain_reports`, for one run and for
``kvlrp merge`` alike)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from kvlrp.analysis.measures.border_change import border_changes
from kvlrp.analysis.measures.flipping import auc_table
from kvlrp.analysis.measures.layer_profiles import (
    channel_table,
    summarize_layers,
    top_border_channels,
)
from kvlrp.analysis.measures.pooled import POOLED_NOTE
from kvlrp.analysis.measures.profiles import summarize_profiles
from kvlrp.analysis.runs.partition import sort_rows, video_rank
from kvlrp.analysis.runs.run_files import read_table
from kvlrp.analysis.runs.skeleton import write_summary
from kvlrp.infra.atomic import write_csv

__all__ = ["TABLES", "THROUGHPUT_NOTE", "state_path", "table_path", "write_explain_reports"]

#: Per-step tables kept in ``partial/`` (``explain_step<step>_<key>.csv``).
TABLES = ("frame", "prior", "excluded", "flipping", "flipping_clips", "layers", "layer_prior",
          "channels")
#: Row order of the final tables (``video_id`` in shard index order; the same for one run and
#: for the merged tables of several workers).
_ROW_ORDER = {"frame": ("video_id", "clip_index", "position"),
              "prior": ("seed", "video_id", "clip_index", "position"),
              "excluded": ("model", "video_id", "clip_index"),
              "layers": ("depth", "video_id", "clip_index", "position"),
              "layer_prior": ("seed", "depth", "video_id", "clip_index", "position")}
#: What ``summary.json``'s ``throughput`` measures.
THROUGHPUT_NOTE = (
    "clips explained per second of wall time in the trained model's analyzer: its analyze() "
    "calls, one per batch of batch_size clips (the relevance pass with its forward pass; the "
    "first batch's graph tracing included), per step; not decoding, the prediction pass, the "
    "prior copies, frame flipping or heatmaps. A step reused from partial/ keeps the time "
    "measured when it was computed; merged workers add up their clips and times. "
    "clips_per_second_after_first_batch leaves out the first batch of each step (and of "
    "each worker), where the analyzer's graph is traced.")
_TEMPORAL_NOTE = ("selective relevance (Hiley et al. 2020): voxels whose |temporal Sobel "
                  "derivative| of the relevance exceeds temporal_sigma standard deviations "
                  "over the clip (time padded by repeating the border frame); "
                  "temporal_share = share of a position's relevance that is temporal")


def table_path(partial: Path, step: int, key: str) -> Path:
    """Where the table ``key`` (one of :data:`TABLES`) of ``step`` is kept."""
    return partial / f"explain_step{step}_{key}.csv"


def state_path(partial: Path, step: int) -> Path:
    """The state file that marks ``step`` complete (written after its tables)."""
    return partial / f"explain_step{step}.json"


def write_explain_reports(out: Path, sources: Sequence[tuple[Path, dict]],
                          context: dict) -> dict:
    """Assemble the final explain tables and ``summary.json`` from per-step partial tables.

    ``sources``: ``(partial folder, {step: state})`` of one run, or of each worker of a split
    run (:mod:`kvlrp.commands.merge`); rows are put in ``video_order`` (the shard index's
    order), so both give the same tables. Heatmaps must already be in ``out/heatmaps``.
    """
    # The final tables are always assembled from partial/, so a resumed run and an
    # uninterrupted one start the summary from the same values.
    steps = context["steps"]
    parts, heatmap_files = _gather(out, sources, steps, video_rank(context["video_order"]))
    tables, files = _write_tables(out, parts, context)
    fields = _summary_fields(tables, context)
    fields["throughput"] = _throughput(sources, steps)
    fields["n_clips"] = sum(t["n_clips"] for t in fields["throughput"])
    fields["heatmaps"] = [str(p) for p in heatmap_files]
    return write_summary(out, "explain", context, files, fields)


def _gather(out: Path, sources: Sequence[tuple[Path, dict]], steps: Sequence[int],
            rank: Mapping[str, int]) -> tuple[dict[str, list[pd.DataFrame]], list[Path]]:
    """The partial tables of every step (each step's rows in one run's order) and the
    heatmap files."""
    parts: dict[str, list[pd.DataFrame]] = {key: [] for key in TABLES}
    heatmap_files: list[Path] = []
    for step in steps:
        step_parts: dict[str, list[pd.DataFrame]] = {key: [] for key in TABLES}
        for partial, states in sources:
            state = states[step]
            for key, columns in state["tables"].items():
                step_parts[key].append(read_table(table_path(partial, step, key), columns))
            heatmap_files += [out / "heatmaps" / f for f in state["heatmaps"]]
        for key, tables in step_parts.items():
            if tables:
                parts[key].append(sort_rows(pd.concat(tables, ignore_index=True), rank,
                                            _ROW_ORDER[key]) if key in _ROW_ORDER
                                  else pd.concat(tables, ignore_index=True))
    return parts, heatmap_files


def _write_tables(out: Path, parts: dict[str, list[pd.DataFrame]],
                  context: dict) -> tuple[dict[str, pd.DataFrame], dict[str, Path]]:
    """Write the final tables; returns them by name, and their files."""
    n_boot, seed = context["n_boot"], context["seed"]
    frame = pd.concat(parts["frame"], ignore_index=True)
    prior = pd.concat(parts["prior"], ignore_index=True)
    excl = pd.concat(parts["excluded"], ignore_index=True)
    table, borders = summarize_profiles(frame, prior if len(prior) else None, n_boot=n_boot,
                                        seed=seed)
    files = {
        "frame_relevance": write_csv(frame, out / "frame_relevance.csv"),
        "frame_relevance_summary": write_csv(table, out / "frame_relevance_summary.csv"),
        "border_scores": write_csv(borders, out / "border_scores.csv"),
        "frame_relevance_prior": write_csv(prior, out / "frame_relevance_prior.csv"),
        "excluded_clips": write_csv(excl, out / "excluded_clips.csv"),
    }
    steps, train_step = context["steps"], context["train_step"]
    ref_step = train_step if train_step in steps else steps[0]
    changes = border_changes(frame, prior if len(prior) else None, ref_step, n_boot=n_boot,
                             seed=seed)
    files["border_changes"] = write_csv(changes, out / "border_changes.csv")
    aucs = _write_flipping(out, parts["flipping"], parts["flipping_clips"], files, n_boot, seed)
    layer_fields = _write_layers(out, parts, files, n_boot, seed)
    return {"excluded": excl, "borders": borders, "changes": changes, "aucs": aucs,
            "layers": layer_fields}, files


def _summary_fields(tables: dict[str, pd.DataFrame], context: dict) -> dict[str, Any]:
    """The explain-only keys of ``summary.json`` (border scores, flipping, prior)."""
    excl, borders, aucs = tables["excluded"], tables["borders"], tables["aucs"]
    return {
        "analyzer": context["analyzer"], "target": context["target"],
        "spans": context.get("spans"), "prior": context["prior"],
        "prior_seeds": context["prior_seeds"],
        "n_excluded": int((excl["model"] == "trained").sum()),
        "n_excluded_prior": int((excl["model"] != "trained").sum()),
        "border": borders[borders["class"] == "all"].to_dict("records"),
        "border_by_class": borders[borders["class"] != "all"].to_dict("records"),
        "border_changes": tables["changes"].to_dict("records"),
        "flip_fill": context["flip_fill"],
        "flipping_auc": {} if aucs.empty else {
            f"step {s}": {c: gc.set_index("method")["auc"].to_dict()
                          for c, gc in g.groupby("curve")}
            for s, g in aucs.groupby("step")},
        "flipping_best": {} if aucs.empty else {
            f"step {s} {c}": g.loc[g["rank"] == 1, "method"].tolist()
            for (s, c), g in aucs.groupby(["step", "curve"])},
        "relative_share": "mean_share / prior_share, scaled to mean 1 over positions",
        "pooled_border": POOLED_NOTE,
        "pooled_border_undefined": [
            {"step": step, "class": name, "reasons": reasons}
            for (step, name), reasons in borders.attrs.get("pooled_notes", {}).items()],
        "temporal_sigma": context.get("temporal_sigma"), "temporal": _TEMPORAL_NOTE,
        "throughput_note": THROUGHPUT_NOTE,
        **tables["layers"],
    }


def _write_flipping(out: Path, curves: list[pd.DataFrame], clips: list[pd.DataFrame],
                    files: dict[str, Path], n_boot: int, seed: int) -> pd.DataFrame:
    """Write the frame flipping tables (if any clip was flipped) into ``files``; returns
    the AUC table (empty without flipping)."""
    if not curves:
        return pd.DataFrame()
    files["frame_flipping"] = write_csv(pd.concat(curves, ignore_index=True),
                                        out / "frame_flipping.csv")
    all_clips = pd.concat(clips, ignore_index=True)
    files["frame_flipping_clips"] = write_csv(all_clips, out / "frame_flipping_clips.csv")
    aucs = auc_table(all_clips, n_boot=n_boot, seed=seed)
    files["frame_flipping_auc"] = write_csv(aucs, out / "frame_flipping_auc.csv")
    return aucs


def _write_layers(out: Path, parts: dict[str, list[pd.DataFrame]], files: dict[str, Path],
                  n_boot: int, seed: int) -> dict[str, Any]:
    """Write the intermediate-layer tables (if layers were measured) into ``files``; returns
    the summary's ``layer_border``, ``layer_pooled_border_undefined`` and
    ``layer_channels_top`` (empty without them)."""
    from kvlrp.analysis.report.plots import plot_layer_profiles  # (matplotlib)

    fields: dict[str, Any] = {}
    if parts["layers"]:
        clips = pd.concat(parts["layers"], ignore_index=True)
        prior = (pd.concat(parts["layer_prior"], ignore_index=True) if parts["layer_prior"]
                 else pd.DataFrame())
        profiles, borders = summarize_layers(clips, prior if len(prior) else None,
                                             n_boot=n_boot, seed=seed)
        files["layer_profiles"] = write_csv(profiles, out / "layer_profiles.csv")
        files["layer_border_scores"] = write_csv(borders, out / "layer_border_scores.csv")
        files["layer_relevance"] = write_csv(clips, out / "layer_relevance.csv")
        if len(prior):
            files["layer_relevance_prior"] = write_csv(prior, out / "layer_relevance_prior.csv")
        if len(profiles):
            files["layer_profiles_plot"] = plot_layer_profiles(profiles,
                                                               out / "layer_profiles.png")
        fields["layer_border"] = borders.to_dict("records")
        fields["layer_pooled_border_undefined"] = [
            {"step": step, "layer": layer, "reasons": reasons}
            for (step, layer), reasons in borders.attrs.get("pooled_notes", {}).items()]
    if parts["channels"]:
        channels = channel_table(pd.concat(parts["channels"], ignore_index=True))
        files["concept_profiles"] = write_csv(channels, out / "concept_profiles.csv")
        fields["layer_channels_top"] = top_border_channels(channels).to_dict("records")
    return fields


def _throughput(sources: Sequence[tuple[Path, dict]], steps: Sequence[int]) -> list[dict]:
    """Per step: clips explained, seconds in the trained model's analyzer and clips/s, also
    without each source's first batch (:data:`THROUGHPUT_NOTE`; None where a step was saved
    without its times, or where no batch follows the first)."""
    rows = []
    for step in steps:
        states = [states[step] for _, states in sources]
        n_clips = sum(int(state["n_clips"]) for state in states)
        timed = [s for s in states if "analyze_seconds" in s and "first_batch" in s]
        seconds = rate = warm = None
        if len(timed) == len(states):
            seconds = float(sum(s["analyze_seconds"] for s in timed))
            rate = n_clips / seconds if seconds > 0 else None
            warm_clips = n_clips - sum(int(s["first_batch"][0]) for s in timed)
            warm_seconds = seconds - sum(float(s["first_batch"][1]) for s in timed)
            warm = warm_clips / warm_seconds if warm_clips and warm_seconds > 0 else None
        rows.append({"step": step, "n_clips": n_clips, "analyze_seconds": seconds,
                     "clips_per_second": rate, "clips_per_second_after_first_batch": warm})
    return rows
