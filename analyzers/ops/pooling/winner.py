"""Max pooling whose gradient has exactly one winner per window.

TensorFlow's gradient of ``max_pool3d`` hands the full incoming gradient to *every* input
equal to the window maximum (an all-zero 2x2x2 window receives it eight times), while its
``max_pool2d`` gradient picks one; which input wins also depends on the kernel set
(oneDNN or Eigen). Winner-take-all relevance that routes through that gradient would copy
relevance at tied maxima. The functions here compute the forward max with TensorFlow's
own kernel and define the backward pass themselves:

**Tie rule.** A window's gradient goes to its *first* maximum in window order: the
offsets of a window are enumerated row-major over the spatial axes (the first spatial
axis slowest, the last fastest), and the smallest offset holding the maximum wins. Global
max pooling uses the same order over the whole spatial extent. The rule is the same in
1D, 2D and 3D and whatever kernels TensorFlow runs.

**Cost.** Computed op by op, the backward passes over the tensor many times (comparisons,
selections, transposes: 3-5x TensorFlow's own max-pooling gradient on C3D's pools, 20-150x on
I3D's overlapping ones). By default the backward is compiled by XLA into fused loops
(:func:`default_method`; ``benchmarks/bench_pooling.py`` compares the methods per shape).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import tensorflow as tf
from keras import ops

from analyzers.ops.pooling.argmax import max_pool_argmax

Tensor = tf.Tensor


def _spatial_axes(rank: int, data_format: str) -> list[int]:
    return list(range(1, rank - 1)) if data_format == "channels_last" else list(range(2, rank))


def _pad_same(x: Tensor, y: Tensor, axes: list[int], pool: Sequence[int],
              strides: Sequence[int]) -> Tensor:
    """Pad ``x`` with ``-inf`` as TensorFlow's ``same`` pooling does (extra at the end)."""
    n_in, n_out = tf.shape(x), tf.shape(y)
    paddings = [[0, 0] for _ in range(len(x.shape))]
    for axis, k, s in zip(axes, pool, strides):
        total = tf.maximum((n_out[axis] - 1) * s + k - n_in[axis], 0)
        paddings[axis] = [total // 2, total - total // 2]
    return tf.pad(x, tf.stack([tf.stack(p) for p in paddings]), constant_values=-float("inf"))


def _window_values(x_pad: Tensor, y: Tensor, axes: list[int], pool: Sequence[int],
                   strides: Sequence[int]) -> Tensor:
    """``[K, *y.shape]``: the value at every window offset (K = prod(pool)), row-major."""
    n_out = tf.shape(y)
    slices = []
    for offset in itertools.product(*(range(k) for k in pool)):
        index: list[slice] = [slice(None)] * len(x_pad.shape)
        for axis, start, s in zip(axes, offset, strides):
            index[axis] = slice(start, start + (n_out[axis] - 1) * s + 1, s)
        slices.append(x_pad[tuple(index)])
    return tf.stack(slices)


def first_winner_mask(values: Tensor, maximum: Tensor) -> Tensor:
    """Boolean mask over axis 0 of ``values`` marking the first entry equal to ``maximum``.

    Parameters
    ----------
    values
        ``[K, ...]`` candidates (window offsets along axis 0).
    maximum
        ``[...]`` the maximum over axis 0.
    """
    k = tf.shape(values)[0]
    order = tf.reshape(tf.range(k), tf.concat([[k], tf.ones([tf.rank(maximum)], tf.int32)], 0))
    hits = tf.where(tf.equal(values, maximum[None]), order, k)
    first = tf.reduce_min(hits, axis=0)
    return tf.equal(order, first[None])


def _sliced_first_winner_grad(x_in: Tensor, y: Tensor, g: Tensor, axes: list[int],
                              pool: Sequence[int], strides: Sequence[int],
                              padding: str) -> Tensor:
    """Gradient of any max pooling: one strided slice of ``x`` per window offset."""
    with tf.GradientTape() as tape:
        tape.watch(x_in)
        x_pad = _pad_same(x_in, y, axes, pool, strides) if padding == "same" else x_in
        values = _window_values(x_pad, y, axes, pool, strides)
    mask = first_winner_mask(tf.stop_gradient(values), y)
    routed = tf.where(mask, g[None], tf.zeros_like(g)[None])
    return tape.gradient(values, x_in, output_gradients=routed)


def _tiled_first_winner_grad(x_in: Tensor, y: Tensor, g: Tensor, axes: list[int],
                             pool: Sequence[int], padding: str) -> Tensor:
    """Gradient of non-overlapping pooling (strides == pool) without a slice per offset.

    ``x`` (padded with ``-inf`` for ``same``, cropped to whole windows for ``valid``) is
    reshaped so that every spatial axis ``n`` becomes ``(n // k, k)`` and the ``k`` axes are
    moved to the front: row ``i`` of the resulting ``[K, y.size]`` matrix holds window
    offset ``i`` in row-major order, the window order of the tie rule.
    """
    x_pad = _pad_same(x_in, y, axes, pool, pool) if padding == "same" else x_in
    n_out = tf.shape(y)
    tiled_shape, whole, offset_axes, outer_axes = [], [], [], []
    for axis in range(len(x_in.shape)):
        k = pool[axes.index(axis)] if axis in axes else 1
        outer_axes.append(len(tiled_shape))
        tiled_shape.append(n_out[axis])
        if axis in axes:
            offset_axes.append(len(tiled_shape))
            tiled_shape.append(k)
        whole.append(n_out[axis] * k)
    perm = offset_axes + outer_axes
    x_whole = tf.slice(x_pad, tf.zeros_like(n_out), tf.stack(whole))
    tiles = tf.transpose(tf.reshape(x_whole, tf.stack(tiled_shape)), perm)
    values = tf.reshape(tiles, tf.stack([-1, tf.size(y)]))
    mask = first_winner_mask(values, tf.reshape(y, [-1]))
    g_flat = tf.reshape(g, [1, -1])
    routed = tf.where(mask, g_flat, tf.zeros_like(g_flat))
    routed = tf.transpose(tf.reshape(routed, tf.shape(tiles)), tf.math.invert_permutation(perm))
    return _undo_pad_or_crop(tf.reshape(routed, tf.shape(x_whole)), x_in, x_pad, padding)


def _undo_pad_or_crop(routed: Tensor, x_in: Tensor, x_pad: Tensor, padding: str) -> Tensor:
    """Map a gradient on the whole windows back to ``x_in``'s shape."""
    n_in, n_routed = tf.shape(x_in), tf.shape(routed)
    if padding == "same":  # drop the -inf padding's rows (it never wins)
        before = (tf.shape(x_pad) - n_in) // 2
        return tf.slice(routed, before, n_in)
    paddings = tf.stack([tf.zeros_like(n_in), n_in - n_routed], axis=1)  # uncovered tail
    return tf.pad(routed, paddings)


def _pool_stage(x: Tensor, axes: list[int], stage_axes: list[int], pool: list[int],
                strides: list[int], padding: str, data_format: str, compiled: bool = False
                ) -> Tensor:
    """Max pooling over ``stage_axes`` only (window ``pool``, ``strides`` on those axes, 1 on
    the other spatial axes), with the first-winner gradient (``compiled``: by XLA)."""
    window = [pool[stage_axes.index(a)] if a in stage_axes else 1 for a in axes]
    steps = [strides[stage_axes.index(a)] if a in stage_axes else 1 for a in axes]

    @tf.custom_gradient
    def pooled(x_in: Tensor):
        y = ops.max_pool(x_in, window, strides=steps, padding=padding, data_format=data_format)

        def backward(g: Tensor) -> Tensor:
            if pool == strides:
                fn = functools.partial(_tiled_first_winner_grad, axes=stage_axes, pool=pool,
                                       padding=padding)
            else:
                fn = functools.partial(_sliced_first_winner_grad, axes=stage_axes, pool=pool,
                                       strides=strides, padding=padding)
            if compiled:  # a partial, not a closure: tf.function counts traces per code
                fn = tf.function(fn, jit_compile=True)  # object; one per layer is no retrace
            return fn(x_in, y, g)

        return y, backward

    return pooled(x)


#: The ways to compute the first-winner gradient (``benchmarks/bench_pooling.py`` times
#: them per pool shape): ``staged`` one TensorFlow stage per axis (slices or one reshape);
#: ``compiled`` the joint window by XLA (one reshape for ``strides == pool``, else one
#: strided slice per window offset, fused); ``staged_compiled`` the stages of ``staged``,
#: each stage's gradient by XLA; ``argmax`` TensorFlow's argmax pooling
#: (:mod:`analyzers.ops.pooling.argmax`).
METHODS = ("staged", "compiled", "staged_compiled", "argmax")


def default_method(pool_size: Sequence[int], strides: Sequence[int]) -> str:
    """The fastest exact method measured for this window (``benchmarks/results/pooling_*``):
    ``compiled`` for non-overlapping windows (one reshape), ``staged_compiled`` for
    overlapping ones (the joint window's 9 or 27 strided slices cost more than 3 + 3 + 3)."""
    pool, steps = [int(k) for k in pool_size], [int(s) for s in strides]
    return "compiled" if pool == steps else "staged_compiled"


def max_pool_first_winner(x: Tensor, pool_size: Sequence[int], strides: Sequence[int],
                          padding: str, data_format: str, method: str | None = None
                          ) -> Tensor:
    """``keras.ops.max_pool`` whose gradient goes to each window's first maximum only.

    ``method`` (default :func:`default_method`) is one of :data:`METHODS`; all give the
    same winners. ``staged``: non-overlapping windows (``strides == pool_size``, as in C3D)
    are one pool whose gradient reshapes (a handful of ops); overlapping windows are pooled
    one spatial axis at a time, the last axis first, each stage taking one strided slice per
    offset along its axis: every stage routes ties to the first maximum along its axis, so
    the composition picks the smallest offset on the first axis holding the maximum, then on
    the second, ...: the first maximum in row-major window order, as the joint window would.
    """
    axes = _spatial_axes(len(x.shape), data_format)
    pool, steps = [int(k) for k in pool_size], [int(s) for s in strides]
    method = method or default_method(pool, steps)
    if method not in METHODS:
        raise ValueError(f"unknown max-pooling method {method!r}; one of {METHODS}")
    if method == "argmax":
        return max_pool_argmax(x, pool, steps, padding, data_format)
    if pool == steps or method == "compiled":  # one stage: staged_compiled is compiled
        return _pool_stage(x, axes, axes, pool, steps, padding, data_format,
                           compiled=method in ("compiled", "staged_compiled"))
    if method == "staged_compiled":
        return _staged_compiled(x, axes, pool, steps, padding, data_format)
    return _staged(x, axes, pool, steps, padding, data_format)


def _staged(x: Tensor, axes: list[int], pool: list[int], strides: list[int], padding: str,
            data_format: str) -> Tensor:
    """The pool as one stage per spatial axis (the last first), each with its gradient."""
    y = x
    for axis, k, s in reversed(list(zip(axes, pool, strides))):
        if k != 1 or s != 1:
            y = _pool_stage(y, axes, [axis], [k], [s], padding, data_format)
    return y


def _staged_grad(x: Tensor, g: Tensor, axes: list[int], pool: list[int], strides: list[int],
                 padding: str, data_format: str) -> Tensor:
    """The input gradient of :func:`_staged` at ``x`` for output gradient ``g``."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = _staged(x, axes, pool, strides, padding, data_format)
    return tape.gradient(y, x, output_gradients=g)


def _staged_compiled(x: Tensor, axes: list[int], pool: list[int], strides: list[int],
                     padding: str, data_format: str) -> Tensor:
    """TensorFlow's joint pool forward; the backward recomputes the stages and routes
    through them in one XLA-compiled function (no pass of TensorFlow's per stage)."""

    @tf.custom_gradient
    def pooled(x_in: Tensor):
        y = ops.max_pool(x_in, pool, strides=strides, padding=padding, data_format=data_format)

        def backward(g: Tensor) -> Tensor:
            fn = functools.partial(_staged_grad, axes=axes, pool=pool, strides=strides,
                                   padding=padding, data_format=data_format)
            return tf.function(fn, jit_compile=True)(x_in, g)

        return y, backward

    return pooled(x)


def global_max_first_winner(x: Tensor, data_format: str, keepdims: bool) -> Tensor:
    """Global max pooling whose gradient goes to the first maximum (row-major order)."""
    axes = _spatial_axes(len(x.shape), data_format)

    @tf.custom_gradient
    def pooled(x_in: Tensor):
        y = tf.reduce_max(x_in, axis=axes, keepdims=True)

        def backward(g: Tensor) -> Tensor:
            # move the spatial axes to the front, flattened, in row-major order
            rest = [a for a in range(len(x_in.shape)) if a not in axes]
            perm = axes + rest
            flat = tf.reshape(tf.transpose(x_in, perm),
                              tf.concat([[-1], tf.gather(tf.shape(x_in), rest)], 0))
            top = tf.reshape(tf.transpose(y, perm), tf.shape(flat)[1:])
            mask = first_winner_mask(flat, top)
            g_full = tf.reshape(g, tf.shape(y))
            g_flat = tf.reshape(tf.transpose(g_full, perm), tf.shape(flat)[1:])
            routed = tf.where(mask, g_flat[None], tf.zeros_like(g_flat)[None])
            shaped = tf.reshape(routed, tf.gather(tf.shape(x_in), perm))
            return tf.transpose(shaped, tf.math.invert_permutation(perm))

        return (y if keepdims else tf.squeeze(y, axis=axes)), backward

    return pooled(x)
