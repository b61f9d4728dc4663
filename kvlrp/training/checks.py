"""Checks on a shard folder that fail before any training starts, each saying what to fix."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from kvlrp.data.clips.spec import clip_span
from kvlrp.infra import fs


class TrainingSetupError(ValueError):
    """The data or settings cannot be trained on (raised before training starts)."""


@dataclass(frozen=True)
class ShardSummary:
    """What training needs to know about a shard folder.

    Attributes
    ----------
    classes
        Class names in label-index order (``classes.json``).
    n_train, n_val
        Videos in the ``train`` and ``val`` splits.
    max_train_frames
        Frames of the longest training video.
    n_short_train
        Training videos shorter than a clip's span (handled by the short-clip policy).
    """

    classes: list[str]
    n_train: int
    n_val: int
    max_train_frames: int
    n_short_train: int


def check_shards(
    shard_dir: str | os.PathLike, clip_len: int, step: int, val_split: str = "val"
) -> ShardSummary:
    """Validate a shard folder for training with clips of ``clip_len`` frames at ``step``.

    Raises
    ------
    TrainingSetupError
        Empty or missing shard folder, fewer than two training classes, a validation class
        absent from training, or a clip span longer than every training video.
    """
    shard_dir = fs.path(shard_dir)  # local, or any tf.io.gfile URL
    index_path = shard_dir / "index.csv"
    if not shard_dir.is_dir():
        raise TrainingSetupError(f"shard folder {shard_dir} does not exist")
    if not index_path.is_file() or not any(shard_dir.glob("*.tfrecord*")):
        raise TrainingSetupError(
            f"no shards in {shard_dir} (expected index.csv, classes.json and *.tfrecord files); "
            "create them with `kvlrp prepare MANIFEST --out DIR`"
        )
    index = fs.read_csv(index_path)
    classes = json.loads((shard_dir / "classes.json").read_text())
    train = index[index["split"] == "train"]
    val = index[index["split"] == val_split]
    if train.empty:
        raise TrainingSetupError(
            f"{index_path} has no videos in the 'train' split (splits present: "
            f"{sorted(index['split'].unique())}); mark training videos split=train in the manifest"
        )
    train_labels = sorted(train["label"].astype(str).unique())
    if len(train_labels) < 2:
        raise TrainingSetupError(
            f"the training split of {shard_dir} has only one class ({train_labels}); "
            "a classifier needs videos of at least two classes"
        )
    missing = sorted(set(val["label"].astype(str)) - set(train_labels))
    if missing:
        raise TrainingSetupError(
            f"validation classes {missing} have no training videos in {shard_dir}; "
            "every class in the 'val' split must also be in 'train'"
        )
    span = clip_span(clip_len, step)
    max_frames = int(train["n_frames"].max())
    if span > max_frames:
        raise TrainingSetupError(
            f"a clip of clip_len={clip_len} at step={step} spans {span} frames, longer than every "
            f"training video (the longest has {max_frames} frames); lower clip_len or step so "
            f"that step * (clip_len - 1) + 1 <= {max_frames}"
        )
    return ShardSummary(
        classes=[str(c) for c in classes],
        n_train=len(train),
        n_val=len(val),
        max_train_frames=max_frames,
        n_short_train=int((train["n_frames"] < span).sum()),
    )
