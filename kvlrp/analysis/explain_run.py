"""``run_explain``: frame relevance, prior, border scores, frame flipping and heatmaps of a model
over the evaluation clips of a shard folder, written as CSV/JSON/PNG/GIF into one folder,
resumable step by step."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvlrp import resume
from kvlrp.analysis.border_change import border_changes
from kvlrp.analysis.class_check import check_classes
from kvlrp.analysis.explain import (
    Analyzer,
    AnalyzerFactory,
    analyzer_factory,
    explain_frames,
    reinitialised_clone,
)
from kvlrp.analysis.flipping import auc_table, frame_flipping_table, random_scores
from kvlrp.analysis.heatmaps import heatmap_gif, heatmap_strip
from kvlrp.analysis.partition import (
    Worker,
    assign_videos,
    sort_rows,
    video_rank,
    write_worker_file,
)
from kvlrp.analysis.profiles import summarize_profiles
from kvlrp.analysis.resume import read_table, run_settings, write_table
from kvlrp.analysis.shares import frame_relevance
from kvlrp.analysis.temporal import DEFAULT_SIGMA
from kvlrp.analysis.timing import clip_fps, span_seconds
from kvlrp.atomic import write_csv, write_json
from kvlrp.safe_paths import check_out_dir, check_positive, confined, safe_part

logger = logging.getLogger(__name__)

DEFAULT_ANALYZER = "deep_taylor.bounded"
#: Prior seeds start here, away from training seeds (a prior re-initialised with the training
#: seed would reproduce the trained model's own initial weights).
PRIOR_SEED_OFFSET = 1000
#: Per-step tables kept in ``partial/`` (``explain_step<step>_<key>.csv``).
_TABLES = ("frame", "prior", "excluded", "flipping", "flipping_clips")
#: Row order of the final tables (``video_id`` in shard index order; the same for one run and
#: for the merged tables of several workers).
_ROW_ORDER = {"frame": ("video_id", "clip_index", "position"),
              "prior": ("seed", "video_id", "clip_index", "position"),
              "excluded": ("model", "video_id", "clip_index")}


def _resolve_analyzer(analyzer: str | Analyzer | AnalyzerFactory, bounds):
    """-> (name, analyzer factory or None, analyzer object or None)."""
    if isinstance(analyzer, str):
        return analyzer, analyzer_factory(analyzer, bounds), None
    if hasattr(analyzer, "analyze"):
        return type(analyzer).__name__, None, analyzer
    if callable(analyzer):
        return getattr(analyzer, "__name__", "custom"), analyzer, None
    raise TypeError(
        f"analyzer must be an analyzers name, an object with analyze(x, neuron_selection), or a "
        f"factory model -> analyzer; got {type(analyzer).__name__}"
    )


def _keep_predicate(index: pd.DataFrame, n_videos: int):
    """Keep clip 0 of up to ``n_videos`` videos, taken round-robin over the classes."""
    chosen_set = set(_flip_video_ids(index, n_videos))
    return lambda vid, clip_index: clip_index == 0 and vid in chosen_set


def _flip_video_ids(index: pd.DataFrame, n_videos: int) -> list[str]:
    """Up to ``n_videos`` video ids, taken round-robin over the classes."""
    by_class = [list(g["video_id"].astype(str)) for _, g in index.groupby("label", sort=True)]
    chosen: list[str] = []
    while len(chosen) < n_videos and any(by_class):
        for videos in by_class:
            if videos and len(chosen) < n_videos:
                chosen.append(videos.pop(0))
    return chosen


def run_explain(
    model: Any,
    info: Any,
    shard_dir: str | Path,
    out_dir: str | Path,
    analyzer: str | Analyzer | AnalyzerFactory = DEFAULT_ANALYZER,
    steps: Sequence[int] | None = None,
    split: str = "test",
    clips_per_video: int | str = 4,
    prior_seeds: int = 3,
    target: str = "predicted",
    n_heatmaps: int = 3,
    flip_videos: int = 24,
    flip_fill: str = "mean",
    batch_size: int = 8,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
    crops: int = 1,
    temporal_sigma: float | None = DEFAULT_SIGMA,
    worker: Worker | None = None,
    devices: Sequence[str] | None = None,
) -> dict:
    """Explain a model's evaluation clips at one or more steps and write the reports.

    Each finished step's tables are kept in ``out_dir/partial`` (written atomically, with the
    settings and a SHA-1 of the model's weights): a re-run with the same settings reuses the
    completed steps and computes only the missing ones, and ends with the same tables as an
    uninterrupted run; steps saved with other settings or weights are recomputed.

    Parameters
    ----------
    model, info
        A Keras model and its :class:`kvlrp.models.ModelInfo` (classes, clip settings,
        normalisation).
    shard_dir
        Shard folder from ``kvlrp prepare``.
    analyzer
        An ``analyzers`` name, a factory ``model -> analyzer`` or an analyzer object (an object
        cannot be rebuilt for re-initialised models, so it gets no prior).
    steps
        Step sizes (default: the training step).
    prior_seeds
        Re-initialised copies of the architecture averaged into the position prior (0: none).
    target
        ``predicted`` or ``label``: which class each clip's explanation is for.
    flip_videos
        Videos (one clip each, classes round-robin) used for frame flipping and heatmaps.
    crops
        1 (centre crop) or 3 (three crops along the longer side; each crop is a clip of its
        own in the tables, ``clip_index`` counting clips x crops per video).
    temporal_sigma
        Selective relevance threshold (:mod:`kvlrp.analysis.temporal`) for the ``temporal_*``
        columns and the heatmaps' temporal row; None: not computed.
    worker
        One of several workers (:mod:`kvlrp.analysis.partition`): explain only its part of the
        videos and write ``partial/`` plus ``worker.json`` (no final tables); ``kvlrp merge``
        combines the workers' folders into the tables of one run.
    devices
        Split every batch over these devices (``--strategy mirrored``); None: one device.

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    from kvlrp.data.pipeline import NORMALIZATION_BOUNDS
    from kvlrp.data.shards import read_index

    out = check_out_dir(out_dir)  # local, or any tf.io.gfile URL
    partial = out / "partial"
    steps = [int(s) for s in (steps or [info.step])]
    if min(steps) < 1:
        raise ValueError(f"steps must be positive ints; got {steps}")
    check_positive("batch_size", batch_size)
    for name_, value in (("prior_seeds", prior_seeds), ("n_heatmaps", n_heatmaps),
                         ("flip_videos", flip_videos)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name_} must be an int >= 0, got {value!r}")
    if target not in ("predicted", "label"):
        raise ValueError(f"target must be 'predicted' or 'label', got {target!r}")
    check_classes(model, info, shard_dir)
    bounds = NORMALIZATION_BOUNDS[info.normalization]  # floats, or one value per channel
    name, factory, obj = _resolve_analyzer(analyzer, bounds)
    if prior_seeds and factory is None:
        prior_note = "not computed (an analyzer object cannot be rebuilt for new weights)"
        prior_seeds = 0
    elif prior_seeds:
        prior_note = (f"{prior_seeds} re-initialised copies (seeds {PRIOR_SEED_OFFSET + seed}.."
                      f"{PRIOR_SEED_OFFSET + seed + prior_seeds - 1}), each explaining its own "
                      f"top class on the same clips")
    else:
        prior_note = "not computed (prior_seeds=0)"
    prior_seed_list = [PRIOR_SEED_OFFSET + seed + k for k in range(prior_seeds)]
    index = read_index(shard_dir)
    index = index[index["split"] == split]
    if index.empty:
        raise ValueError(f"no videos in split {split!r} of {shard_dir}")
    worker = worker or Worker()
    videos = None
    if worker.is_split:
        videos = assign_videos(index, worker, pinned=_flip_video_ids(index, flip_videos))
    # Everything a step's tables depend on (the bootstrap, n_boot, is redone from them anyway).
    # A custom analyzer is known here only by its name.
    settings = {**run_settings(model, info, shard_dir, split, clips_per_video),
                "classes": list(info.classes), "analyzer": name, "target": target,
                "prior_seeds": prior_seed_list, "flip_videos": flip_videos,
                "flip_fill": flip_fill, "n_heatmaps": n_heatmaps, "batch_size": batch_size,
                "seed": seed, "crops": crops, "temporal_sigma": temporal_sigma}
    if worker.is_split:
        settings["worker"] = [worker.num_workers, worker.index]
    states: dict[int, dict] = {}
    changed: set[str] = set()
    for step in dict.fromkeys(steps):
        state, diff = _saved_step(partial, step, {**settings, "step": step}, out)
        if state is not None:
            states[step] = state
        changed.update(diff)
    pending = [s for s in dict.fromkeys(steps) if s not in states]
    if changed:
        logger.warning("partial results in %s were written with other settings or model "
                       "weights (changed: %s); recomputing step(s) %s", partial,
                       ", ".join(sorted(changed)), ", ".join(map(str, pending)))
    if states and progress:
        logger.info("reusing step(s) %s from %s", ", ".join(map(str, states)), partial)
    if pending:
        main = obj if obj is not None else factory(model)
        priors = {s: factory(reinitialised_clone(model, s)) for s in prior_seed_list}
        keep = _keep_predicate(index, flip_videos)
        for step in pending:
            states[step] = _explain_step(
                model, info, shard_dir, out, step, {**settings, "step": step}, main=main,
                priors=priors, keep=keep, name=name, split=split,
                clips_per_video=clips_per_video, batch_size=batch_size, target=target,
                n_heatmaps=n_heatmaps, bounds=bounds, flip_fill=flip_fill, seed=seed,
                progress=progress, crops=crops, temporal_sigma=temporal_sigma,
                videos=videos, devices=devices)
    fps, fps_note = clip_fps(shard_dir, split)
    spans = [{"step": s, "span_frames": s * (info.clip_len - 1) + 1,
              "span_seconds": span_seconds(s * (info.clip_len - 1) + 1, fps)} for s in steps]
    context = {"analyzer": name, "target": target, "split": split, "steps": steps,
               "train_step": info.step, "clip_len": info.clip_len,
               "clips_per_video": clips_per_video, "crops": crops, "fps": fps,
               "fps_note": fps_note, "spans": spans, "prior": prior_note,
               "prior_seeds": prior_seeds, "flip_fill": flip_fill, "n_boot": n_boot,
               "seed": seed, "temporal_sigma": temporal_sigma,
               "video_order": index["video_id"].astype(str).tolist()}
    if worker.is_split:
        return write_worker_file(out, "explain", worker, settings, context, videos,
                                 {str(s): states[s] for s in steps})
    return write_explain_reports(out, [(partial, states)], context)


def write_explain_reports(out: Path, sources: Sequence[tuple[Path, dict]],
                          context: dict) -> dict:
    """Assemble the final explain tables and ``summary.json`` from per-step partial tables.

    ``sources``: ``(partial folder, {step: state})`` of one run, or of each worker of a split
    run (:mod:`kvlrp.commands.merge`); rows are put in ``video_order`` (the shard index's
    order), so both give the same tables. Heatmaps must already be in ``out/heatmaps``.
    """
    # The final tables are always assembled from partial/, so a resumed run and an
    # uninterrupted one start the summary from the same values.
    steps, n_boot, seed = context["steps"], context["n_boot"], context["seed"]
    rank = video_rank(context["video_order"])
    parts = {key: [] for key in _TABLES}
    summary: dict[str, Any] = {"n_clips": 0}
    heatmap_files = []
    for step in steps:
        step_parts: dict[str, list] = {key: [] for key in _TABLES}
        for partial, states in sources:
            state = states[step]
            for key, columns in state["tables"].items():
                step_parts[key].append(read_table(_table_path(partial, step, key), columns))
            summary["n_clips"] += state["n_clips"]
            heatmap_files += [out / "heatmaps" / f for f in state["heatmaps"]]
        for key, tables in step_parts.items():
            if tables:
                parts[key].append(sort_rows(pd.concat(tables, ignore_index=True), rank,
                                            _ROW_ORDER[key]) if key in _ROW_ORDER
                                  else pd.concat(tables, ignore_index=True))
    frame = pd.concat(parts["frame"], ignore_index=True)
    prior = pd.concat(parts["prior"], ignore_index=True)
    excl = pd.concat(parts["excluded"], ignore_index=True)
    flip_curves, flip_clips = parts["flipping"], parts["flipping_clips"]
    table, borders = summarize_profiles(frame, prior if len(prior) else None, n_boot=n_boot,
                                        seed=seed)
    files = {
        "frame_relevance": write_csv(frame, out / "frame_relevance.csv"),
        "frame_relevance_summary": write_csv(table, out / "frame_relevance_summary.csv"),
        "border_scores": write_csv(borders, out / "border_scores.csv"),
        "frame_relevance_prior": write_csv(prior, out / "frame_relevance_prior.csv"),
        "excluded_clips": write_csv(excl, out / "excluded_clips.csv"),
    }
    train_step = context["train_step"]
    ref_step = train_step if train_step in steps else steps[0]
    changes = border_changes(frame, prior if len(prior) else None, ref_step, n_boot=n_boot,
                             seed=seed)
    files["border_changes"] = write_csv(changes, out / "border_changes.csv")
    aucs = pd.DataFrame()
    if flip_curves:
        files["frame_flipping"] = write_csv(pd.concat(flip_curves, ignore_index=True),
                                            out / "frame_flipping.csv")
        all_clips = pd.concat(flip_clips, ignore_index=True)
        files["frame_flipping_clips"] = write_csv(all_clips, out / "frame_flipping_clips.csv")
        aucs = auc_table(all_clips, n_boot=n_boot, seed=seed)
        files["frame_flipping_auc"] = write_csv(aucs, out / "frame_flipping_auc.csv")
    summary.update({
        "kind": "explain", "analyzer": context["analyzer"], "target": context["target"],
        "split": context["split"], "steps": steps, "train_step": train_step,
        "clip_len": context["clip_len"], "clips_per_video": context["clips_per_video"],
        "crops": context.get("crops", 1), "fps": context.get("fps"),
        "fps_note": context.get("fps_note"), "spans": context.get("spans"),
        "prior": context["prior"], "prior_seeds": context["prior_seeds"],
        "n_excluded": int((excl["model"] == "trained").sum()),
        "n_excluded_prior": int((excl["model"] != "trained").sum()),
        "border": borders[borders["class"] == "all"].to_dict("records"),
        "border_by_class": borders[borders["class"] != "all"].to_dict("records"),
        "border_changes": changes.to_dict("records"),
        "flip_fill": context["flip_fill"],
        "flipping_auc": {} if aucs.empty else {
            f"step {s}": {c: gc.set_index("method")["auc"].to_dict()
                          for c, gc in g.groupby("curve")}
            for s, g in aucs.groupby("step")},
        "flipping_best": {} if aucs.empty else {
            f"step {s} {c}": g.loc[g["rank"] == 1, "method"].tolist()
            for (s, c), g in aucs.groupby(["step", "curve"])},
        "relative_share": "mean_share / prior_share, scaled to mean 1 over positions",
        "temporal_sigma": context.get("temporal_sigma"),
        "temporal": ("selective relevance (Hiley et al. 2020): voxels whose |temporal Sobel "
                     "derivative| of the relevance exceeds temporal_sigma standard deviations "
                     "over the clip (time padded by repeating the border frame); "
                     "temporal_share = share of a position's relevance that is temporal"),
        "files": {k: str(v) for k, v in files.items()},
        "heatmaps": [str(p) for p in heatmap_files],
    })
    write_json(summary, out / "summary.json")
    return summary


def _table_path(partial: Path, step: int, key: str) -> Path:
    return partial / f"explain_step{step}_{key}.csv"


def _saved_step(partial: Path, step: int, settings: dict, out: Path) -> tuple[dict | None,
                                                                            list[str]]:
    """A completed step in ``partial/`` written with ``settings`` (its tables and heatmaps
    still there), else None; and the settings that changed."""
    decision = resume.check(partial / f"explain_step{step}.json", settings)
    state, changed = decision.state, decision.changed
    if state is None or not state.get("complete"):
        return None, changed
    files = [_table_path(partial, step, key) for key in state["tables"]]
    files += [out / "heatmaps" / f for f in state["heatmaps"]]
    if not all(f.exists() for f in files):
        return None, []
    return state, []


def _explain_step(model, info, shard_dir, out: Path, step: int, settings: dict, *, main,
                  priors, keep, name, split, clips_per_video, batch_size, target, n_heatmaps,
                  bounds, flip_fill, seed, progress, crops=1,
                  temporal_sigma=DEFAULT_SIGMA, videos=None, devices=None) -> dict:
    """Frame relevance, prior profiles, frame flipping and heatmaps at one step, written to
    ``partial/`` (tables first, then the state file that marks the step complete)."""
    from kvlrp.data.pipeline import eval_dataset

    partial = out / "partial"
    spec = info.clip_spec(step=step, crops=crops)
    data = eval_dataset(shard_dir, spec, split=split, n_clips=clips_per_video,
                        batch_size=batch_size, videos=videos)
    batches = (_numpy(b) for b in _progress(data, progress, f"explain step {step}"))
    if devices:  # each batch split over the devices, results put back together
        from kvlrp.analysis.devices import SplitAnalyzer, SplitModel

        result = explain_frames(
            SplitModel(model, devices), batches, SplitAnalyzer(main, devices), step=step,
            class_names=info.classes, analyzer_name=name, target=target,
            prior_analyzers={s: SplitAnalyzer(a, devices) for s, a in priors.items()},
            keep=keep, temporal_sigma=temporal_sigma)
    else:
        result = explain_frames(model, batches, main, step=step, class_names=info.classes,
                                analyzer_name=name, target=target, prior_analyzers=priors,
                                keep=keep, temporal_sigma=temporal_sigma)
    if not result.n_clips:  # never mark an empty step complete
        raise ValueError(f"no evaluation clip at step {step} in split {split!r} of {shard_dir} "
                         f"(is every video shorter than a clip under short_policy='skip'?)")
    tables = {"frame": result.frame, "prior": result.prior, "excluded": result.excluded}
    heatmaps: list[Path] = []
    if result.kept:
        tables["flipping"], tables["flipping_clips"] = _flipping(model, result.kept, name, step,
                                                                 flip_fill, seed)
        heatmaps = _heatmaps(result.kept, out / "heatmaps", n_heatmaps, bounds, info.classes)
    fields = {"complete": True, "n_clips": result.n_clips,
              "heatmaps": [p.name for p in heatmaps],
              "tables": {key: write_table(df, _table_path(partial, step, key))
                         for key, df in tables.items()}}
    resume.save(partial / f"explain_step{step}.json", settings, **fields)
    return resume.document(settings, **fields)


def _numpy(batch: dict) -> dict:
    return {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in batch.items()}


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    # disable=None: no bar when stderr is not a terminal (a log file gets no per-batch lines)
    return tqdm(iterable, desc=desc, unit="batch", disable=None)


def _flipping(model, kept: list[dict], name: str, step: int, fill: str, seed: int):
    import analyzers

    clips = np.stack([k["clip"] for k in kept])
    targets = np.array([k["target"] for k in kept])
    gradient = analyzers.create_analyzer("gradient", model).analyze(clips,
                                                                     neuron_selection=targets)
    orderings = {
        name: frame_relevance(np.stack([k["relevance"] for k in kept])),
        "gradient_abs": frame_relevance(np.abs(gradient)),
        "random": random_scores(len(kept), clips.shape[1], seed + step),
    }
    return frame_flipping_table(model, clips, targets, orderings, step=step, fill=fill)


def _round_robin(items: list[dict], key: str) -> list[dict]:
    """Items reordered to cycle through the values of ``key`` (one per class first)."""
    groups: dict = {}
    for item in items:
        groups.setdefault(item[key], []).append(item)
    ordered = []
    while any(groups.values()):
        for queue in groups.values():
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def _heatmaps(kept: list[dict], folder: Path, n: int, bounds, classes) -> list[Path]:
    files = []
    for k in _round_robin(kept, "label")[:n]:
        # video ids come from the data: one flat, safe name, confined to the heatmap folder
        stem = f"step{k['step']}_{safe_part(k['video_id'])}_clip{k['clip_index']}"
        title = (f"{k['video_id']} step {k['step']}: label {k['label']}, predicted "
                 f"{k['predicted']}, explained {classes[k['target']]}")
        files.append(heatmap_strip(k["clip"], k["relevance"], confined(folder, f"{stem}.png"),
                                   shares=k["shares"], title=title, bounds=bounds,
                                   temporal=k.get("temporal")))
        files.append(heatmap_gif(k["clip"], k["relevance"], confined(folder, f"{stem}.gif"),
                                 shares=k["shares"], bounds=bounds))
    return files
