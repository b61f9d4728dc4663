"""``run_strides``: the stride accuracy table of a model over a shard folder's split, each video
decoded once for all steps, resumable, written into one folder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kvlrp.analysis.accuracy import best_step, stride_table, video_predictions
from kvlrp.analysis.class_check import check_classes
from kvlrp.analysis.resume import run_settings
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
) -> dict:
    """Accuracy per step without retraining, plus the frame-shuffled control.

    Writes ``stride_accuracy.csv``, ``clip_predictions.csv``, ``video_predictions.csv`` and
    ``summary.json`` (best step, gain over the training step) into ``out_dir``; progress in
    ``out_dir/partial`` lets an interrupted run resume.

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    from kvlrp.data.pipeline import eval_clips, video_dataset
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
    specs: dict[int, Any] = {}

    def make_clips(frames, step):
        spec = specs.setdefault(step, info.clip_spec(step=step))
        return {k: v.numpy() for k, v in eval_clips(frames, spec, clips_per_video).items()}

    settings = {**run_settings(model, info, shard_dir, split, clips_per_video),
                "batch_size": batch_size}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_videos, desc=f"strides {steps}", unit="video")
    try:
        clips = stride_predictions(
            model, video_dataset(shard_dir, split), make_clips, steps,
            control_step=info.step if control else None, control_seed=control_seed,
            partial_dir=out / "partial", settings=settings, batch_size=batch_size,
            on_video=on_video, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    table = stride_table(clips, info.clip_len, n_boot=n_boot, seed=seed)
    best = best_step(table, train_step=info.step)
    files = {
        "stride_accuracy": write_csv(table, out / "stride_accuracy.csv"),
        "clip_predictions": write_csv(clips, out / "clip_predictions.csv"),
        "video_predictions": write_csv(video_predictions(clips), out / "video_predictions.csv"),
    }
    shuffled = table[table["control"] == "shuffled"]
    summary = {
        "kind": "strides", "split": split, "steps": steps, "train_step": info.step,
        "clip_len": info.clip_len, "clips_per_video": clips_per_video, "best": best,
        "tie_rule": TIE_RULE, "classes": info.classes,
        "shuffled_control": shuffled.to_dict("records")[0] if len(shuffled) else None,
        "table": table.to_dict("records"), "files": {k: str(v) for k, v in files.items()},
    }
    write_json(summary, out / "summary.json")
    return summary
