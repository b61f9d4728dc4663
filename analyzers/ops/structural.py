"""Layer ops that move, copy, merge or pass values without weights: identity-like layers,
activation layers, a softmax inside the model, shape layers, Add / Average / Concatenate,
TimeDistributed, and the folding of frames into the batch for a TimeDistributed around a
nested model."""

from __future__ import annotations

import copy
from typing import Any

import tensorflow as tf
from keras import ops

from analyzers.ops.activations import resolve_activation
from analyzers.ops.base import LayerOp, Tensor
from analyzers.rules import GradientRule


class IdentityOp(LayerOp):
    """Layers that are the identity at inference: InputLayer, Dropout, SpatialDropout*,
    GaussianNoise, GaussianDropout, AlphaDropout, ActivityRegularization."""


class ActivationOp(LayerOp):
    """``Activation``, ``ReLU``, ``LeakyReLU``, ``ELU`` and ``Softmax`` layers: identity
    preactivation followed by the activation (relevance passes through).

    ``fn`` overrides the function of ``activation`` (e.g. a ReLU layer's own call with
    its ``max_value`` / ``negative_slope``)."""

    def __init__(self, layer: Any, activation: Any, name: str | None = None,
                 fn: Any = None) -> None:
        super().__init__(layer, name)
        self.activation_name, self.activation = resolve_activation(activation)
        if fn is not None:
            self.activation = fn


class SoftmaxOp(LayerOp):
    """A softmax that is not the model's output: a ``Softmax`` layer (any ``axis``), an
    ``Activation("softmax")``, or the ``softmax`` activation of a kernel layer (then a step of
    its own after the layer). Only AttnLRP's softmax rule explains it
    (:class:`~analyzers.rules.SoftmaxRule`; the analyzers ``attnlrp`` and ``cp_lrp``)."""

    preserves_nonnegative = False

    def __init__(self, layer: Any, axis: int | tuple[int, ...] = -1,
                 name: str | None = None) -> None:
        super().__init__(layer, name)
        self.axis = axis

    @property
    def output_nonnegative(self) -> bool:
        return True

    def preactivation(self, xs: list[Tensor]) -> Tensor:
        return ops.softmax(xs[0], axis=self.axis)

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        raise TypeError(f"softmax '{self.name}' is not linear; its rule is SoftmaxRule")


class LayerCallOp(LayerOp):
    """Weightless linear layers computed by the layer itself: Flatten, Reshape, Permute,
    ZeroPadding*, Cropping*, UpSampling*."""

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        return self.layer.call(xs[0])


class AddOp(LayerOp):
    """``Add`` (and ``Average``, scaled by 1/n): a sum whose weights are all positive (inputs
    broadcast against each other, as in Keras: a position table ``[1, n, d]`` added to tokens
    ``[batch, n, d]``)."""

    mixes_inputs = True

    def __init__(self, layer: Any, mean: bool = False, name: str | None = None) -> None:
        super().__init__(layer, name)
        self.mean = mean

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        z = xs[0]
        for x in xs[1:]:  # broadcasting, as Keras's Add does (tf.add_n would not)
            z = z + x
        return z / float(len(xs)) if self.mean else z


class ConcatenateOp(LayerOp):
    """``Concatenate`` along the layer's axis."""

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        return tf.concat(xs, axis=self.layer.axis)


class TimeDistributedOp(LayerOp):
    """``TimeDistributed(inner)``: the inner op applied to ``[batch * time, ...]``.

    Rules see the inner layer (``op.layer`` is the inner Keras layer), so a
    ``TimeDistributed(Conv2D)`` gets the same rule as a ``Conv2D``; every property of the
    op (flags, weights, activation, default rule) is the inner op's, with channel axes
    counted from the front shifted by the time axis. A ``TimeDistributed`` around a nested
    model becomes one such op per step of that model (``name``: the step's own name), each
    input folded to ``[batch * time, ...]``.
    """

    def __init__(self, layer: Any, inner: LayerOp, name: str | None = None) -> None:
        super().__init__(inner.layer, name or layer.name)
        self.wrapper = layer
        self.inner = inner

    def __getattr__(self, name: str) -> Any:  # anything not defined here: the inner op's
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @staticmethod
    def _shift(axis: int | None) -> int | None:
        return None if axis is None else (axis if axis < 0 else axis + 1)

    has_weights = property(lambda self: self.inner.has_weights)
    mixes_inputs = property(lambda self: self.inner.mixes_inputs)
    preserves_nonnegative = property(lambda self: self.inner.preserves_nonnegative)
    kernel_input_axis = property(lambda self: self.inner.kernel_input_axis)
    output_axis = property(lambda self: getattr(self.inner, "output_axis", -1))
    input_channel_axis = property(lambda self: self._shift(self.inner.input_channel_axis))
    output_channel_axis = property(lambda self: self._shift(self.inner.output_channel_axis))
    activation_name = property(lambda self: self.inner.activation_name,
                               lambda self, v: None)
    activation = property(lambda self: self.inner.activation, lambda self, v: None)
    support = property(lambda self: self.inner.support, lambda self, v: None)
    output_nonnegative = property(lambda self: self.inner.output_nonnegative)
    kernel = property(lambda self: self.inner.kernel)
    bias = property(lambda self: self.inner.bias)

    def standard_rule(self, max_pooling: str) -> Any:
        return self.inner.standard_rule(max_pooling)

    def without_activation(self) -> TimeDistributedOp:
        op = copy.copy(self)
        op.inner = self.inner.without_activation()
        return op

    def at(self, xs: list[Tensor]) -> LayerOp:
        inner_at = self.inner.at([self._flatten(x) for x in xs])
        if inner_at is self.inner:
            return self
        op = copy.copy(self)
        op.inner = inner_at
        return op

    @staticmethod
    def _flatten(x: Tensor) -> Tensor:
        flat = tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], axis=0))
        flat.set_shape([None] + list(x.shape[2:]))
        return flat

    def _wrap(self, fn: Any, xs: list[Tensor]) -> Tensor:
        x = xs[0]
        lead = tf.shape(x)[:2]
        y = fn([self._flatten(t) for t in xs])
        out = tf.reshape(y, tf.concat([lead, tf.shape(y)[1:]], axis=0))
        out.set_shape(list(x.shape[:2]) + list(y.shape[1:]))
        return out

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        return self._wrap(lambda f: self.inner.linear(f, kernel, bias), xs)

    def preactivation(self, xs: list[Tensor]) -> Tensor:
        return self._wrap(self.inner.preactivation, xs)


class FoldTimeOp(LayerOp):
    """``[batch, time, ...] -> [batch * time, ...]``: the frames of a ``TimeDistributed``
    around a nested model folded into the batch, so that the model's own steps run on them
    (relevance passes by the Jacobian, exactly)."""

    def __init__(self, layer: Any) -> None:
        super().__init__(layer, f"{layer.name}/fold")

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        return TimeDistributedOp._flatten(xs[0])

    def standard_rule(self, max_pooling: str) -> Any:
        return GradientRule()


class UnfoldTimeOp(LayerOp):
    """``[batch * time, ...] -> [batch, time, ...]`` after a folded nested model. Its inputs
    are the folded output and the wrapper's input ``[batch, time, ...]``, read for its number
    of frames only (so it gets no relevance: an unconnected input gets zeros)."""

    def __init__(self, layer: Any) -> None:
        super().__init__(layer, f"{layer.name}/unfold")

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        y, wrapped = xs
        frames = wrapped.shape[1] if wrapped.shape[1] is not None else tf.shape(wrapped)[1]
        out = tf.reshape(y, tf.concat([[-1, frames], tf.shape(y)[1:]], axis=0))
        out.set_shape([None, wrapped.shape[1]] + list(y.shape[1:]))
        return out

    def standard_rule(self, max_pooling: str) -> Any:
        return GradientRule()
