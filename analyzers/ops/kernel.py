"""Layer ops with a weight kernel: Dense, Conv1D/2D/3D, Conv1D/2D/3DTranspose, and the
affine forms of BatchNormalization (folded into a kernel layer, or standalone)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from keras import ops

from analyzers.ops.activations import resolve_activation
from analyzers.ops.base import LayerOp, Tensor


def _bias_shape(rank: int, channels_last: bool, n: int) -> tuple[int, ...]:
    if channels_last:
        return (1,) * (rank + 1) + (n,)
    return (1, n) + (1,) * rank


class KernelOp(LayerOp):
    """Common part of layers with ``kernel`` and optional ``bias``."""

    has_weights = True
    mixes_inputs = True
    preserves_nonnegative = False

    def __init__(self, layer: Any, name: str | None = None) -> None:
        super().__init__(layer, name)
        self.activation = resolve_activation(layer.activation)
        self.kernel_override: Tensor | None = None
        self.bias_override: Tensor | None = None

    @property
    def kernel(self) -> Tensor:
        if self.kernel_override is not None:
            return self.kernel_override()
        return tf.convert_to_tensor(self.layer.kernel)

    @property
    def bias(self) -> Tensor | None:
        if self.bias_override is not None:
            return self.bias_override()
        if getattr(self.layer, "use_bias", False):
            return tf.convert_to_tensor(self.layer.bias)
        return None

    #: Axis of the kernel that indexes output channels.
    output_axis: int = -1

    def _add_bias(self, z: Tensor, bias: Tensor | None) -> Tensor:
        return z if bias is None else z + bias


class DenseOp(KernelOp):
    """``keras.layers.Dense`` (acts on the last axis)."""

    input_channel_axis = -1
    kernel_input_axis = 0
    output_channel_axis = -1

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        return self._add_bias(ops.matmul(xs[0], kernel), bias)


class _SpatialKernelOp(KernelOp):
    """Common part of convolutions: channel axes from ``data_format``, per-channel bias."""

    def __init__(self, layer: Any, name: str | None = None) -> None:
        super().__init__(layer, name)
        self.input_channel_axis = -1 if layer.data_format == "channels_last" else 1
        self.output_channel_axis = self.input_channel_axis

    def _add_channel_bias(self, z: Tensor, bias: Tensor | None) -> Tensor:
        if bias is None:
            return z
        layer = self.layer
        return z + tf.reshape(bias, _bias_shape(layer.rank, layer.data_format == "channels_last",
                                                -1))


class ConvOp(_SpatialKernelOp):
    """``keras.layers.Conv1D/2D/3D`` (any strides, dilations, padding incl. causal)."""

    kernel_input_axis = -2

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        layer = self.layer
        x = xs[0]
        padding = layer.padding
        if padding == "causal":
            x = ops.pad(x, layer._compute_causal_padding())
            padding = "valid"
        z = ops.conv(x, kernel, strides=list(layer.strides), padding=padding,
                     dilation_rate=layer.dilation_rate, data_format=layer.data_format)
        return self._add_channel_bias(z, bias)


class ConvTransposeOp(_SpatialKernelOp):
    """``keras.layers.Conv1D/2D/3DTranspose``."""

    output_axis = -2
    kernel_input_axis = -1

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        layer = self.layer
        z = ops.conv_transpose(xs[0], kernel, strides=list(layer.strides),
                               padding=layer.padding, output_padding=layer.output_padding,
                               dilation_rate=layer.dilation_rate,
                               data_format=layer.data_format)
        return self._add_channel_bias(z, bias)


def batch_norm_affine(bn: Any) -> tuple[Tensor, Tensor]:
    """Inference-time ``(scale, shift)`` of a BatchNormalization layer:
    ``bn(x) = x * scale + shift`` along ``bn.axis``."""
    var = tf.convert_to_tensor(bn.moving_variance)
    scale = tf.math.rsqrt(var + bn.epsilon)
    if bn.scale:
        scale = scale * tf.convert_to_tensor(bn.gamma)
    shift = -tf.convert_to_tensor(bn.moving_mean) * scale
    if bn.center:
        shift = shift + tf.convert_to_tensor(bn.beta)
    return scale, shift


class AffineOp(LayerOp):
    """A BatchNormalization that could not be folded, as the elementwise affine map
    ``y = x * scale + shift`` (the scale acts as a diagonal kernel, the shift as bias)."""

    has_weights = True
    mixes_inputs = False
    preserves_nonnegative = False

    def _broadcast(self, v: Tensor, x: Tensor) -> Tensor:
        axis = self.layer.axis
        axis = axis[0] if isinstance(axis, (list, tuple)) else axis
        rank = len(x.shape)
        axis = axis % rank
        shape = [1] * rank
        shape[axis] = -1
        return tf.reshape(v, shape)

    @property
    def kernel(self) -> Tensor:
        return batch_norm_affine(self.layer)[0]

    @property
    def bias(self) -> Tensor:
        return batch_norm_affine(self.layer)[1]

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        x = xs[0]
        z = x * self._broadcast(kernel, x)
        return z if bias is None else z + self._broadcast(bias, x)
