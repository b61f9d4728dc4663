"""Layer ops that move, copy, merge or pass values without weights: identity-like layers,
activation layers, shape layers, Add / Average / Concatenate, and TimeDistributed."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from analyzers.ops.activations import resolve_activation
from analyzers.ops.base import LayerOp, Tensor


class IdentityOp(LayerOp):
    """Layers that are the identity at inference: InputLayer, Dropout, SpatialDropout*,
    GaussianNoise, GaussianDropout, AlphaDropout, ActivityRegularization."""


class ActivationOp(LayerOp):
    """``Activation``, ``ReLU`` (default arguments only) and ``Softmax`` layers: identity
    preactivation followed by the activation (relevance passes through)."""

    def __init__(self, layer: Any, activation: Any, name: str | None = None) -> None:
        super().__init__(layer, name)
        self.activation = resolve_activation(activation)


class LayerCallOp(LayerOp):
    """Weightless linear layers computed by the layer itself: Flatten, Reshape, Permute,
    ZeroPadding*, Cropping*, UpSampling*."""

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        return self.layer.call(xs[0])


class AddOp(LayerOp):
    """``Add`` (and ``Average``, scaled by 1/n): a sum whose weights are all positive."""

    mixes_inputs = True

    def __init__(self, layer: Any, mean: bool = False, name: str | None = None) -> None:
        super().__init__(layer, name)
        self.mean = mean

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        z = tf.add_n(xs)
        return z / float(len(xs)) if self.mean else z


class ConcatenateOp(LayerOp):
    """``Concatenate`` along the layer's axis."""

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        return tf.concat(xs, axis=self.layer.axis)


class TimeDistributedOp(LayerOp):
    """``TimeDistributed(inner)``: the inner op applied to ``[batch * time, ...]``.

    Rules see the inner layer (``op.layer`` is the inner Keras layer), so a
    ``TimeDistributed(Conv2D)`` gets the same rule as a ``Conv2D``.
    """

    def __init__(self, layer: Any, inner: LayerOp) -> None:
        super().__init__(inner.layer, layer.name)
        self.wrapper = layer
        self.inner = inner
        self.activation = inner.activation
        self.has_weights = inner.has_weights
        self.mixes_inputs = inner.mixes_inputs
        self.preserves_nonnegative = inner.preserves_nonnegative
        self.kernel_input_axis = inner.kernel_input_axis
        axis = inner.input_channel_axis
        self.input_channel_axis = None if axis is None else (axis if axis < 0 else axis + 1)
        axis = inner.output_channel_axis
        self.output_channel_axis = None if axis is None else (axis if axis < 0 else axis + 1)
        self.output_axis = getattr(inner, "output_axis", -1)

    @property
    def kernel(self) -> Tensor | None:
        return self.inner.kernel

    @property
    def bias(self) -> Tensor | None:
        return self.inner.bias

    def _wrap(self, fn: Any, xs: list[Tensor]) -> Tensor:
        x = xs[0]
        lead = tf.shape(x)[:2]
        flat = tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], axis=0))
        flat.set_shape([None] + list(x.shape[2:]))
        y = fn([flat])
        out = tf.reshape(y, tf.concat([lead, tf.shape(y)[1:]], axis=0))
        out.set_shape(list(x.shape[:2]) + list(y.shape[1:]))
        return out

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        return self._wrap(lambda f: self.inner.linear(f, kernel, bias), xs)

    def preactivation(self, xs: list[Tensor]) -> Tensor:
        return self._wrap(self.inner.preactivation, xs)

    @property
    def output_nonnegative(self) -> bool:
        return self.inner.output_nonnegative
