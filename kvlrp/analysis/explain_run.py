"""``run_explain``: frame relevance, prior, border scores, frame flipping and heatmaps of a model
over the evaluation clips of a shard folder, written as CSV/JSON/PNG/GIF into one folder,
resumable step by step."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvlrp.analysis.border_change import border_changes
from kvlrp.analysis.class_check import check_classes
from kvlrp.analysis.explain import (
    Analyzer,
    AnalyzerFactory,
    analyzer_factory,
    explain_frames,
    reinitialised_clone,
)
from kvlrp.analysis.flipping import frame_flipping_table, random_scores
from kvlrp.analysis.heatmaps import heatmap_gif, heatmap_strip
from kvlrp.analysis.profiles import summarize_profiles
from kvlrp.analysis.resume import read_state, read_table, run_settings, write_table
from kvlrp.analysis.shares import frame_relevance
from kvlrp.atomic import write_csv, write_json
from kvlrp.safe_paths import check_out_dir, check_positive, confined, safe_part

DEFAULT_ANALYZER = "deep_taylor.bounded"
#: Prior seeds start here, away from training seeds (a prior re-initialised with the training
#: seed would reproduce the trained model's own initial weights).
PRIOR_SEED_OFFSET = 1000
#: Per-step tables kept in ``partial/`` (``explain_step<step>_<key>.csv``).
_TABLES = ("frame", "prior", "excluded", "flipping", "flipping_clips")


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
    by_class = [list(g["video_id"].astype(str)) for _, g in index.groupby("label", sort=True)]
    chosen: list[str] = []
    while len(chosen) < n_videos and any(by_class):
        for videos in by_class:
            if videos and len(chosen) < n_videos:
                chosen.append(videos.pop(0))
    chosen_set = set(chosen)
    return lambda vid, clip_index: clip_index == 0 and vid in chosen_set


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

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    from kvlrp.data.pipeline import NORMALIZATION_BOUNDS
    from kvlrp.data.shards import read_index

    out = check_out_dir(out_dir)
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
    bounds = tuple(float(b) for b in NORMALIZATION_BOUNDS[info.normalization])
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
    # Everything a step's tables depend on (the bootstrap, n_boot, is redone from them anyway).
    # A custom analyzer is known here only by its name.
    settings = {**run_settings(model, info, shard_dir, split, clips_per_video),
                "classes": list(info.classes), "analyzer": name, "target": target,
                "prior_seeds": prior_seed_list, "flip_videos": flip_videos,
                "flip_fill": flip_fill, "n_heatmaps": n_heatmaps, "batch_size": batch_size,
                "seed": seed}
    states: dict[int, dict] = {}
    changed: set[str] = set()
    for step in dict.fromkeys(steps):
        state, diff = _saved_step(partial, step, {**settings, "step": step}, out)
        if state is not None:
            states[step] = state
        changed.update(diff)
    pending = [s for s in dict.fromkeys(steps) if s not in states]
    if changed:
        print(f"kvlrp explain: partial results in {partial} were written with other settings "
              f"or model weights (changed: {', '.join(sorted(changed))}); recomputing step(s) "
              f"{', '.join(map(str, pending))}")
    if states and progress:
        print(f"kvlrp explain: reusing step(s) {', '.join(map(str, states))} from {partial}")
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
                progress=progress)
    # The final tables are always assembled from partial/, so a resumed run and an
    # uninterrupted one start the summary from the same values.
    parts = {key: [] for key in _TABLES}
    summary: dict[str, Any] = {"n_clips": 0}
    heatmap_files = []
    for step in steps:
        state = states[step]
        for key, columns in state["tables"].items():
            parts[key].append(read_table(_table_path(partial, step, key), columns))
        summary["n_clips"] += state["n_clips"]
        heatmap_files += [out / "heatmaps" / f for f in state["heatmaps"]]
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
    ref_step = info.step if info.step in steps else steps[0]
    changes = border_changes(frame, prior if len(prior) else None, ref_step, n_boot=n_boot,
                             seed=seed)
    files["border_changes"] = write_csv(changes, out / "border_changes.csv")
    if flip_curves:
        files["frame_flipping"] = write_csv(pd.concat(flip_curves, ignore_index=True),
                                            out / "frame_flipping.csv")
        files["frame_flipping_clips"] = write_csv(pd.concat(flip_clips, ignore_index=True),
                                                  out / "frame_flipping_clips.csv")
    flip = pd.concat(flip_curves, ignore_index=True) if flip_curves else pd.DataFrame()
    summary.update({
        "kind": "explain", "analyzer": name, "target": target, "split": split,
        "steps": steps, "train_step": info.step, "clip_len": info.clip_len,
        "clips_per_video": clips_per_video, "prior": prior_note, "prior_seeds": prior_seeds,
        "n_excluded": int((excl["model"] == "trained").sum()),
        "n_excluded_prior": int((excl["model"] != "trained").sum()),
        "border": borders[borders["class"] == "all"].to_dict("records"),
        "border_by_class": borders[borders["class"] != "all"].to_dict("records"),
        "border_changes": changes.to_dict("records"),
        "flip_fill": flip_fill,
        "flipping_auc": {} if flip.empty else {
            f"step {s}": g.groupby("method", sort=False)["auc"].first().to_dict()
            for s, g in flip.groupby("step")},
        "relative_share": "mean_share / prior_share, scaled to mean 1 over positions",
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
    state, changed = read_state(partial / f"explain_step{step}.json", settings)
    if state is None or not state.get("complete"):
        return None, changed
    files = [_table_path(partial, step, key) for key in state["tables"]]
    files += [out / "heatmaps" / f for f in state["heatmaps"]]
    if not all(f.exists() for f in files):
        return None, []
    return state, []


def _explain_step(model, info, shard_dir, out: Path, step: int, settings: dict, *, main,
                  priors, keep, name, split, clips_per_video, batch_size, target, n_heatmaps,
                  bounds, flip_fill, seed, progress) -> dict:
    """Frame relevance, prior profiles, frame flipping and heatmaps at one step, written to
    ``partial/`` (tables first, then the state file that marks the step complete)."""
    from kvlrp.data.pipeline import eval_dataset

    partial = out / "partial"
    spec = info.clip_spec(step=step)
    data = eval_dataset(shard_dir, spec, split=split, n_clips=clips_per_video,
                        batch_size=batch_size)
    batches = (_numpy(b) for b in _progress(data, progress, f"explain step {step}"))
    result = explain_frames(model, batches, main, step=step, class_names=info.classes,
                            analyzer_name=name, target=target, prior_analyzers=priors,
                            keep=keep)
    if not result.n_clips:  # never mark an empty step complete
        raise ValueError(f"no evaluation clip at step {step} in split {split!r} of {shard_dir} "
                         f"(is every video shorter than a clip under short_policy='skip'?)")
    tables = {"frame": result.frame, "prior": result.prior, "excluded": result.excluded}
    heatmaps: list[Path] = []
    if result.kept:
        tables["flipping"], tables["flipping_clips"] = _flipping(model, result.kept, name, step,
                                                                 flip_fill, seed)
        heatmaps = _heatmaps(result.kept, out / "heatmaps", n_heatmaps, bounds, info.classes)
    state = {"settings": settings, "complete": True, "n_clips": result.n_clips,
             "heatmaps": [p.name for p in heatmaps],
             "tables": {key: write_table(df, _table_path(partial, step, key))
                        for key, df in tables.items()}}
    write_json(state, partial / f"explain_step{step}.json")
    return state


def _numpy(batch: dict) -> dict:
    return {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in batch.items()}


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit="batch")


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
                                   shares=k["shares"], title=title, bounds=bounds))
        files.append(heatmap_gif(k["clip"], k["relevance"], confined(folder, f"{stem}.gif"),
                                 shares=k["shares"], bounds=bounds))
    return files
