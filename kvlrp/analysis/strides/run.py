"""``run_strides``: the stride accuracy table of a model over a shard folder's split, each video
decoded once for all steps, resumable, written into one folder (the phases:
:func:`kvlrp.analysis.runs.skeleton.run_evaluation`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvlrp.analysis.runs.devices import SplitModel
from kvlrp.analysis.runs.partition import assign_videos
from kvlrp.analysis.runs.run_files import run_settings
from kvlrp.analysis.runs.skeleton import Run, WorkerPart, run_evaluation, shared_context
from kvlrp.analysis.runs.timing import clip_fps
from kvlrp.analysis.strides.config import StridesConfig
from kvlrp.analysis.strides.predictions import stride_predictions
from kvlrp.analysis.strides.reports import write_strides_reports
from kvlrp.data.shards.folder import read_dataset_info, read_index

__all__ = ["StridesKind", "run_strides"]


def run_strides(model: Any, info: Any, shard_dir: str | Path, out_dir: str | Path,
                config: StridesConfig | None = None, *,
                on_video: Callable[[int, str], None] | None = None,
                model_path: str | Path | None = None, **options: Any) -> dict:
    """Accuracy per step without retraining, plus the frame-shuffled control.

    Writes ``stride_accuracy.csv``, ``clip_predictions.csv``, ``video_predictions.csv`` and
    ``summary.json`` (best step, gain over the training step) into ``out_dir``; progress in
    ``out_dir/partial`` lets an interrupted run resume.

    The split the step is chosen on (``select_on``) is evaluated too
    (``stride_accuracy_<split>.csv``, ``video_predictions_<split>.csv``, progress in
    ``partial/<split>``); the summary adds the keys of
    :data:`kvlrp.analysis.measures.selection.SELECTION_KEYS`. ``stride_accuracy.csv`` gains the
    paired difference of every row to the training step
    (:data:`kvlrp.analysis.measures.selection.PAIRED_COLUMNS`). A worker
    (:class:`~kvlrp.analysis.strides.config.StridesConfig`'s ``worker``) writes
    ``worker.json`` instead of the final tables (``kvlrp merge`` makes them).

    The model, folders, ``config`` (a :class:`~kvlrp.analysis.strides.config.StridesConfig`,
    or its fields by keyword: ``steps=[1, 2, 4], control=False, ...``) and the returned
    summary are those of :func:`~kvlrp.analysis.runs.skeleton.run_evaluation`; ``on_video`` is
    called with ``(videos_seen, video_id)`` after each video of the reported split;
    ``model_path`` (the model's folder or ``.keras`` file) goes into the summary's
    ``provenance`` with its SHA-256.
    """
    return run_evaluation(StridesKind(on_video), model, info, shard_dir, out_dir, config,
                          options, model_path=model_path)


@dataclass(frozen=True)
class _Plan:
    """The splits a run evaluates and its videos there, decided before any work."""

    select_on: str
    #: Video ids of each split evaluated (the reported one first), in shard index order.
    order: dict[str, list[str]]
    #: This worker's videos of each split (all of them for the only worker).
    mine: dict[str, list[str]]


@dataclass(frozen=True)
class _Predictions:
    """Clip predictions of the reported split, and of the selection split if it is another."""

    clips: pd.DataFrame
    selection: pd.DataFrame | None


@dataclass(frozen=True)
class StridesKind:
    """The strides phases of :func:`~kvlrp.analysis.runs.skeleton.run_evaluation`."""

    #: Called with ``(videos_seen, video_id)`` after each video of the reported split.
    on_video: Callable[[int, str], None] | None = None
    name = "strides"
    config_type = StridesConfig

    def plan(self, run: Run[StridesConfig]) -> _Plan:
        """The selection split (checked to hold videos) and each split's videos."""
        config, shard_dir = run.config, run.shard_dir
        index = read_index(shard_dir)
        split = config.split
        if not (index["split"] == split).any():
            raise ValueError(f"no videos in split {split!r} of {shard_dir}; splits there: "
                             f"{sorted(index['split'].unique())}")
        splits = sorted(index["split"].unique())
        select_on = config.select_on
        if select_on is None:
            select_on = "val" if "val" in splits and split != "val" else split
        if select_on != split and not (index["split"] == select_on).any():
            raise ValueError(f"--select-on {select_on!r}: no videos in that split of "
                             f"{shard_dir}; splits there: {splits}")
        order = {sp: index.loc[index["split"] == sp, "video_id"].astype(str).tolist()
                 for sp in dict.fromkeys([split, select_on])}
        mine = {sp: assign_videos(index[index["split"] == sp], config.worker) for sp in order}
        return _Plan(select_on=select_on, order=order, mine=mine)

    def resume(self, run: Run[StridesConfig], plan: _Plan) -> dict[str, Path]:
        """Where each evaluated split keeps its progress (``partial/``, and
        ``partial/<split>`` for the selection split): :func:`stride_predictions` reuses each
        run key, and the finished videos of an unfinished one, from there as it computes."""
        return {sp: run.partial if sp == run.config.split else run.partial / sp
                for sp in plan.order}

    def compute(self, run: Run[StridesConfig], plan: _Plan,
                saved: dict[str, Path]) -> _Predictions:
        """Clip predictions of the reported split (with the control) and the selection
        split."""
        config = run.config
        evaluation = _Evaluation(run, plan)
        clips = evaluation.predict(config.split, saved[config.split], config.control,
                                   self.on_video)
        selection = None
        if plan.select_on != config.split:
            selection = evaluation.predict(plan.select_on, saved[plan.select_on], False, None)
        return _Predictions(clips, selection)

    def context(self, run: Run[StridesConfig], plan: _Plan) -> dict[str, Any]:
        """What :func:`~kvlrp.analysis.strides.reports.write_strides_reports` needs besides
        the clip predictions (also kept in a worker's ``worker.json`` for ``kvlrp merge``)."""
        config = run.config
        return {**shared_context(run, config.steps), "select_on": plan.select_on,
                "classes": run.info.classes, "control": config.control,
                "control_seed": config.control_seed, "video_order": plan.order,
                "equal_counts": config.equal_counts,
                "select_fps": clip_fps(run.shard_dir, plan.select_on)[0]}

    def worker_part(self, run: Run[StridesConfig], plan: _Plan,
                    result: _Predictions) -> WorkerPart:
        """This worker's settings and videos (its clip rows stay in ``partial/``)."""
        config = run.config
        settings = {"steps": list(config.steps), "control": config.control,
                    "control_seed": config.control_seed, "crops": config.crops,
                    "equal_counts": config.equal_counts,
                    **run_settings(run.model, run.info, run.shard_dir, config.split,
                                   config.clips_per_video)}
        return WorkerPart(settings=settings,
                          videos=[v for sp in plan.order for v in plan.mine[sp]], states={})

    def write_reports(self, run: Run[StridesConfig], result: _Predictions,
                      context: dict[str, Any]) -> dict[str, Any]:
        """The final tables from the clip predictions."""
        return write_strides_reports(run.out, result.clips, result.selection, context)


# --- compute: clip predictions of each split (resumable per run key) ---

class _Evaluation:
    """Clip predictions of one model on the splits of a plan, each video decoded once."""

    def __init__(self, run: Run[StridesConfig], plan: _Plan) -> None:
        self.model, self.info, self.shard_dir = run.model, run.info, run.shard_dir
        self.config, self.plan = run.config, plan
        devices = run.config.devices
        self.predictor = run.model if not devices else SplitModel(run.model, list(devices))
        self.encoding = read_dataset_info(run.shard_dir)["encoding"]  # the shards' encoding
        self._clips_at: Callable[[Any, Any], dict] | None = None  # traced on first use

    def make_clips(self, example: Any, step: int) -> dict[str, np.ndarray]:
        """The evaluation clips of one video at ``step`` (decodes only the frames of this
        step's clips: memory follows the clips, not the video)."""
        import tensorflow as tf

        if self._clips_at is None:
            self._clips_at = self._trace_clips(example)
        clips = self._clips_at(example, tf.constant(step, tf.int32))
        return {k: v.numpy() for k, v in clips.items()}

    def _trace_clips(self, example: Any) -> Callable[[Any, Any], dict]:
        """One ``tf.function`` for every step and video: the step is an int32 tensor argument
        and the input signature leaves the frame count open, so it is traced once (a function
        per step, or a Python int step, would be traced once per step, and TensorFlow warns
        about frequent retracing)."""
        import tensorflow as tf

        from kvlrp.data.clips.pipeline import example_clips  # (TensorFlow)

        config, encoding = self.config, self.encoding
        spec = self.info.clip_spec(crops=config.crops, distinct_starts=not config.equal_counts)
        example_spec = tf.nest.map_structure(
            lambda t: tf.TensorSpec([None] * t.shape.rank, t.dtype), example)

        @tf.function(input_signature=[example_spec, tf.TensorSpec([], tf.int32)])
        def clips_at(example: Any, step: Any) -> dict:
            return example_clips(example, spec, config.clips_per_video, encoding, step=step)

        return clips_at

    def predict(self, on_split: str, partial: Path, with_control: bool,
                hook: Callable[[int, str], None] | None) -> pd.DataFrame:
        """Clip predictions of ``on_split`` at every step (and the control if
        ``with_control``), resumed from ``partial``."""
        from kvlrp.data.clips.pipeline import video_examples  # (TensorFlow)

        config, worker = self.config, self.config.worker
        bar = None
        if config.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(self.plan.mine[on_split]),
                       desc=f"strides {list(config.steps)} ({on_split})", unit="video",
                       disable=None)  # None: no bar unless stderr is a terminal
        settings = {**run_settings(self.model, self.info, self.shard_dir, on_split,
                                   config.clips_per_video),
                    "crops": config.crops, "equal_counts": config.equal_counts}
        if worker.is_split:
            settings["worker"] = [worker.num_workers, worker.index]
        videos = self.plan.mine[on_split] if worker.is_split else None
        examples, _ = video_examples(self.shard_dir, on_split, videos=videos)
        try:
            return stride_predictions(
                self.predictor, examples, self.make_clips, list(config.steps),
                control_step=self.info.step if with_control else None,
                control_seed=config.control_seed, partial_dir=partial,
                settings={**settings, "batch_size": config.batch_size},
                batch_size=config.batch_size, on_video=hook, progress=bar,
                allow_empty=worker.is_split)
        finally:
            if bar is not None:
                bar.close()
