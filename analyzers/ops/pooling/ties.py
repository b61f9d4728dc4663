"""Max pooling with TensorFlow's gradient at tied maxima, computed here.

Where several inputs of a max-pooling window hold its maximum, TensorFlow 2.14's CPU (Eigen)
kernels, and so iNNvestigate 2.1.2, route the window's gradient by the kind of pooling:

* ``"every"``: ``max_pool3d`` (its ``MaxPool3DGrad``) gives the window's full gradient to
  every input within :data:`EVERY_TOLERANCE` (absolute, 1e-5) of the window's maximum: each
  tied input, and a near-maximum too (an all-zero 2x2x2 window passes it on 8 times; in a
  window holding 0.719383 and 0.719379 both get it);
* ``"first"``: ``max_pool1d`` / ``max_pool2d`` (``MaxPoolGrad``) give it to the first
  maximum in row-major window order, the tie rule of :mod:`analyzers.ops.pooling.winner`;
* ``"split"``: global max pooling (``reduce_max``) gives each tied input an equal share.

The iNNvestigate cross-check stores TensorFlow 2.14's own gradients at tied maxima
(``references/pool_ties.npz``); these functions give them exactly. The forward max is
TensorFlow's, the gradients are defined here, so they do not depend on the kernel set
(oneDNN's max-pooling gradient routes ties its own way). ``compat="innvestigate"`` uses them
(:class:`analyzers.canonizers.TensorFlowTies` in a layer graph; :func:`swap_max_pooling` in a
Keras model that is no layer graph of ours).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from analyzers.ops.pooling.winner import max_pool_first_winner

logger = logging.getLogger(__name__)

Tensor = tf.Tensor

#: The tie rules (see the module docstring).
TIE_RULES = ("first", "every", "split")

#: ``"every"``: an input ``x`` of a window with maximum ``m`` gets the window's gradient where
#: ``|x - m| < EVERY_TOLERANCE`` (in the input's dtype), as TensorFlow's ``MaxPool3DGrad``.
EVERY_TOLERANCE = 1e-5


def tensorflow_tie_rule(rank: int, is_global: bool) -> str:
    """TensorFlow 2.14's tie rule for max pooling of ``rank`` spatial axes (1, 2 or 3), or
    for global max pooling of any rank."""
    if is_global:
        return "split"
    return "every" if rank == 3 else "first"


def _spatial_axes(rank: int, data_format: str) -> list[int]:
    return list(range(1, rank - 1)) if data_format == "channels_last" else list(range(2, rank))


def _windows(x: Tensor, y: Tensor, axes: list[int], pool: Sequence[int],
             strides: Sequence[int], padding: str) -> Tensor:
    """``[K, *y.shape]``: the input at every offset of every window (K = prod(pool)), with
    ``same`` padding as ``-inf`` (extra at the end, as TensorFlow pads)."""
    n_in, n_out = tf.shape(x), tf.shape(y)
    if padding == "same":
        paddings = [[0, 0] for _ in range(len(x.shape))]
        for axis, k, s in zip(axes, pool, strides):
            total = tf.maximum((n_out[axis] - 1) * s + k - n_in[axis], 0)
            paddings[axis] = [total // 2, total - total // 2]
        x = tf.pad(x, tf.stack([tf.stack(p) for p in paddings]),
                   constant_values=-float("inf"))
    slices = []
    for offset in itertools.product(*(range(k) for k in pool)):
        index: list[slice] = [slice(None)] * len(x.shape)
        for axis, start, s in zip(axes, offset, strides):
            index[axis] = slice(start, start + (n_out[axis] - 1) * s + 1, s)
        slices.append(x[tuple(index)])
    return tf.stack(slices)


def max_pool_every_max(x: Tensor, pool_size: Sequence[int], strides: Sequence[int],
                       padding: str, data_format: str) -> Tensor:
    """``keras.ops.max_pool`` whose gradient goes in full to every input within
    :data:`EVERY_TOLERANCE` of its window's maximum (TensorFlow's ``max_pool3d`` gradient,
    for any rank)."""
    axes = _spatial_axes(len(x.shape), data_format)
    pool, steps = [int(k) for k in pool_size], [int(s) for s in strides]

    @tf.custom_gradient
    def pooled(x_in: Tensor):
        y = ops.max_pool(x_in, pool, strides=steps, padding=padding, data_format=data_format)

        def backward(g: Tensor) -> Tensor:
            with tf.GradientTape() as tape:
                tape.watch(x_in)
                windows = _windows(x_in, y, axes, pool, steps, padding)
            tied = tf.abs(tf.stop_gradient(windows) - y[None]) < EVERY_TOLERANCE
            routed = tf.where(tied, g[None], tf.zeros_like(windows))
            return tape.gradient(windows, x_in, output_gradients=routed)

        return y, backward

    return pooled(x)


def global_max_split(x: Tensor, data_format: str, keepdims: bool) -> Tensor:
    """Global max pooling whose gradient is split evenly over the tied maxima (TensorFlow's
    ``reduce_max`` gradient)."""
    axes = _spatial_axes(len(x.shape), data_format)

    @tf.custom_gradient
    def pooled(x_in: Tensor):
        y = tf.reduce_max(x_in, axis=axes, keepdims=True)

        def backward(g: Tensor) -> Tensor:
            tied = tf.cast(tf.equal(x_in, y), x_in.dtype)
            share = tied / tf.reduce_sum(tied, axis=axes, keepdims=True)
            return share * tf.reshape(g, tf.shape(y))

        return (y if keepdims else tf.squeeze(y, axis=axes)), backward

    return pooled(x)


_MAX_POOLING = tuple(getattr(keras.layers, f"{kind}MaxPooling{rank}D")
                     for kind in ("", "Global") for rank in (1, 2, 3))


class _TensorFlowTiesPooling(keras.layers.Layer):
    """A max-pooling layer computed with TensorFlow 2.14's tie rule (its stand-in in a cloned
    model)."""

    def __init__(self, pooling: Any, **kwargs: Any) -> None:
        super().__init__(name=f"{pooling.name}_tensorflow_ties", **kwargs)
        self.pooling = pooling

    def call(self, x: Tensor) -> Tensor:
        layer = self.pooling
        if not hasattr(layer, "pool_size"):  # global max pooling
            return global_max_split(x, layer.data_format, layer.keepdims)
        every = tensorflow_tie_rule(len(layer.pool_size), is_global=False) == "every"
        pool = max_pool_every_max if every else max_pool_first_winner
        return pool(x, layer.pool_size, layer.strides, layer.padding, layer.data_format)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.pooling.compute_output_shape(input_shape)


def _has_max_pooling(model: Any) -> bool:
    return any(isinstance(layer, _MAX_POOLING) or _has_max_pooling(layer)
               for layer in getattr(model, "layers", []))


def _swap(layer: Any) -> Any:
    return _TensorFlowTiesPooling(layer) if isinstance(layer, _MAX_POOLING) else layer


def swap_max_pooling(model: Any) -> Any:
    """``model`` with each max-pooling layer computed with TensorFlow 2.14's tie rule, every
    other layer shared (weights included). A model Keras cannot clone (a subclassed one) is
    returned as it is: its max pooling keeps TensorFlow's own gradient, whose ties depend
    on the kernel set."""
    if not _has_max_pooling(model):
        return model
    try:
        return keras.models.clone_model(model, clone_function=_swap, recursive=True)
    except (TypeError, ValueError, NotImplementedError) as err:
        logger.warning("'%s' cannot be cloned (%s): its max pooling keeps TensorFlow's own "
                       "gradient at tied maxima", model.name, err)
        return model


__all__ = ["EVERY_TOLERANCE", "TIE_RULES", "global_max_split", "max_pool_every_max",
           "swap_max_pooling", "tensorflow_tie_rule"]
