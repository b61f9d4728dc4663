"""``run_strides``: the stride accuracy table of a model over a shard folder's split, each video
decoded once for all steps, resumable, written into one folder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kvlrp.analysis.accuracy import best_step, stride_table, video_predictions
from kvlrp.analysis.class_check import check_classes
from kvlrp.analysis.resume import run_settings
from kvlrp.analysis.selection import add_paired_columns, select_and_report
from kvlrp.analysis.strides import stride_predictions
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

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    import tensorflow as tf

    from kvlrp.data.pipeline import example_clips, video_examples
    from kvlrp.data.shards import read_index

    out = check_out_dir(out_dir)
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
    specs: dict[int, Any] = {}
    videos_of = {s: video_examples(shard_dir, s) for s in dict.fromkeys([split, select_on])}
    encoding = videos_of[split][1]

    def make_clips(example, step):
        # decodes only the frames of this step's clips: memory follows the clips, not the video
        if step not in specs:
            spec = info.clip_spec(step=step)
            specs[step] = tf.function(
                lambda ex, spec=spec: example_clips(ex, spec, clips_per_video, encoding),
                reduce_retracing=True)
        return {k: v.numpy() for k, v in specs[step](example).items()}

    def predict(on_split: str, partial: Path, with_control: bool, hook):
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=int((index["split"] == on_split).sum()),
                       desc=f"strides {steps} ({on_split})", unit="video")
        try:
            return stride_predictions(
                model, videos_of[on_split][0], make_clips, steps,
                control_step=info.step if with_control else None, control_seed=control_seed,
                partial_dir=partial,
                settings={**run_settings(model, info, shard_dir, on_split, clips_per_video),
                          "batch_size": batch_size},
                batch_size=batch_size, on_video=hook, progress=bar)
        finally:
            if bar is not None:
                bar.close()

    clips = predict(split, out / "partial", control, on_video)
    videos = video_predictions(clips)
    table = stride_table(clips, info.clip_len, n_boot=n_boot, seed=seed)
    best = best_step(table, train_step=info.step)
    table = add_paired_columns(table, videos, info.step, n_boot=n_boot, seed=seed)
    files = {
        "stride_accuracy": write_csv(table, out / "stride_accuracy.csv"),
        "clip_predictions": write_csv(clips, out / "clip_predictions.csv"),
        "video_predictions": write_csv(videos, out / "video_predictions.csv"),
    }
    selection_videos = videos
    if select_on != split:
        sel_clips = predict(select_on, out / "partial" / select_on, False, None)
        selection_videos = video_predictions(sel_clips)
        sel_table = stride_table(sel_clips, info.clip_len, n_boot=n_boot, seed=seed)
        files[f"stride_accuracy_{select_on}"] = write_csv(
            sel_table, out / f"stride_accuracy_{select_on}.csv")
        files[f"video_predictions_{select_on}"] = write_csv(
            selection_videos, out / f"video_predictions_{select_on}.csv")
    selection = select_and_report(selection_videos, videos, info.step, select_on, split,
                                  n_boot=n_boot, seed=seed)
    shuffled = table[table["control"] == "shuffled"]
    summary = {
        "kind": "strides", "split": split, "steps": steps, "train_step": info.step,
        "clip_len": info.clip_len, "clips_per_video": clips_per_video, "best": best,
        "tie_rule": TIE_RULE, "classes": info.classes, **selection,
        "shuffled_control": shuffled.to_dict("records")[0] if len(shuffled) else None,
        "table": table.to_dict("records"), "files": {k: str(v) for k, v in files.items()},
    }
    write_json(summary, out / "summary.json")
    return summary
