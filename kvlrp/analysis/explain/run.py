"""``run_explain``: frame relevance, prior, border scores, frame flipping and heatmaps of a model
over the evaluation clips of a shard folder, written as CSV/JSON/PNG/GIF into one folder,
resumable step by step (the phases: :func:`kvlrp.analysis.runs.skeleton.run_evaluation`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from kvlrp.analysis.explain.config import ExplainConfig
from kvlrp.analysis.explain.frames import (
    Analyzer,
    FrameRelevance,
    explain_frames,
    reinitialised_clone,
)
from kvlrp.analysis.explain.heatmaps import heatmap_gif, heatmap_stem, heatmap_strip
from kvlrp.analysis.explain.plan import (
    ExplainPlan,
    SavedSteps,
    plan_explain,
    round_robin,
    saved_steps,
)
from kvlrp.analysis.explain.reports import state_path, table_path, write_explain_reports
from kvlrp.analysis.measures.flipping import frame_flipping_table, random_scores
from kvlrp.analysis.measures.shares import frame_relevance
from kvlrp.analysis.runs.devices import SplitAnalyzer, SplitModel
from kvlrp.analysis.runs.run_files import write_table
from kvlrp.analysis.runs.skeleton import Run, WorkerPart, run_evaluation, shared_context
from kvlrp.analysis.runs.timing import span_seconds
from kvlrp.data.clips.spec import clip_span
from kvlrp.infra import resume
from kvlrp.infra.safe_paths import confined

__all__ = ["ExplainKind", "run_explain"]

T = TypeVar("T")


def run_explain(model: Any, info: Any, shard_dir: str | Path, out_dir: str | Path,
                config: ExplainConfig | None = None, *, model_path: str | Path | None = None,
                **options: Any) -> dict:
    """Explain a model's evaluation clips at one or more steps and write the reports.

    Each finished step's tables are kept in ``out_dir/partial`` (written atomically, with the
    settings and a SHA-1 of the model's weights): a re-run with the same settings reuses the
    completed steps and computes only the missing ones, and ends with the same tables as an
    uninterrupted run; steps saved with other settings or weights are recomputed.

    The model, folders, ``config`` (an :class:`~kvlrp.analysis.explain.config.ExplainConfig`,
    or its fields by keyword: ``steps=[1, 4], prior_seeds=0, ...``) and the returned summary
    are those of :func:`~kvlrp.analysis.runs.skeleton.run_evaluation`; ``model_path`` (the
    model's folder or ``.keras`` file) goes into the summary's ``provenance`` with its SHA-256.
    """
    return run_evaluation(ExplainKind(), model, info, shard_dir, out_dir, config, options,
                          model_path=model_path)


@dataclass(frozen=True)
class _StepAnalyzers:
    """The analyzers of the model and of its re-initialised copies, and the clips kept."""

    main: Analyzer
    priors: dict[int, Analyzer]
    keep: Callable[[str, int], bool]


class ExplainKind:
    """The explain phases of :func:`~kvlrp.analysis.runs.skeleton.run_evaluation`."""

    name = "explain"
    config_type = ExplainConfig

    def plan(self, run: Run[ExplainConfig]) -> ExplainPlan:
        """Steps, analyzers, videos and settings (see :func:`plan_explain`)."""
        return plan_explain(run)

    def resume(self, run: Run[ExplainConfig], plan: ExplainPlan) -> SavedSteps:
        """The steps ``partial/`` already holds (see :func:`saved_steps`)."""
        return saved_steps(run, plan)

    def compute(self, run: Run[ExplainConfig], plan: ExplainPlan,
                saved: SavedSteps) -> dict[int, dict]:
        """Explain the pending steps (each written to ``partial/`` as it finishes); returns
        the state of every step."""
        return {**saved.reused, **_explain_pending(run, plan, saved.pending)}

    def context(self, run: Run[ExplainConfig], plan: ExplainPlan) -> dict[str, Any]:
        """What :func:`~kvlrp.analysis.explain.reports.write_explain_reports` needs besides
        the partial tables (also kept in a worker's ``worker.json`` for ``kvlrp merge``)."""
        config = run.config
        context = shared_context(run, plan.steps)
        spans = [{"step": s, "span_frames": clip_span(run.info.clip_len, s),
                  "span_seconds": span_seconds(clip_span(run.info.clip_len, s),
                                               context["fps"])} for s in plan.steps]
        return {**context, "analyzer": plan.analyzer_name, "target": config.target,
                "spans": spans, "prior": plan.prior_note,
                "prior_seeds": len(plan.prior_seeds), "flip_fill": config.flip_fill,
                "temporal_sigma": config.temporal_sigma,
                "video_order": plan.index["video_id"].astype(str).tolist()}

    def worker_part(self, run: Run[ExplainConfig], plan: ExplainPlan,
                    result: dict[int, dict]) -> WorkerPart:
        """This worker's settings, videos and step states."""
        return WorkerPart(settings=plan.settings, videos=plan.videos,
                          states={str(s): result[s] for s in plan.steps})

    def write_reports(self, run: Run[ExplainConfig], result: dict[int, dict],
                      context: dict[str, Any]) -> dict[str, Any]:
        """The final tables from ``partial/``."""
        return write_explain_reports(run.out, [(run.partial, result)], context)


# --- compute: the pending steps ---

def _explain_pending(run: Run[ExplainConfig], plan: ExplainPlan,
                     pending: Sequence[int]) -> dict[int, dict]:
    """Build the analyzers once, then explain each pending step."""
    if not pending:
        return {}
    factory = plan.factory
    if factory is None:  # an analyzer object: used as it is, no prior (it cannot be rebuilt)
        assert plan.analyzer is not None
        main, priors = plan.analyzer, {}
    else:
        main = factory(run.model)
        priors = {s: factory(reinitialised_clone(run.model, s)) for s in plan.prior_seeds}
    chosen = set(plan.flip_ids)

    def keep(video_id: str, clip_index: int) -> bool:  # one clip of each flipping video
        return clip_index == 0 and video_id in chosen

    step_analyzers = _StepAnalyzers(main=main, priors=priors, keep=keep)
    return {step: _explain_step(run, step, plan, step_analyzers) for step in pending}


def _explain_step(run: Run[ExplainConfig], step: int, plan: ExplainPlan,
                  step_analyzers: _StepAnalyzers) -> dict:
    """Frame relevance, prior profiles, frame flipping and heatmaps at one step, written to
    ``partial/`` (tables first, then the state file that marks the step complete)."""
    config = run.config
    result = _explain_clips(run, step, plan, step_analyzers)
    if not result.n_clips:  # never mark an empty step complete
        raise ValueError(f"no evaluation clip at step {step} in split {config.split!r} of "
                         f"{run.shard_dir} (is every video shorter than a clip under "
                         f"short_policy='skip'?)")
    tables = {"frame": result.frame, "prior": result.prior, "excluded": result.excluded}
    heatmaps: list[Path] = []
    if result.kept:
        tables["flipping"], tables["flipping_clips"] = _flipping(
            run.model, result.kept, plan.analyzer_name, step, config.flip_fill, config.seed)
        heatmaps = _heatmaps(result.kept, run.out / "heatmaps", config.n_heatmaps, plan.bounds,
                             run.info.classes)
    partial = run.partial
    fields = {"complete": True, "n_clips": result.n_clips,
              "analyze_seconds": result.analyze_seconds,
              "first_batch": [result.first_batch_clips, result.first_batch_seconds],
              "heatmaps": [p.name for p in heatmaps],
              "tables": {key: write_table(df, table_path(partial, step, key))
                         for key, df in tables.items()}}
    settings = plan.step_settings(step)
    resume.save(state_path(partial, step), settings, **fields)
    return resume.document(settings, **fields)


def _explain_clips(run: Run[ExplainConfig], step: int, plan: ExplainPlan,
                   step_analyzers: _StepAnalyzers) -> FrameRelevance:
    """:func:`explain_frames` over the evaluation clips of one step (split over
    ``config.devices`` if set)."""
    from kvlrp.data.clips.pipeline import eval_dataset  # (TensorFlow)

    config, info = run.config, run.info
    spec = info.clip_spec(step=step, crops=config.crops)
    data = eval_dataset(run.shard_dir, spec, split=config.split,
                        n_clips=config.clips_per_video, batch_size=config.batch_size,
                        videos=plan.videos)
    batches = (_numpy(b) for b in _progress(data, config.progress, f"explain step {step}"))
    predictor, main, priors = run.model, step_analyzers.main, step_analyzers.priors
    if config.devices:  # each batch split over the devices, results put back together
        devices = list(config.devices)
        predictor, main = SplitModel(run.model, devices), SplitAnalyzer(main, devices)
        priors = {s: SplitAnalyzer(a, devices) for s, a in priors.items()}
    return explain_frames(predictor, batches, main, step=step, class_names=info.classes,
                          analyzer_name=plan.analyzer_name, target=config.target,
                          prior_analyzers=priors, keep=step_analyzers.keep,
                          temporal_sigma=config.temporal_sigma)


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
    import analyzers  # (TensorFlow)

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
        stem = heatmap_stem(k["step"], k["video_id"], k["clip_index"])
        title = (f"{k['video_id']} step {k['step']}: label {k['label']}, predicted "
                 f"{k['predicted']}, explained {classes[k['target']]}")
        files.append(heatmap_strip(k["clip"], k["relevance"], confined(folder, f"{stem}.png"),
                                   shares=k["shares"], title=title, bounds=bounds,
                                   temporal=k.get("temporal")))
        files.append(heatmap_gif(k["clip"], k["relevance"], confined(folder, f"{stem}.gif"),
                                 shares=k["shares"], bounds=bounds,
                                 temporal=k.get("temporal")))
    return files
