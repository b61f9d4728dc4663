"""In-graph (TensorFlow) clip indexing, cropping and normalisation; mirrors
:mod:`kvlrp.data.clips.clip_sampling`, against which it is tested."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kvlrp.data.clips.normalization import get_normalization
from kvlrp.data.clips.spec import check_short_policy, clip_span

__all__ = ["centre_crop", "eval_starts", "fit_short_side", "frame_indices", "normalize",
           "random_crop_flip", "random_start", "three_crops"]

#: A step between a clip's frames: a Python int, or an int32 scalar tensor in a traced graph.
Step = int | tf.Tensor


def normalize(frames: tf.Tensor, name: str) -> tf.Tensor:
    """Map pixel values 0..255 (uint8 or float) ``[..., 3]`` to normalisation ``name``:
    ``(p - mean) / std`` per channel (see :mod:`kvlrp.data.clips.normalization`)."""
    norm = get_normalization(name)
    scale, offset = norm.scale, norm.offset
    if np.all(scale == scale[0]) and np.all(offset == offset[0]):  # one scalar per op
        return tf.cast(frames, tf.float32) * float(scale[0]) + float(offset[0])
    return (tf.cast(frames, tf.float32) * tf.constant(scale, tf.float32)
            + tf.constant(offset, tf.float32))


def frame_indices(
    n_frames: tf.Tensor, starts: tf.Tensor, clip_len: int, step: Step, policy: str
) -> tuple[tf.Tensor, tf.Tensor]:
    """Frame indices ``[N, clip_len]`` of clips starting at ``starts`` ``[N]``, and ``is_short``.

    Short clips (running past the last frame) wrap (``loop``) or repeat the last frame
    (``repeat_last``); under ``skip`` the caller drops them (their indices are clamped here).
    """
    check_short_policy(policy, "short-video policy")
    n_frames = tf.cast(n_frames, tf.int32)
    starts = tf.cast(starts, tf.int32)
    raw = starts[:, None] + tf.range(clip_len, dtype=tf.int32)[None, :] * step
    if policy == "loop":
        indices = tf.math.floormod(raw, n_frames)
    else:
        indices = tf.minimum(raw, n_frames - 1)
    is_short = starts + clip_span(clip_len, step) > n_frames
    return indices, is_short


def eval_starts(n_frames: tf.Tensor, clip_len: int, step: Step, n_clips: int | str,
                distinct: bool = True) -> tf.Tensor:
    """Evaluation clip starts ``[N]`` (see :func:`kvlrp.data.clips.clip_sampling.eval_starts`)."""
    width = clip_span(clip_len, step)
    last = tf.maximum(tf.cast(n_frames, tf.int32) - width, 0)
    if n_clips == "all":
        return tf.range(0, last + 1, width, dtype=tf.int32)
    if n_clips == 1:
        return tf.reshape(last // 2, [1])
    starts = (tf.range(n_clips, dtype=tf.int32) * last) // (n_clips - 1)
    return tf.unique(starts).y if distinct else starts


def random_start(n_frames: tf.Tensor, clip_len: int, step: int, seed: tf.Tensor) -> tf.Tensor:
    """A start drawn uniformly over the valid starts (0 when the video is shorter than a clip)."""
    width = clip_span(clip_len, step)
    n_starts = tf.maximum(tf.cast(n_frames, tf.int32) - width + 1, 1)
    return tf.random.stateless_uniform([], seed, minval=0, maxval=n_starts, dtype=tf.int32)


def fit_short_side(frames: tf.Tensor, size: int) -> tf.Tensor:
    """Upscale float frames ``[..., H, W, C]`` (bilinear) if their shorter side is below ``size``.

    Frames at least ``size`` on both sides are returned unchanged (crops are taken from them).
    """
    shape = tf.shape(frames)
    height, width = shape[-3], shape[-2]
    short = tf.minimum(height, width)

    def _resize() -> tf.Tensor:
        scale = tf.cast(size, tf.float32) / tf.cast(short, tf.float32)
        new_h = tf.maximum(size, _scaled(height, scale))
        new_w = tf.maximum(size, _scaled(width, scale))
        flat = tf.reshape(frames, tf.concat([[-1], shape[-3:]], 0))
        resized = tf.image.resize(flat, tf.stack([new_h, new_w]), method="bilinear")
        return tf.reshape(resized, tf.concat([shape[:-3], [new_h, new_w, shape[-1]]], 0))

    return tf.cond(short < size, _resize, lambda: frames)


def _scaled(length: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.math.ceil(tf.cast(length, tf.float32) * scale), tf.int32)


def centre_crop(frames: tf.Tensor, size: int) -> tf.Tensor:
    """The central ``size`` x ``size`` window of ``[..., H, W, C]`` frames."""
    shape = tf.shape(frames)
    top = (shape[-3] - size) // 2
    left = (shape[-2] - size) // 2
    return frames[..., top:top + size, left:left + size, :]


def three_crops(frames: tf.Tensor, size: int) -> tf.Tensor:
    """Three ``size`` x ``size`` windows of ``[N, L, H, W, C]`` frames along their longer side
    (its start, centre and end; centred on the shorter side), as MMAction2's ``ThreeCrop`` and
    PyTorchVideo's three-crop test: ``[N, 3, L, size, size, C]``.

    Square frames count as wide; see :func:`kvlrp.data.clips.clip_sampling.three_crop_offsets`.
    """
    shape = tf.shape(frames)
    height, width = shape[-3], shape[-2]
    wide = width >= height
    long_side = tf.where(wide, width, height)
    short_side = tf.where(wide, height, width)
    across = (short_side - size) // 2
    along = tf.stack([0, (long_side - size) // 2, long_side - size])
    crops = []
    for k in range(3):
        top = tf.where(wide, across, along[k])
        left = tf.where(wide, along[k], across)
        crops.append(frames[..., top:top + size, left:left + size, :])
    return tf.stack(crops, axis=1)


def random_crop_flip(frames: tf.Tensor, size: int, seed: tf.Tensor, flip: bool) -> tf.Tensor:
    """A random ``size`` x ``size`` window of ``[L, H, W, C]`` frames, mirrored with p = 1/2."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    shape = tf.shape(frames)
    top = tf.random.stateless_uniform([], seeds[0], 0, shape[1] - size + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[1], 0, shape[2] - size + 1, dtype=tf.int32)
    crop = frames[:, top:top + size, left:left + size, :]
    if flip:
        mirror = tf.random.stateless_uniform([], seeds[2]) < 0.5
        crop = tf.cond(mirror, lambda: tf.reverse(crop, axis=[2]), lambda: crop)
    return crop
