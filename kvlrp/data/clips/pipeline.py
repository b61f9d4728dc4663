"""tf.data pipelines over decode-once shards: random training clips, evaluation clips.

No Python runs per clip: parsing, frame selection, JPEG decoding, resizing, cropping, flipping
and normalisation are TensorFlow ops. Frames whose shorter side is below ``ClipSpec.size`` are
first upscaled (bilinear) so that the shorter side equals ``size``; larger frames are cropped
as they are (prepare shards with ``short_side`` to shrink large videos once).
"""

from __future__ import annotations

import os
import random
from collections.abc import Collection

import tensorflow as tf

from kvlrp.data.clips import clip_ops, clip_sampling
from kvlrp.data.clips.clip_ops import normalize
from kvlrp.data.clips.spec import ClipSpec, clip_span
from kvlrp.data.shards.folder import read_dataset_info, read_index
from kvlrp.infra import fs
from kvlrp.infra.checks import check_positive_or_all

__all__ = [
    "clip_counts",
    "eval_clips",
    "eval_dataset",
    "normalize",
    "train_dataset",
    "video_dataset",
]

AUTOTUNE = tf.data.AUTOTUNE


def train_dataset(
    shard_dir: str | os.PathLike,
    spec: ClipSpec,
    batch_size: int,
    split: str = "train",
    seed: int | None = None,
    flip: bool = True,
    shuffle_buffer: int | None = None,
) -> tf.data.Dataset:
    """Endless shuffled batches of random training clips.

    Each element draws one clip from one video: a start uniform over the valid starts, a random
    ``size`` x ``size`` crop and (``flip``) a horizontal flip with probability 1/2.

    Parameters
    ----------
    shard_dir
        Folder written by :func:`kvlrp.data.shards.folder.prepare_shards`.
    spec
        Clip geometry and preprocessing.
    batch_size
        Clips per batch (incomplete last batches are dropped; the dataset repeats).
    split
        Which split's videos to use.
    seed
        Makes the whole sequence (order, offsets, crops, flips) reproducible; ``None``: random.
    flip, shuffle_buffer
        Horizontal flips on/off; videos in the shuffle buffer (default: all, at most 256 JPEG
        or 64 raw videos).

    Returns
    -------
    tf.data.Dataset
        ``(clips float32 [B, L, S, S, 3], labels int32 [B])``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    index, files, encoding = _split_files(shard_dir, split)
    usable = index if spec.short_policy != "skip" else index[index["n_frames"] >= spec.span]
    if usable.empty:
        raise ValueError(
            f"every video of split '{split}' in {shard_dir} is shorter than a clip's span "
            f"({spec.span} frames) and short_policy='skip' drops them all; use 'loop' or "
            "'repeat_last', or a smaller clip_len/step"
        )
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    if shuffle_buffer is None:
        shuffle_buffer = min(len(usable), 256 if encoding == "jpeg" else 64)
    base_seed = tf.constant([seed, 0x6B766C], dtype=tf.int64)

    files_ds = tf.data.Dataset.from_tensor_slices(files)
    files_ds = files_ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = files_ds.interleave(
        tf.data.TFRecordDataset, cycle_length=min(4, len(files)), block_length=1,
        num_parallel_calls=AUTOTUNE, deterministic=True,
    )
    ds = ds.map(_parse, num_parallel_calls=AUTOTUNE, deterministic=True)
    if spec.short_policy == "skip":
        ds = ds.filter(lambda ex: ex["n_frames"] >= spec.span)
    ds = ds.shuffle(max(1, shuffle_buffer), seed=seed, reshuffle_each_iteration=True)

    def _clip(position: tf.Tensor, example: dict) -> tuple[tf.Tensor, tf.Tensor]:
        element_seed = tf.random.experimental.stateless_fold_in(base_seed, position)
        seeds = tf.random.experimental.stateless_split(element_seed, 2)
        start = clip_ops.random_start(example["n_frames"], spec.clip_len, spec.step, seeds[0])
        indices, _ = clip_ops.frame_indices(
            example["n_frames"], start[None], spec.clip_len, spec.step, spec.short_policy
        )
        frames = _decode_clip_frames(example, indices[0], spec.clip_len, encoding)
        frames = clip_ops.fit_short_side(tf.cast(frames, tf.float32), spec.size)
        clip = clip_ops.random_crop_flip(frames, spec.size, seeds[1], flip)
        clip = tf.ensure_shape(normalize(clip, spec.normalization),
                               [spec.clip_len, spec.size, spec.size, 3])
        return clip, tf.cast(example["label_index"], tf.int32)

    ds = ds.enumerate().map(_clip, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def eval_dataset(
    shard_dir: str | os.PathLike,
    spec: ClipSpec,
    split: str = "val",
    n_clips: int | str = 4,
    batch_size: int = 16,
    videos: Collection[str] | None = None,
) -> tf.data.Dataset:
    """Evaluation clips of every video of ``split``, in index order, once (not repeating).

    ``videos``: only these video ids (one worker's part, see :mod:`kvlrp.analysis.runs.partition`);
    shard files holding none of them are not read.

    Each video gives ``n_clips`` clips evenly spaced over it (``"all"``: every
    non-overlapping clip; see :func:`kvlrp.data.clips.clip_sampling.eval_starts`), centre-cropped
    (``spec.crops == 3``: three crops per clip, clip by clip, crop 0, 1, 2).
    Under ``short_policy="skip"`` videos shorter than a clip give none (see :func:`clip_counts`).

    Returns
    -------
    tf.data.Dataset
        Dicts of ``clip`` float32 ``[B, L, S, S, 3]``, ``label`` int32, ``video_id`` string,
        ``clip_start`` int32, ``crop`` int32 and ``is_short`` bool, each ``[B]``.
    """
    check_positive_or_all("n_clips", n_clips)
    index, files, encoding = _split_files(shard_dir, split)

    def _clips(example: dict) -> dict:
        return example_clips(example, spec, n_clips, encoding, label=example["label_index"],
                             video_id=example["video_id"])

    _keep, files = _only_videos(index, files, videos)
    ds = tf.data.TFRecordDataset(files)
    ds = ds.map(_parse, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds if videos is None else ds.filter(_keep)
    ds = ds.map(_clips, num_parallel_calls=AUTOTUNE, deterministic=True).unbatch()
    return ds.batch(batch_size).prefetch(AUTOTUNE)


def example_clips(example: dict, spec: ClipSpec, n_clips: int | str, encoding: str,
                  label: tf.Tensor | int | None = None,
                  video_id: tf.Tensor | str | None = None,
                  step: clip_ops.Step | None = None) -> dict[str, tf.Tensor]:
    """Evaluation clips of one parsed (still encoded) shard example, as :func:`eval_clips`
    gives them from decoded frames, decoding only the frames the clips use (each once) and
    (for centre crops) cropping before the conversion to float: memory follows the clips, not
    the video length.

    ``step``: the step between a clip's frames instead of ``spec.step``, also as an int32
    tensor (one traced ``tf.function`` then serves every step).
    """
    step = spec.step if step is None else step
    starts = _eval_starts(example["n_frames"], spec, n_clips, step)
    indices, is_short = clip_ops.frame_indices(
        example["n_frames"], starts, spec.clip_len, step, spec.short_policy
    )
    needed, where = tf.unique(tf.reshape(indices, [-1]))
    decoded = _decode_frames(example, needed, encoding)
    if spec.crops == 1:
        short = tf.minimum(tf.shape(decoded)[1], tf.shape(decoded)[2])
        # frames at least the crop size: crop each decoded frame once, before clips repeat them
        decoded = tf.cond(short >= spec.size, lambda: clip_ops.centre_crop(decoded, spec.size),
                          lambda: decoded)
    frames = tf.gather(decoded, where)
    shape = tf.shape(frames)
    frames = tf.reshape(frames, tf.concat([tf.shape(indices), shape[1:]], 0))
    return _package(frames, starts, is_short, spec, label, video_id)


def video_examples(shard_dir: str | os.PathLike, split: str | None = "val",
                   videos: Collection[str] | None = None) -> tuple[tf.data.Dataset, str]:
    """One element per video of ``split``, its frames still encoded (for :func:`example_clips`).

    ``videos``: only these video ids (as in :func:`eval_dataset`).

    Returns
    -------
    tuple
        ``(dataset, encoding)``: dicts of ``frames`` (the parsed example), ``label`` int32,
        ``video_id`` string, ``n_frames`` int32; and the shards' frame encoding.
    """
    index, files, encoding = _split_files(shard_dir, split)
    _keep, files = _only_videos(index, files, videos)

    def _video(example: dict) -> dict:
        return {"frames": example, "label": tf.cast(example["label_index"], tf.int32),
                "video_id": example["video_id"], "n_frames": example["n_frames"]}

    ds = tf.data.TFRecordDataset(files).map(_parse, num_parallel_calls=AUTOTUNE,
                                            deterministic=True)
    ds = ds if videos is None else ds.filter(_keep)
    return ds.map(_video).prefetch(2), encoding


def video_dataset(shard_dir: str | os.PathLike, split: str | None = "val",
                  videos: Collection[str] | None = None) -> tf.data.Dataset:
    """One element per video of ``split`` (``None``: all splits), its frames decoded once.

    ``videos``: only these video ids (as in :func:`eval_dataset`).

    Returns
    -------
    tf.data.Dataset
        Dicts of ``frames`` uint8 ``[T, H, W, 3]``, ``label`` int32, ``video_id`` string,
        ``n_frames`` int32.
    """
    index, files, encoding = _split_files(shard_dir, split)
    _keep, files = _only_videos(index, files, videos)

    def _video(example: dict) -> dict:
        frames = _decode_frames(example, tf.range(example["n_frames"]), encoding)
        return {"frames": frames, "label": tf.cast(example["label_index"], tf.int32),
                "video_id": example["video_id"], "n_frames": example["n_frames"]}

    ds = tf.data.TFRecordDataset(files).map(_parse, num_parallel_calls=AUTOTUNE,
                                            deterministic=True)
    ds = ds if videos is None else ds.filter(_keep)
    return ds.map(_video, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(2)


def eval_clips(
    frames: tf.Tensor,
    spec: ClipSpec,
    n_clips: int | str = 4,
    label: tf.Tensor | int | None = None,
    video_id: tf.Tensor | str | None = None,
) -> dict[str, tf.Tensor]:
    """Evaluation clips of one decoded video (graph-safe), as :func:`eval_dataset` unbatched.

    Parameters
    ----------
    frames
        uint8 ``[T, H, W, 3]`` (e.g. from :func:`video_dataset`).
    spec, n_clips
        As for :func:`eval_dataset`.
    label, video_id
        Optional; when given they are repeated for every clip.

    Returns
    -------
    dict
        ``clip`` float32 ``[N, L, S, S, 3]``, ``clip_start`` int32 ``[N]``, ``crop`` int32
        ``[N]``, ``is_short`` bool ``[N]`` (+ ``label``, ``video_id`` ``[N]`` if given);
        ``N`` counts clips x crops.
    """
    check_positive_or_all("n_clips", n_clips)
    frames = tf.convert_to_tensor(frames)
    n_frames = tf.shape(frames)[0]
    starts = _eval_starts(n_frames, spec, n_clips, spec.step)
    indices, is_short = clip_ops.frame_indices(
        n_frames, starts, spec.clip_len, spec.step, spec.short_policy
    )
    return _package(tf.gather(frames, indices), starts, is_short, spec, label, video_id)


def clip_counts(
    shard_dir: str | os.PathLike, spec: ClipSpec, split: str | None = "val",
    n_clips: int | str = 4,
) -> dict[str, int]:
    """How many evaluation clips a split gives and how many of them are short (plain Python).

    Returns
    -------
    dict
        ``n_videos``, ``n_clips`` (clips produced, crops counted), ``n_short_clips``
        (produced clips that loop/repeat), ``n_skipped_videos`` (videos without any clip
        under ``skip``), ``n_skipped_clips``.
    """
    index = read_index(shard_dir)
    if split is not None:
        index = index[index["split"] == split]
    counts = dict(n_videos=len(index), n_clips=0, n_short_clips=0, n_skipped_videos=0,
                  n_skipped_clips=0)
    for n_frames in index["n_frames"]:
        starts = clip_sampling.eval_starts(int(n_frames), spec.clip_len, spec.step, n_clips,
                                           distinct=spec.distinct_starts)
        short = [clip_sampling.is_short(int(n_frames), s, spec.clip_len, spec.step)
                 for s in starts for _ in range(spec.crops)]
        if spec.short_policy == "skip":
            counts["n_skipped_clips"] += sum(short)
            counts["n_clips"] += len(short) - sum(short)
            counts["n_skipped_videos"] += all(short)
        else:
            counts["n_clips"] += len(short)
            counts["n_short_clips"] += sum(short)
    return counts


# --- helpers -------------------------------------------------------------------------------

_FEATURES = {
    "video_id": tf.io.FixedLenFeature([], tf.string),
    "label_index": tf.io.FixedLenFeature([], tf.int64),
    "n_frames": tf.io.FixedLenFeature([], tf.int64),
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
    "frames": tf.io.RaggedFeature(tf.string),
}


def _parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    example = tf.io.parse_single_example(serialized, _FEATURES)
    for key in ("n_frames", "height", "width"):
        example[key] = tf.cast(example[key], tf.int32)
    return example


def _decode_frames(example: dict, indices: tf.Tensor, encoding: str) -> tf.Tensor:
    """uint8 frames ``[len(indices), H, W, 3]`` of a parsed example."""
    if encoding == "raw":  # cut only the wanted frames out of the video's byte string
        frame_bytes = tf.cast(example["height"] * example["width"] * 3, tf.int64)
        indices = tf.cast(indices, tf.int64)
        pieces = tf.strings.substr(example["frames"][0], indices * frame_bytes,
                                   tf.fill(tf.shape(indices), frame_bytes))
        flat = tf.io.decode_raw(pieces, tf.uint8, fixed_length=None)
        return tf.reshape(flat, tf.stack([tf.size(indices), example["height"],
                                          example["width"], 3]))
    shape = tf.stack([tf.size(indices), example["height"], example["width"], 3])
    encoded = tf.gather(example["frames"], indices)

    def _decode() -> tf.Tensor:
        decoded = tf.map_fn(
            lambda data: tf.io.decode_jpeg(data, channels=3), encoded,
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
        )
        return tf.reshape(decoded, shape)

    # map_fn cannot stack an empty list of unknown-size frames (no clip under 'skip')
    return tf.cond(tf.size(indices) > 0, _decode, lambda: tf.zeros(shape, tf.uint8))


def _decode_clip_frames(example: dict, indices: tf.Tensor, clip_len: int,
                        encoding: str) -> tf.Tensor:
    """Like :func:`_decode_frames` for a static number of frames: one decode op per frame
    (unrolled, so tf.data runs them without a while loop)."""
    if encoding == "raw":
        return _decode_frames(example, indices, encoding)
    frames = [tf.io.decode_jpeg(example["frames"][indices[k]], channels=3)
              for k in range(clip_len)]
    return tf.ensure_shape(tf.stack(frames), [clip_len, None, None, 3])


def _eval_starts(n_frames: tf.Tensor, spec: ClipSpec, n_clips: int | str,
                 step: clip_ops.Step) -> tf.Tensor:
    """Clip starts at ``step`` (``spec.step``, or another step as an int32 tensor)."""
    starts = clip_ops.eval_starts(n_frames, spec.clip_len, step, n_clips,
                                  distinct=spec.distinct_starts)
    if spec.short_policy == "skip":
        span = clip_span(spec.clip_len, step)
        starts = tf.boolean_mask(starts, starts + span <= tf.cast(n_frames, tf.int32))
    return starts


def _package(clips_uint8, starts, is_short, spec: ClipSpec, label, video_id) -> dict:
    """Crop (centre, or three crops per clip) and normalise ``[N, L, H, W, 3]`` clips; attach
    per-clip metadata. Centre crops are cut before the conversion to float."""
    starts = tf.cast(starts, tf.int32)
    if spec.crops == 3:
        clips = clip_ops.fit_short_side(tf.cast(clips_uint8, tf.float32), spec.size)
        crops = clip_ops.three_crops(clips, spec.size)  # [N, 3, L, S, S, 3]
        clips = tf.reshape(crops, tf.concat([[-1], tf.shape(crops)[2:]], 0))
        starts, is_short = tf.repeat(starts, 3), tf.repeat(is_short, 3)
        crop = tf.tile(tf.range(3, dtype=tf.int32), tf.shape(starts)[:1] // 3)
    else:
        shape = tf.shape(clips_uint8)

        def _crop_then_float() -> tf.Tensor:  # no resize: crop first, convert only the crop
            return tf.cast(clip_ops.centre_crop(clips_uint8, spec.size), tf.float32)

        def _resize_then_crop() -> tf.Tensor:  # frames smaller than the crop: upscale first
            resized = clip_ops.fit_short_side(tf.cast(clips_uint8, tf.float32), spec.size)
            return clip_ops.centre_crop(resized, spec.size)

        clips = tf.cond(tf.minimum(shape[-3], shape[-2]) < spec.size, _resize_then_crop,
                        _crop_then_float)
        crop = tf.zeros_like(starts)
    clips = normalize(clips, spec.normalization)
    clips = tf.ensure_shape(clips, [None, spec.clip_len, spec.size, spec.size, 3])
    n = tf.shape(starts)[0]
    out = {"clip": clips, "clip_start": starts, "crop": crop, "is_short": is_short}
    if label is not None:
        out["label"] = tf.fill([n], tf.cast(label, tf.int32))
    if video_id is not None:
        out["video_id"] = tf.fill([n], tf.convert_to_tensor(video_id, tf.string))
    return out


def _split_files(shard_dir, split: str | None) -> tuple:
    """Index rows, shard files and frame encoding of ``split`` (``None``: all)."""
    shard_dir = fs.path(shard_dir)  # local, or any tf.io.gfile URL
    info = read_dataset_info(shard_dir)
    index = read_index(shard_dir)
    if split is not None:
        present = sorted(index["split"].unique())
        index = index[index["split"] == split]
        if index.empty:
            raise ValueError(
                f"no videos of split '{split}' in {shard_dir} (splits present: {present})"
            )
    files = [str(shard_dir / name) for name in dict.fromkeys(index["shard"])]
    missing = [f for f in files if not fs.path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"shard file(s) listed in index.csv are missing: {missing[:3]}")
    return index, files, info["encoding"]


def _only_videos(index, files: list[str], videos: Collection[str] | None):
    """-> (predicate on parsed examples keeping ``videos``, the shard files holding them)."""
    if videos is None:
        return None, files
    wanted = sorted({str(v) for v in videos})
    unknown = sorted(set(wanted) - set(index["video_id"].astype(str)))
    if unknown:
        raise ValueError(f"video ids not in this split of the shard index: {unknown[:3]}")
    shards = set(index.loc[index["video_id"].astype(str).isin(wanted), "shard"])
    # No video at all: read one file and keep nothing (an empty file list has no dtype).
    files = [f for f in files if fs.path(f).name in shards] or files[:1]
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(wanted or [""], tf.string),
                                            tf.ones([max(1, len(wanted))], tf.int32)),
        default_value=0)
    empty = not wanted

    def keep(example: dict) -> tf.Tensor:
        return tf.logical_and(not empty, table.lookup(example["video_id"]) > 0)

    return keep, files
