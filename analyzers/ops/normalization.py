"""LayerNormalization and GroupNormalization as rules see them: with the mean and standard
deviation of the sample held constant, a diagonal affine layer; or, for LayerNormalization
under AttnLRP / CP-LRP, with the standard deviation alone held constant, so that the centring
``x - mean(x)`` stays a linear map that carries relevance (:class:`StdHeldLayerNormOp`)."""

from __future__ import annotations

import tensorflow as tf

from analyzers.ops.base import LayerOp, Tensor


class DiagonalOp(LayerOp):
    """``y = x * kernel + bias`` with per-element ``kernel`` and ``bias`` shaped like the
    input (batch included): a normalisation linearised at one input."""

    has_weights = True
    preserves_nonnegative = False

    def __init__(self, source: LayerOp, kernel: Tensor, bias: Tensor) -> None:
        super().__init__(source.layer, source.name)
        #: The normalisation op this linearises.
        self.source = source
        self._kernel = kernel
        self._bias = bias

    @property
    def kernel(self) -> Tensor:
        return self._kernel

    @property
    def bias(self) -> Tensor | None:
        return self._bias

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        z = xs[0] * kernel
        return z if bias is None else z + bias


class CentredOp(DiagonalOp):
    """``y = (x - mean(x)) * kernel + bias``, the mean over ``axes``, with per-element
    ``kernel`` and ``bias`` shaped like the input (batch included): LayerNormalization with
    its standard deviation held constant (AttnLRP's rule), linearised at one input."""

    def __init__(self, source: LayerOp, axes: list[int], kernel: Tensor,
                 bias: Tensor | None) -> None:
        super().__init__(source, kernel, bias)
        self.axes = axes

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        x = xs[0]
        return super().linear([x - tf.reduce_mean(x, axis=self.axes, keepdims=True)], kernel,
                              bias)


class _NormalizationOp(LayerOp):
    """Common part: ``y = (x - mean) / std * gamma + beta``; :meth:`at` holds ``mean`` and
    ``std`` constant and returns the :class:`DiagonalOp` with kernel ``gamma / std`` and
    bias ``beta - mean * gamma / std``."""

    has_weights = True
    preserves_nonnegative = False


    def _axes(self, x: Tensor) -> list[int]:
        axis = self.layer.axis
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        return [a % len(x.shape) for a in axes]

    def _param(self, name: str, x: Tensor, axes: list[int]) -> Tensor | None:
        if not getattr(self.layer, {"gamma": "scale", "beta": "center"}[name]):
            return None
        v = tf.convert_to_tensor(getattr(self.layer, name))
        shape = [x.shape[a] if a in axes else 1 for a in range(len(x.shape))]
        return tf.reshape(v, shape)

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def at(self, xs: list[Tensor]) -> DiagonalOp:
        x = xs[0]
        axes = self._axes(x)
        mean, inv = self._stats(x)
        kernel = self._scale(x, axes, inv)
        bias = -mean * kernel
        beta = self._param("beta", x, axes)
        if beta is not None:
            bias = bias + beta
        return DiagonalOp(self, tf.stop_gradient(kernel), tf.stop_gradient(bias))

    def _scale(self, x: Tensor, axes: list[int], inv: Tensor) -> Tensor:
        """The per-element factor ``gamma / std`` (``1 / std`` without ``gamma``)."""
        kernel = tf.broadcast_to(inv, tf.shape(x))
        gamma = self._param("gamma", x, axes)
        return kernel if gamma is None else kernel * gamma

    @property
    def kernel(self) -> Tensor:
        raise TypeError(f"'{self.name}' is linear only at given inputs: use op.at(xs)")

    def preactivation(self, xs: list[Tensor]) -> Tensor:
        return self.layer(xs[0])


class LayerNormOp(_NormalizationOp):
    """``LayerNormalization`` (any axes; not ``rms_scaling``)."""

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, var = tf.nn.moments(x, self._axes(x), keepdims=True)
        return mean, tf.math.rsqrt(var + self.layer.epsilon)


class GroupNormOp(_NormalizationOp):
    """``GroupNormalization`` (statistics per sample and channel group)."""

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        layer = self.layer
        axis = self._axes(x)[0]
        groups = int(layer.groups)
        c = int(x.shape[axis])
        shape = tf.concat([tf.shape(x)[:axis], [groups, c // groups],
                           tf.shape(x)[axis + 1:]], axis=0)
        g = tf.reshape(x, shape)
        reduce = [a for a in range(1, len(x.shape) + 1) if a != axis]
        mean, var = tf.nn.moments(g, reduce, keepdims=True)
        inv = tf.math.rsqrt(var + layer.epsilon)
        full = tf.shape(g)
        back = tf.shape(x)
        return (tf.reshape(tf.broadcast_to(mean, full), back),
                tf.reshape(tf.broadcast_to(inv, full), back))


class StdHeldLayerNormOp(LayerNormOp):
    """``LayerNormalization`` with only its standard deviation held constant: :meth:`at`
    returns the :class:`CentredOp` with kernel ``gamma / std`` (held) and bias ``beta``, so
    the rules decompose the centring too (AttnLRP; the canonizer
    :class:`~analyzers.canonizers.CentredLayerNorm` puts it in place of a LayerNormOp)."""

    def at(self, xs: list[Tensor]) -> CentredOp:
        x = xs[0]
        axes = self._axes(x)
        _, inv = self._stats(x)
        kernel = self._scale(x, axes, inv)
        return CentredOp(self, axes, tf.stop_gradient(kernel), self._param("beta", x, axes))
