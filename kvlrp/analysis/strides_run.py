"""``run_strides``: the stride accuracy table of a model over a shard folder's split, each video
decoded once for all steps, resumable, written into one folder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kvlrp.analysis.accuracy import best_step, stride_table, video_predictions
from kvlrp.analysis.class_check import check_classes
from kvlrp.analysis.devices import SplitModel
from kvlrp.analysis.partition import Worker, assign_videos, write_worker_file
from kvlrp.analysis.resume import run_settings
from kvlrp.analysis.selection import add_paired_columns, select_and_report
from kvlrp.analysis.strides import stride_predictions
from kvlrp.analysis.timing import clip_fps
from kvlrp.atomic import write_csv, write_json
from kvlrp.safe_paths import check_out_dir, check_positive

TIE_RULE = ("highest video accuracy; among ties the training step if tied, else the smallest "
            "tied step")


def run_strides(
    model: Any,
    info: Any,
    shard_dir: str | Path,
    out_dir: str | Path,
    steps: Sequence[int] = (1, 2, 3, 4, 6, 8),
    split: str = "test",
    clips_per_video: int | str = 4,
    control: bool = True,
    control_seed: int = 0,
    batch_size: int = 32,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
    on_video: Callable[[int, str], None] | None = None,
    select_on: str | None = None,
    crops: int = 1,
    equal_counts: bool = False,
    worker: Worker | None = None,
    devices: Sequence[str] | None = None,
) -> dict:
    """Accuracy per step without retraining, plus the frame-shuffled control.

    Writes ``stride_accuracy.csv``, ``clip_predictions.csv``, ``video_predictions.csv`` and
    ``summary.json`` (best step, gain over the training step) into ``out_dir``; progress in
    ``out_dir/partial`` lets an interrupted run resume.

    ``select_on``: the split the step is chosen on (default ``val`` when the shards have one
    and ``split`` is another, else ``split`` itself, which the summary marks as optimistic).
    That split is evaluated too (``stride_accuracy_<split>.csv``,
    ``video_predictions_<split>.csv``, progress in ``partial/<split>``); the summary adds
    the keys of :data:`kvlrp.analysis.selection.SELECTION_KEYS`. ``stride_accuracy.csv`` gains
    the paired difference of every row to the training step
    (:data:`kvlrp.analysis.selection.PAIRED_COLUMNS`).

    ``crops``: 1 (centre crop) or 3 (three crops along the longer side per clip); a video's
    probabilities are averaged over its clips x crops. ``equal_counts``: keep repeated clip
    starts, so that every video is scored on ``clips_per_video`` clips at every step
    (otherwise short videos give fewer distinct clips at large steps); the table's
    ``clips_per_video`` column says what each step used.
    ``worker``: one of several workers (:mod:`kvlrp.analysis.partition`): evaluate only its
    part of the videos of each split, keep the clip rows in ``partial/`` and write
    ``worker.json`` instead of the final tables (``kvlrp merge`` makes them). ``devices``: split
    every batch over these devices (``--strategy mirrored``).

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    import tensorflow as tf

    from kvlrp.data.pipeline import example_clips, video_examples
    from kvlrp.data.shards import read_dataset_info, read_index

    out = check_out_dir(out_dir)  # local, or any tf.io.gfile URL
    steps = [int(s) for s in steps]
    if not steps or min(steps) < 1:
        raise ValueError(f"steps must be positive ints; got {steps}")
    check_positive("batch_size", batch_size)
    check_classes(model, info, shard_dir)
    index = read_index(shard_dir)
    n_videos = int((index["split"] == split).sum())
    if n_videos == 0:
        raise ValueError(f"no videos in split {split!r} of {shard_dir}; splits there: "
                         f"{sorted(index['split'].unique())}")
    splits = sorted(index["split"].unique())
    if select_on is None:
        select_on = "val" if "val" in splits and split != "val" else split
    if select_on != split and not (index["split"] == select_on).any():
        raise ValueError(f"--select-on {select_on!r}: no videos in that split of {shard_dir}; "
                         f"splits there: {splits}")
    worker = worker or Worker()
    specs: dict[int, Any] = {}
    predictor = model if not devices else SplitModel(model, devices)
    encoding = read_dataset_info(shard_dir)["encoding"]  # the shards' frame encoding

    def make_clips(example, step):
        # decodes only the frames of this step's clips: memory follows the clips, not the video
        if step not in specs:
            spec = info.clip_spec(step=step, crops=crops, distinct_starts=not equal_counts)
            specs[step] = tf.function(
                lambda ex, spec=spec: example_clips(ex, spec, clips_per_video, encoding),
                reduce_retracing=True)
        return {k: v.numpy() for k, v in specs[step](example).items()}

    def predict(on_split: str, partial: Path, with_control: bool, hook):
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(mine[on_split]), desc=f"strides {steps} ({on_split})",
                       unit="video", disable=None)  # None: no bar unless stderr is a terminal
        settings = {**run_settings(model, info, shard_dir, on_split, clips_per_video),
                    "crops": crops, "equal_counts": equal_counts}
        if worker.is_split:
            settings["worker"] = [worker.num_workers, worker.index]
        examples, _ = video_examples(shard_dir, on_split, videos=part[on_split])
        try:
            return stride_predictions(
                predictor, examples, make_clips, steps,
                control_step=info.step if with_control else None, control_seed=control_seed,
                partial_dir=partial, settings={**settings, "batch_size": batch_size},
                batch_size=batch_size, on_video=hook, progress=bar,
                allow_empty=worker.is_split)
        finally:
            if bar is not None:
                bar.close()

    fps, fps_note = clip_fps(shard_dir, split)
    order = {sp: index.loc[index["split"] == sp, "video_id"].astype(str).tolist()
             for sp in dict.fromkeys([split, select_on])}
    mine = {sp: assign_videos(index[index["split"] == sp], worker) for sp in order}
    part = {sp: (mine[sp] if worker.is_split else None) for sp in order}
    clips = predict(split, out / "partial", control, on_video)
    sel_clips = None
    if select_on != split:
        sel_clips = predict(select_on, out / "partial" / select_on, False, None)
    context = {"split": split, "select_on": select_on, "steps": steps,
               "train_step": info.step, "clip_len": info.clip_len, "classes": info.classes,
               "clips_per_video": clips_per_video, "n_boot": n_boot, "seed": seed,
               "control": control, "control_seed": control_seed, "video_order": order,
               "crops": crops, "equal_counts": equal_counts, "fps": fps, "fps_note": fps_note,
               "select_fps": clip_fps(shard_dir, select_on)[0]}
    if worker.is_split:
        return write_worker_file(out, "strides", worker, {"steps": steps, "control": control,
                                 "control_seed": control_seed, "crops": crops,
                                 "equal_counts": equal_counts, **run_settings(
                                     model, info, shard_dir, split, clips_per_video)},
                                 context, [v for sp in order for v in mine[sp]], {})
    return write_strides_reports(out, clips, sel_clips, context)


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
        "crops": context.get("crops", 1), "equal_counts": context.get("equal_counts", False),
        "fps": context.get("fps"), "fps_note": context.get("fps_note"), "best": best,
        "tie_rule": TIE_RULE, "classes": context["classes"], **selection,
        "shuffled_control": shuffled.to_dict("records")[0] if len(shuffled) else None,
        "table": table.to_dict("records"), "files": {k: str(v) for k, v in files.items()},
    }
    write_json(summary, out / "summary.json")
    return summary
