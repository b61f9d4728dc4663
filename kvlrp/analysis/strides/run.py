"""``run_strides``: the stride accuracy table of a model over a shard folder's split, each video
decoded once for all steps, resumable, written into one folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvlrp.analysis.measures.accuracy import best_step, stride_table, video_predictions
from kvlrp.analysis.measures.selection import add_paired_columns, select_and_report
from kvlrp.analysis.runs.class_check import check_classes
from kvlrp.analysis.runs.config_checks import config_from
from kvlrp.analysis.runs.devices import SplitModel
from kvlrp.analysis.runs.partition import assign_videos, write_worker_file
from kvlrp.analysis.runs.run_files import run_settings
from kvlrp.analysis.runs.timing import clip_fps
from kvlrp.analysis.strides.config import StridesConfig
from kvlrp.analysis.strides.predictions import stride_predictions
from kvlrp.data.clips.spec import DEFAULT_CROPS
from kvlrp.infra.atomic import write_csv, write_json
from kvlrp.infra.safe_paths import check_out_dir

__all__ = ["TIE_RULE", "StridesConfig", "run_strides", "write_strides_reports"]

TIE_RULE = ("highest video accuracy; among ties the training step if tied, else the smallest "
            "tied step")


@dataclass(frozen=True)
class _Plan:
    """The splits a run evaluates and its videos there, decided before any work (which run
    keys are reused from ``partial/`` is decided per key by :func:`stride_predictions`)."""

    select_on: str
    #: Video ids of each split evaluated (the reported one first), in shard index order.
    order: dict[str, list[str]]
    #: This worker's videos of each split (all of them for the only worker).
    mine: dict[str, list[str]]


def run_strides(model: Any, info: Any, shard_dir: str | Path, out_dir: str | Path,
                config: StridesConfig | None = None, *,
                on_video: Callable[[int, str], None] | None = None, **options: Any) -> dict:
    """Accuracy per step without retraining, plus the frame-shuffled control.

    Writes ``stride_accuracy.csv``, ``clip_predictions.csv``, ``video_predictions.csv`` and
    ``summary.json`` (best step, gain over the training step) into ``out_dir``; progress in
    ``out_dir/partial`` lets an interrupted run resume.

    The split the step is chosen on (``select_on``) is evaluated too
    (``stride_accuracy_<split>.csv``, ``video_predictions_<split>.csv``, progress in
    ``partial/<split>``); the summary adds the keys of
    :data:`kvlrp.analysis.measures.selection.SELECTION_KEYS`. ``stride_accuracy.csv`` gains the
    paired
    difference of every row to the training step
    (:data:`kvlrp.analysis.measures.selection.PAIRED_COLUMNS`). A worker
    (:class:`~kvlrp.analysis.strides.config.StridesConfig`'s ``worker``) writes
    ``worker.json`` instead of the final tables (``kvlrp merge`` makes them).

    Parameters
    ----------
    model, info
        A Keras model and its :class:`kvlrp.models.ModelInfo`.
    shard_dir
        Shard folder from ``kvlrp prepare``.
    out_dir
        Output folder (local, or any ``tf.io.gfile`` URL).
    config
        The options (:class:`~kvlrp.analysis.strides.config.StridesConfig`); or give them as
        keywords (``steps=[1, 2, 4], control=False, ...``), not both.
    on_video
        Called with ``(videos_seen, video_id)`` after each video of the reported split.

    Returns
    -------
    dict
        The content of ``summary.json`` (or, for one of several workers, what it wrote).
    """
    config = config_from(StridesConfig, config, options, "run_strides")
    out = check_out_dir(out_dir)  # local, or any tf.io.gfile URL
    check_classes(model, info, shard_dir)
    plan = _plan(shard_dir, config)
    evaluation = _Evaluation(model, info, shard_dir, config, plan)
    clips = evaluation.predict(config.split, out / "partial", config.control, on_video)
    sel_clips = None
    if plan.select_on != config.split:
        sel_clips = evaluation.predict(plan.select_on, out / "partial" / plan.select_on, False,
                                       None)
    context = _context(info, shard_dir, config, plan)
    if config.worker.is_split:
        settings = {"steps": list(config.steps), "control": config.control,
                    "control_seed": config.control_seed, "crops": config.crops,
                    "equal_counts": config.equal_counts,
                    **run_settings(model, info, shard_dir, config.split,
                                   config.clips_per_video)}
        return write_worker_file(out, "strides", config.worker, settings, context,
                                 [v for sp in plan.order for v in plan.mine[sp]], {})
    return write_strides_reports(out, clips, sel_clips, context)


# --- plan: the splits and videos to evaluate ---

def _plan(shard_dir: str | Path, config: StridesConfig) -> _Plan:
    """The selection split (checked to hold videos) and each split's videos."""
    from kvlrp.data.shards.folder import read_index

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
        raise ValueError(f"--select-on {select_on!r}: no videos in that split of {shard_dir}; "
                         f"splits there: {splits}")
    order = {sp: index.loc[index["split"] == sp, "video_id"].astype(str).tolist()
             for sp in dict.fromkeys([split, select_on])}
    mine = {sp: assign_videos(index[index["split"] == sp], config.worker) for sp in order}
    return _Plan(select_on=select_on, order=order, mine=mine)


# --- compute: clip predictions of each split (resumable per run key) ---

class _Evaluation:
    """Clip predictions of one model on the splits of a plan, each video decoded once."""

    def __init__(self, model: Any, info: Any, shard_dir: str | Path, config: StridesConfig,
                 plan: _Plan) -> None:
        from kvlrp.data.shards.folder import read_dataset_info

        self.model, self.info, self.shard_dir = model, info, shard_dir
        self.config, self.plan = config, plan
        self.predictor = model if not config.devices else SplitModel(model,
                                                                     list(config.devices))
        self.encoding = read_dataset_info(shard_dir)["encoding"]  # the shards' frame encoding
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

        from kvlrp.data.clips.pipeline import example_clips

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
        from kvlrp.data.clips.pipeline import video_examples

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


# --- summarise: the final tables ---

def _context(info: Any, shard_dir: str | Path, config: StridesConfig, plan: _Plan) -> dict:
    """What :func:`write_strides_reports` needs besides the clip predictions (also kept in a
    worker's ``worker.json`` for ``kvlrp merge``)."""
    fps, fps_note = clip_fps(shard_dir, config.split)
    return {"split": config.split, "select_on": plan.select_on, "steps": list(config.steps),
            "train_step": info.step, "clip_len": info.clip_len, "classes": info.classes,
            "clips_per_video": config.clips_per_video, "n_boot": config.n_boot,
            "seed": config.seed, "control": config.control,
            "control_seed": config.control_seed, "video_order": plan.order,
            "crops": config.crops, "equal_counts": config.equal_counts, "fps": fps,
            "fps_note": fps_note, "select_fps": clip_fps(shard_dir, plan.select_on)[0],
            "config": config.as_dict()}


def write_strides_reports(out: Path, clips: Any, sel_clips: Any, context: dict) -> dict:
    """The final strides tables and ``summary.json`` from the clip predictions of the
    reported split (and of the selection split, if it is another one); used by one run and by
    ``kvlrp merge`` alike."""
    split, select_on, steps = context["split"], context["select_on"], context["steps"]
    train_step, clip_len = context["train_step"], context["clip_len"]
    n_boot, seed = context["n_boot"], context["seed"]
    videos = video_predictions(clips)
    table = stride_table(clips, clip_len, n_boot=n_boot, seed=seed, fps=context.get("fps"))
    best = best_step(table, train_step=train_step)
    table = add_paired_columns(table, videos, train_step, n_boot=n_boot, seed=seed)
    files = {
        "stride_accuracy": write_csv(table, out / "stride_accuracy.csv"),
        "clip_predictions": write_csv(clips, out / "clip_predictions.csv"),
        "video_predictions": write_csv(videos, out / "video_predictions.csv"),
    }
    selection_videos = videos
    if select_on != split:
        selection_videos = video_predictions(sel_clips)
        sel_table = stride_table(sel_clips, clip_len, n_boot=n_boot, seed=seed,
                                 fps=context.get("select_fps"))
        files[f"stride_accuracy_{select_on}"] = write_csv(
            sel_table, out / f"stride_accuracy_{select_on}.csv")
        files[f"video_predictions_{select_on}"] = write_csv(
            selection_videos, out / f"video_predictions_{select_on}.csv")
    selection = select_and_report(selection_videos, videos, train_step, select_on, split,
                                  n_boot=n_boot, seed=seed)
    shuffled = table[table["control"] == "shuffled"]
    summary = {
        "kind": "strides", "split": split, "steps": steps, "train_step": train_step,
        "clip_len": clip_len, "clips_per_video": context["clips_per_video"],
        "crops": context.get("crops", DEFAULT_CROPS),
        "equal_counts": context.get("equal_counts", False),
        "fps": context.get("fps"), "fps_note": context.get("fps_note"), "best": best,
        "tie_rule": TIE_RULE, "classes": context["classes"], **selection,
        "shuffled_control": shuffled.to_dict("records")[0] if len(shuffled) else None,
        "table": table.to_dict("records"),
        # the options of the run; not its worker: a merged run's summary is that of one run
        "config": {k: v for k, v in (context.get("config") or {}).items() if k != "worker"},
        "files": {k: str(v) for k, v in files.items()},
    }
    write_json(summary, out / "summary.json")
    return summary
