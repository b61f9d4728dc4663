"""Max pooling with a first-winner gradient from TensorFlow's argmax pooling.

``tf.nn.max_pool_with_argmax`` (2D, channels-last) records, per window, the flat index of the
first input that holds the maximum in row-major window order (its CPU kernel keeps the running
maximum under a strict ``>``, under oneDNN and Eigen alike), and its registered gradient
(``MaxPoolGradWithArgmax``) scatters each window's gradient to that one input. That is the
tie rule of :mod:`analyzers.ops.pooling.winner` at the cost of one pool and one scatter.

Other ranks reduce to it:

- 1D: the sequence is one row of a 2D image (``[batch, 1, length, channels]``).
- 3D: the frames are folded into the batch and pooled over (height, width) first, then the
  result, with each frame's pooled positions flattened into one axis, is pooled over time with
  a ``(k_t, 1)`` window. Each stage routes ties to its first maximum, so the composition picks
  the smallest time offset holding the window's maximum and, in that frame, the first maximum
  in row-major (height, width) order: the first maximum of the joint window in row-major
  order. ``same`` padding is per axis, so the stages pad as the joint pool does.
- ``channels_first`` inputs are transposed to channels-last and back.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

Tensor = tf.Tensor


def _pool2d(x: Tensor, pool: Sequence[int], strides: Sequence[int], padding: str) -> Tensor:
    """``[N, H, W, C]`` max pooling whose gradient goes to each window's first maximum."""
    y, _ = tf.nn.max_pool_with_argmax(x, [1, *pool, 1], [1, *strides, 1], padding.upper())
    return y


def _is_identity(pool: Sequence[int], strides: Sequence[int]) -> bool:
    return all(int(k) == 1 for k in pool) and all(int(s) == 1 for s in strides)


def _pool3d(x: Tensor, pool: Sequence[int], strides: Sequence[int], padding: str) -> Tensor:
    """``[B, T, H, W, C]``: a (height, width) stage on frames folded into the batch, then a
    time stage on ``[B, T, H' * W', C]``."""
    shape = tf.shape(x)
    b, t, c = shape[0], shape[1], shape[4]
    y = x
    if not _is_identity(pool[1:], strides[1:]):
        frames = tf.reshape(x, tf.stack([b * t, shape[2], shape[3], c]))
        pooled = _pool2d(frames, pool[1:], strides[1:], padding)
        pooled_shape = tf.shape(pooled)
        y = tf.reshape(pooled, tf.stack([b, t, pooled_shape[1], pooled_shape[2], c]))
    if _is_identity(pool[:1], strides[:1]):
        return y
    y_shape = tf.shape(y)
    rows = tf.reshape(y, tf.stack([b, t, y_shape[2] * y_shape[3], c]))
    pooled = _pool2d(rows, (pool[0], 1), (strides[0], 1), padding)
    return tf.reshape(pooled, tf.stack([b, tf.shape(pooled)[1], y_shape[2], y_shape[3], c]))


def max_pool_argmax(x: Tensor, pool_size: Sequence[int], strides: Sequence[int], padding: str,
                    data_format: str) -> Tensor:
    """Max pooling (1D/2D/3D) whose gradient goes to each window's first maximum.

    Parameters
    ----------
    x
        ``[batch, *spatial, channels]`` (or channels-first with ``data_format``).
    pool_size, strides
        Window and step per spatial axis.
    padding
        ``"valid"`` or ``"same"``.
    data_format
        ``"channels_last"`` or ``"channels_first"``.
    """
    rank = len(x.shape) - 2
    pool = [int(k) for k in pool_size]
    steps = [int(s) for s in strides]
    if data_format == "channels_first":
        to_last = [0, *range(2, rank + 2), 1]
        y = max_pool_argmax(tf.transpose(x, to_last), pool, steps, padding, "channels_last")
        return tf.transpose(y, [0, rank + 1, *range(1, rank + 1)])
    if rank == 1:
        return _pool2d(x[:, None], (1, pool[0]), (1, steps[0]), padding)[:, 0]
    if rank == 2:
        return _pool2d(x, pool, steps, padding)
    if rank == 3:
        return _pool3d(x, pool, steps, padding)
    raise ValueError(f"max pooling of rank {rank} is not supported (1, 2 or 3)")
