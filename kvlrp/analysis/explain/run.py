"""``run_explain``: frame relevance, prior, border scores, frame flipping and heatmaps of a model
over the evaluation clips of a shard folder, written as CSV/JSON/PNG/GIF into one folder,
resumable step by step."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd

from kvlrp.analysis.explain.config import DEFAULT_ANALYZER, ExplainConfig
from kvlrp.analysis.explain.frames import (
    Analyzer,
    AnalyzerFactory,
    FrameRelevance,
    analyzer_factory,
    explain_frames,
    reinitialised_clone,
)
from kvlrp.analysis.explain.heatmaps import heatmap_gif, heatmap_strip
from kvlrp.analysis.measures.border_change import border_changes
from kvlrp.analysis.measures.flipping import auc_table, frame_flipping_table, random_scores
from kvlrp.analysis.measures.profiles import summarize_profiles
from kvlrp.analysis.measures.shares import frame_relevance
from kvlrp.analysis.runs.class_check import check_classes
from kvlrp.analysis.runs.config_checks import config_from
from kvlrp.analysis.runs.partition import assign_videos, sort_rows, video_rank, write_worker_file
from kvlrp.analysis.runs.run_files import read_table, run_settings, write_table
from kvlrp.analysis.runs.timing import clip_fps, span_seconds
from kvlrp.data.clips.normalization import NORMALIZATION_BOUNDS
from kvlrp.data.clips.spec import DEFAULT_CROPS, clip_span
from kvlrp.infra import resume
from kvlrp.infra.atomic import write_csv, write_json
from kvlrp.infra.safe_paths import check_out_dir, confined, safe_part

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_ANALYZER", "ExplainConfig", "PRIOR_SEED_OFFSET", "THROUGHPUT_NOTE",
           "run_explain", "write_explain_reports"]

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
#: What ``summary.json``'s ``throughput`` measures.
THROUGHPUT_NOTE = (
    "clips explained per second of wall time in the trained model's analyzer: its analyze() "
    "calls, one per batch of batch_size clips (the relevance pass with its forward pass; the "
    "first batch's graph tracing included), per step; not decoding, the prediction pass, the "
    "prior copies, frame flipping or heatmaps. A step reused from partial/ keeps the time "
    "measured when it was computed; merged workers add up their clips and times. "
    "clips_per_second_after_first_batch leaves out the first batch of each step (and of "
    "each worker), where the analyzer's graph is traced.")

T = TypeVar("T")


def round_robin(groups: Iterable[Iterable[T]], limit: int | None = None) -> list[T]:
    """Items taken one from each group in turn (a group's items in order) until all are
    taken, or ``limit`` of them."""
    queues = [deque(g) for g in groups]
    chosen: list[T] = []
    while any(queues) and (limit is None or len(chosen) < limit):
        for queue in queues:
            if queue and (limit is None or len(chosen) < limit):
                chosen.append(queue.popleft())
    return chosen


def _flip_video_ids(index: pd.DataFrame, n_videos: int) -> list[str]:
    """Up to ``n_videos`` video ids, taken round-robin over the classes."""
    return round_robin((g["video_id"].astype(str).tolist()
                        for _, g in index.groupby("label", sort=True)), n_videos)


@dataclass(frozen=True)
class _Plan:
    """What a run computes and what it reuses (from ``partial/``), decided before any work."""

    steps: list[int]
    analyzer_name: str
    #: Builds the analyzer of a model (None: ``analyzer`` is an object, and there is no prior).
    factory: AnalyzerFactory | None
    analyzer: Analyzer | None
    bounds: Any
    prior_seeds: list[int]
    prior_note: str
    #: The split's rows of the shard index.
    index: pd.DataFrame
    #: The frame flipping and heatmap videos (one clip each).
    flip_ids: list[str]
    #: This worker's videos (None: all of them).
    videos: list[str] | None
    settings: dict[str, Any]
    reused: dict[int, dict]
    pending: list[int]

    def step_settings(self, step: int) -> dict[str, Any]:
        """Everything the tables of ``step`` depend on."""
        return {**self.settings, "step": step}


@dataclass(frozen=True)
class _StepAnalyzers:
    """The analyzers of the model and of its re-initialised copies, and the clips kept."""

    main: Analyzer
    priors: dict[int, Analyzer]
    keep: Callable[[str, int], bool]


def run_explain(model: Any, info: Any, shard_dir: str | Path, out_dir: str | Path,
                config: ExplainConfig | None = None, **options: Any) -> dict:
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
    out_dir
        Output folder (local, or any ``tf.io.gfile`` URL).
    config
        The options (:class:`~kvlrp.analysis.explain.config.ExplainConfig`); or give them as
        keywords (``steps=[1, 4], prior_seeds=0, ...``), not both.

    Returns
    -------
    dict
        The content of ``summary.json`` (or, for one of several workers, what it wrote).
    """
    config = config_from(ExplainConfig, config, options, "run_explain")
    out = check_out_dir(out_dir)  # local, or any tf.io.gfile URL
    check_classes(model, info, shard_dir)
    plan = _plan(model, info, shard_dir, out, config)
    states = {**plan.reused, **_compute(model, info, shard_dir, out, config, plan)}
    context = _context(info, shard_dir, config, plan)
    if config.worker.is_split:
        return write_worker_file(out, "explain", config.worker, plan.settings, context,
                                 plan.videos, {str(s): states[s] for s in plan.steps})
    return write_explain_reports(out, [(out / "partial", states)], context)


# --- plan: what to compute, what to reuse ---

def _plan(model: Any, info: Any, shard_dir: str | Path, out: Path,
          config: ExplainConfig) -> _Plan:
    """The steps, analyzers, videos and settings of a run, and which steps ``partial/``
    already holds."""
    from kvlrp.data.shards.folder import read_index

    steps = list(config.steps or [info.step])
    bounds = NORMALIZATION_BOUNDS[info.normalization]  # floats, or one value per channel
    factory, obj = _analyzer_of(config.analyzer, bounds)
    prior_seeds, prior_note = _prior_of(config, factory)
    index = read_index(shard_dir)
    index = index[index["split"] == config.split]
    if index.empty:
        raise ValueError(f"no videos in split {config.split!r} of {shard_dir}")
    flip_ids = _flip_video_ids(index, config.flip_videos)
    videos = (assign_videos(index, config.worker, pinned=flip_ids) if config.worker.is_split
              else None)
    # Everything a step's tables depend on (the bootstrap, n_boot, is redone from them anyway).
    # A custom analyzer is known here only by its name.
    settings = {**run_settings(model, info, shard_dir, config.split, config.clips_per_video),
                "classes": list(info.classes), "analyzer": config.analyzer_name,
                "target": config.target, "prior_seeds": prior_seeds,
                "flip_videos": config.flip_videos, "flip_fill": config.flip_fill,
                "n_heatmaps": config.n_heatmaps, "batch_size": config.batch_size,
                "seed": config.seed, "crops": config.crops,
                "temporal_sigma": config.temporal_sigma}
    if config.worker.is_split:
        settings["worker"] = [config.worker.num_workers, config.worker.index]
    reused, pending = _resume_plan(out / "partial", steps, settings, out, config.progress)
    return _Plan(steps=steps, analyzer_name=config.analyzer_name, factory=factory,
                 analyzer=obj, bounds=bounds, prior_seeds=prior_seeds, prior_note=prior_note,
                 index=index, flip_ids=flip_ids, videos=videos, settings=settings,
                 reused=reused, pending=pending)


def _analyzer_of(analyzer: str | Analyzer | AnalyzerFactory,
                 bounds: Any) -> tuple[AnalyzerFactory | None, Analyzer | None]:
    """-> (analyzer factory or None, analyzer object or None)."""
    if isinstance(analyzer, str):
        return analyzer_factory(analyzer, bounds), None
    if hasattr(analyzer, "analyze"):
        return None, cast(Analyzer, analyzer)
    return cast(AnalyzerFactory, analyzer), None


def _prior_of(config: ExplainConfig, factory: AnalyzerFactory | None) -> tuple[list[int], str]:
    """The prior's seeds and what the summary says about them."""
    n, seed = config.prior_seeds, config.seed
    if n and factory is None:
        return [], "not computed (an analyzer object cannot be rebuilt for new weights)"
    if not n:
        return [], "not computed (prior_seeds=0)"
    note = (f"{n} re-initialised copies (seeds {PRIOR_SEED_OFFSET + seed}.."
            f"{PRIOR_SEED_OFFSET + seed + n - 1}), each explaining its own top class on the "
            f"same clips")
    return [PRIOR_SEED_OFFSET + seed + k for k in range(n)], note


def _resume_plan(partial: Path, steps: Sequence[int], settings: dict, out: Path,
                 progress: bool) -> tuple[dict[int, dict], list[int]]:
    """The completed steps to reuse (step -> state) and the steps to compute."""
    reused: dict[int, dict] = {}
    changed: set[str] = set()
    for step in dict.fromkeys(steps):
        state, diff = _saved_step(partial, step, {**settings, "step": step}, out)
        if state is not None:
            reused[step] = state
        changed.update(diff)
    pending = [s for s in dict.fromkeys(steps) if s not in reused]
    if changed:
        logger.warning("partial results in %s were written with other settings or model "
                       "weights (changed: %s); recomputing step(s) %s", partial,
                       ", ".join(sorted(changed)), ", ".join(map(str, pending)))
    if reused and progress:
        logger.info("reusing step(s) %s from %s", ", ".join(map(str, reused)), partial)
    return reused, pending


def _saved_step(partial: Path, step: int, settings: dict,
                out: Path) -> tuple[dict | None, list[str]]:
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


# --- compute: the pending steps ---

def _compute(model: Any, info: Any, shard_dir: str | Path, out: Path, config: ExplainConfig,
             plan: _Plan) -> dict[int, dict]:
    """Explain the pending steps (each written to ``partial/`` as it finishes)."""
    if not plan.pending:
        return {}
    factory = plan.factory
    if factory is None:  # an analyzer object: used as it is, no prior (it cannot be rebuilt)
        assert plan.analyzer is not None
        main, priors = plan.analyzer, {}
    else:
        main = factory(model)
        priors = {s: factory(reinitialised_clone(model, s)) for s in plan.prior_seeds}
    chosen = set(plan.flip_ids)
    analyzers = _StepAnalyzers(main=main, priors=priors,
                               keep=lambda vid, clip_index: clip_index == 0 and vid in chosen)
    return {step: _explain_step(model, info, shard_dir, out, step, config, plan, analyzers)
            for step in plan.pending}


def _explain_step(model: Any, info: Any, shard_dir: str | Path, out: Path, step: int,
                  config: ExplainConfig, plan: _Plan, analyzers: _StepAnalyzers) -> dict:
    """Frame relevance, prior profiles, frame flipping and heatmaps at one step, written to
    ``partial/`` (tables first, then the state file that marks the step complete)."""
    result = _explain_clips(model, info, shard_dir, step, config, plan, analyzers)
    if not result.n_clips:  # never mark an empty step complete
        raise ValueError(f"no evaluation clip at step {step} in split {config.split!r} of "
                         f"{shard_dir} (is every video shorter than a clip under "
                         f"short_policy='skip'?)")
    tables = {"frame": result.frame, "prior": result.prior, "excluded": result.excluded}
    heatmaps: list[Path] = []
    if result.kept:
        tables["flipping"], tables["flipping_clips"] = _flipping(
            model, result.kept, plan.analyzer_name, step, config.flip_fill, config.seed)
        heatmaps = _heatmaps(result.kept, out / "heatmaps", config.n_heatmaps, plan.bounds,
                             info.classes)
    partial = out / "partial"
    fields = {"complete": True, "n_clips": result.n_clips,
              "analyze_seconds": result.analyze_seconds,
              "first_batch": [result.first_batch_clips, result.first_batch_seconds],
              "heatmaps": [p.name for p in heatmaps],
              "tables": {key: write_table(df, _table_path(partial, step, key))
                         for key, df in tables.items()}}
    settings = plan.step_settings(step)
    resume.save(partial / f"explain_step{step}.json", settings, **fields)
    return resume.document(settings, **fields)


def _explain_clips(model: Any, info: Any, shard_dir: str | Path, step: int,
                   config: ExplainConfig, plan: _Plan,
                   analyzers: _StepAnalyzers) -> FrameRelevance:
    """:func:`explain_frames` over the evaluation clips of one step (split over
    ``config.devices`` if set)."""
    from kvlrp.data.clips.pipeline import eval_dataset

    spec = info.clip_spec(step=step, crops=config.crops)
    data = eval_dataset(shard_dir, spec, split=config.split, n_clips=config.clips_per_video,
                        batch_size=config.batch_size, videos=plan.videos)
    batches = (_numpy(b) for b in _progress(data, config.progress, f"explain step {step}"))
    predictor, main, priors = model, analyzers.main, analyzers.priors
    if config.devices:  # each batch split over the devices, results put back together
        from kvlrp.analysis.runs.devices import SplitAnalyzer, SplitModel

        devices = list(config.devices)
        predictor, main = SplitModel(model, devices), SplitAnalyzer(main, devices)
        priors = {s: SplitAnalyzer(a, devices) for s, a in priors.items()}
    return explain_frames(predictor, batches, main, step=step, class_names=info.classes,
                          analyzer_name=plan.analyzer_name, target=config.target,
                          prior_analyzers=priors, keep=analyzers.keep,
                          temporal_sigma=config.temporal_sigma)


# --- summarise: the final tables ---

def _context(info: Any, shard_dir: str | Path, config: ExplainConfig, plan: _Plan) -> dict:
    """What :func:`write_explain_reports` needs besides the partial tables (also kept in a
    worker's ``worker.json`` for ``kvlrp merge``)."""
    steps = plan.steps
    fps, fps_note = clip_fps(shard_dir, config.split)
    spans = [{"step": s, "span_frames": clip_span(info.clip_len, s),
              "span_seconds": span_seconds(clip_span(info.clip_len, s), fps)} for s in steps]
    return {"analyzer": plan.analyzer_name, "target": config.target, "split": config.split,
            "steps": steps, "train_step": info.step, "clip_len": info.clip_len,
            "clips_per_video": config.clips_per_video, "crops": config.crops, "fps": fps,
            "fps_note": fps_note, "spans": spans, "prior": plan.prior_note,
            "prior_seeds": len(plan.prior_seeds), "flip_fill": config.flip_fill,
            "n_boot": config.n_boot, "seed": config.seed,
            "temporal_sigma": config.temporal_sigma,
            "video_order": plan.index["video_id"].astype(str).tolist(),
            "config": config.as_dict()}


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
    parts, heatmap_files = _gather(out, sources, steps, video_rank(context["video_order"]))
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
    train_step = context["train_step"]
    ref_step = train_step if train_step in steps else steps[0]
    changes = border_changes(frame, prior if len(prior) else None, ref_step, n_boot=n_boot,
                             seed=seed)
    files["border_changes"] = write_csv(changes, out / "border_changes.csv")
    aucs = _write_flipping(out, parts["flipping"], parts["flipping_clips"], files, n_boot, seed)
    throughput = _throughput(sources, steps)
    summary: dict[str, Any] = {
        "n_clips": sum(t["n_clips"] for t in throughput),
        "kind": "explain", "analyzer": context["analyzer"], "target": context["target"],
        "split": context["split"], "steps": steps, "train_step": train_step,
        "clip_len": context["clip_len"], "clips_per_video": context["clips_per_video"],
        "crops": context.get("crops", DEFAULT_CROPS), "fps": context.get("fps"),
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
        "throughput": throughput, "throughput_note": THROUGHPUT_NOTE,
        # the options of the run; not its worker: a merged run's summary is that of one run
        "config": {k: v for k, v in (context.get("config") or {}).items() if k != "worker"},
        "files": {k: str(v) for k, v in files.items()},
        "heatmaps": [str(p) for p in heatmap_files],
    }
    write_json(summary, out / "summary.json")
    return summary


def _gather(out: Path, sources: Sequence[tuple[Path, dict]], steps: Sequence[int],
            rank: Mapping[str, int]) -> tuple[dict[str, list[pd.DataFrame]], list[Path]]:
    """The partial tables of every step (each step's rows in one run's order) and the
    heatmap files."""
    parts: dict[str, list[pd.DataFrame]] = {key: [] for key in _TABLES}
    heatmap_files: list[Path] = []
    for step in steps:
        step_parts: dict[str, list[pd.DataFrame]] = {key: [] for key in _TABLES}
        for partial, states in sources:
            state = states[step]
            for key, columns in state["tables"].items():
                step_parts[key].append(read_table(_table_path(partial, step, key), columns))
            heatmap_files += [out / "heatmaps" / f for f in state["heatmaps"]]
        for key, tables in step_parts.items():
            if tables:
                parts[key].append(sort_rows(pd.concat(tables, ignore_index=True), rank,
                                            _ROW_ORDER[key]) if key in _ROW_ORDER
                                  else pd.concat(tables, ignore_index=True))
    return parts, heatmap_files


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


def _table_path(partial: Path, step: int, key: str) -> Path:
    return partial / f"explain_step{step}_{key}.csv"


def _numpy(batch: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in batch.items()}


def _progress(iterable: Iterable[T], enabled: bool, desc: str) -> Iterable[T]:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    # disable=None: no bar when stderr is not a terminal (a log file gets no per-batch lines)
    return tqdm(iterable, desc=desc, unit="batch", disable=None)


def _flipping(model: Any, kept: list[dict], name: str, step: int, fill: str,
              seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Frame flipping curves (and per-clip rows) of the kept clips, for the analyzer's
    ordering, the gradient's and a random one."""
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


def _heatmaps(kept: list[dict], folder: Path, n: int, bounds: Any,
              classes: Sequence[str]) -> list[Path]:
    """PNG strip and GIF of up to ``n`` kept clips, the classes (labels) taken in turn."""
    by_label: dict[str, list[dict]] = {}
    for item in kept:
        by_label.setdefault(item["label"], []).append(item)
    files = []
    for k in round_robin(by_label.values(), n):
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
