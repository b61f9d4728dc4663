"""Layer ops with a weight kernel: Dense, EinsumDense, Conv1D/2D/3D (grouped too),
DepthwiseConv1D/2D, the two steps of SeparableConv1D/2D, Conv1D/2D/3DTranspose, and the affine
form of a BatchNormalization that could not be folded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf
from keras import ops

from analyzers.ops.activations import resolve_activation
from analyzers.ops.base import LayerOp, Tensor
from analyzers.ops.convolution import grouped as grouped_conv
from analyzers.ops.convolution import vjp as conv_vjp


def _bias_shape(rank: int, channels_last: bool, n: int) -> tuple[int, ...]:
    if channels_last:
        return (1,) * (rank + 1) + (n,)
    return (1, n) + (1,) * rank


def _along(v: Tensor, rank: int, axis: int) -> Tensor:
    """``v`` reshaped to broadcast along ``axis`` of a rank-``rank`` tensor."""
    shape = [1] * rank
    shape[axis % rank] = -1
    return tf.reshape(v, shape)


class KernelOp(LayerOp):
    """Common part of layers with a kernel and an optional bias.

    Parameters
    ----------
    layer
        The Keras layer.
    name
        Name in messages (default: the layer's).
    kernel_attr, bias_attr
        The layer's variables used as kernel and bias (``bias_attr=None``: no bias).
    activation
        The activation (default: the layer's).
    """

    has_weights = True
    mixes_inputs = True
    preserves_nonnegative = False
    #: Axis of the kernel that indexes output channels.
    output_axis: int = -1

    def __init__(self, layer: Any, name: str | None = None, kernel_attr: str = "kernel",
                 bias_attr: str | None = "bias", activation: Any = "layer") -> None:
        super().__init__(layer, name)
        act = getattr(layer, "activation", None) if activation == "layer" else activation
        self.activation_name, self.activation = resolve_activation(act)
        self.kernel_attr = kernel_attr
        self.bias_attr = bias_attr if getattr(layer, "use_bias", False) else None
        #: Callables that give the kernel / bias instead of the layer's (BatchNorm folding).
        self.kernel_override: Callable[[], Tensor] | None = None
        self.bias_override: Callable[[], Tensor] | None = None


    @property
    def kernel(self) -> Tensor:
        if self.kernel_override is not None:
            return self.kernel_override()
        return tf.convert_to_tensor(getattr(self.layer, self.kernel_attr))

    @property
    def bias(self) -> Tensor | None:
        if self.bias_override is not None:
            return self.bias_override()
        if self.bias_attr is not None:
            return tf.convert_to_tensor(getattr(self.layer, self.bias_attr))
        return None

    def scale_outputs(self, kernel: Tensor, scale: Tensor) -> Tensor:
        """The kernel with output channel ``c`` multiplied by ``scale[c]``."""
        return kernel * _along(scale, len(kernel.shape), self.output_axis)

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


class EinsumDenseOp(KernelOp):
    """``keras.layers.EinsumDense``: ``einsum(equation, x, kernel) + bias`` (any equation,
    ``bias_axes`` or none; the LoRA-adapted kernel where LoRA is on). Its axes are given by
    the equation, so the rules' stacked fast paths are off (plain formulas)."""

    def __init__(self, layer: Any, name: str | None = None) -> None:
        super().__init__(layer, name)
        self.bias_attr = "bias" if getattr(layer, "bias", None) is not None else None

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        return self._add_bias(ops.einsum(self.layer.equation, xs[0], kernel), bias)


class _SpatialKernelOp(KernelOp):
    """Common part of convolutions: geometry, channel axes from ``data_format``, bias."""

    def __init__(self, layer: Any, name: str | None = None, pointwise: bool = False,
                 **kw: Any) -> None:
        super().__init__(layer, name, **kw)
        self.rank = int(layer.rank)
        self.data_format = layer.data_format
        one = (1,) * self.rank
        self.strides = one if pointwise else tuple(layer.strides)
        self.padding = "valid" if pointwise else layer.padding
        self.dilation_rate = one if pointwise else tuple(layer.dilation_rate)
        self.input_channel_axis = -1 if layer.data_format == "channels_last" else 1
        self.output_channel_axis = self.input_channel_axis

    def _add_channel_bias(self, z: Tensor, bias: Tensor | None) -> Tensor:
        if bias is None:
            return z
        return z + tf.reshape(bias, _bias_shape(self.rank, self.data_format == "channels_last",
                                                -1))

    def _causal(self, x: Tensor, kernel: Tensor) -> tuple[Tensor, str]:
        if self.padding != "causal":
            return x, self.padding
        k = int(kernel.shape[0])
        left = self.dilation_rate[0] * (k - 1)
        pad = [[0, 0], [left, 0], [0, 0]] if self.data_format == "channels_last" else \
            [[0, 0], [0, 0], [left, 0]]
        return ops.pad(x, pad), "valid"


class ConvOp(_SpatialKernelOp):
    """``keras.layers.Conv1D/2D/3D`` (any strides, dilations, padding incl. causal, groups).

    A grouped convolution is the dense convolution with a block-diagonal kernel; it has
    no single input-channel sum, so the stacked fast paths of the rules are switched off.
    A channelwise 3D one (``groups == in_channels``, X3D) runs as depthwise 2D convolutions
    per temporal tap (:mod:`analyzers.ops.convolution.grouped`; TensorFlow's grouped ``Conv3D`` is
    slow on the CPU).
    """

    kernel_input_axis = -2

    def __init__(self, layer: Any, name: str | None = None, **kw: Any) -> None:
        super().__init__(layer, name, **kw)
        self.groups = int(getattr(layer, "groups", 1) or 1) if self.kernel_attr == "kernel" \
            else 1
        if self.groups != 1:
            self.input_channel_axis = None
            self.output_channel_axis = None

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        x, padding = self._causal(xs[0], kernel)
        if grouped_conv.supports(tuple(x.shape), self.groups, self.data_format, self.strides,
                                 self.dilation_rate):
            z = grouped_conv.channelwise_conv3d(x, kernel, self.strides, padding,
                                                self.dilation_rate)
        elif (conv_vjp.supports(self.rank, self.strides, padding, self.data_format, self.groups)
                and conv_vjp.forward_vjp_enabled()):
            z = conv_vjp.conv_forward_vjp(x, kernel, padding, self.dilation_rate)
        elif (conv_vjp.supports_patches(self.rank, kernel.shape[:self.rank], self.strides,
                                        padding, self.dilation_rate, self.data_format,
                                        self.groups) and conv_vjp.forward_vjp_enabled()):
            z = conv_vjp.patch_conv(x, kernel)
        else:
            z = ops.conv(x, kernel, strides=list(self.strides), padding=padding,
                         dilation_rate=self.dilation_rate, data_format=self.data_format)
        return self._add_channel_bias(z, bias)


class DepthwiseConvOp(_SpatialKernelOp):
    """``DepthwiseConv1D/2D`` and the depthwise step of ``SeparableConv1D/2D``: kernel
    ``[*k, channels, multiplier]``, output channel ``c * multiplier + m`` (the dense
    convolution with a block-diagonal kernel)."""

    def __init__(self, layer: Any, name: str | None = None, **kw: Any) -> None:
        super().__init__(layer, name, **kw)
        self.input_channel_axis = None
        self.output_channel_axis = None

    def scale_outputs(self, kernel: Tensor, scale: Tensor) -> Tensor:
        shape = [1] * (len(kernel.shape) - 2) + list(kernel.shape[-2:])
        return kernel * tf.reshape(scale, shape)

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        x, padding = self._causal(xs[0], kernel)
        z = ops.depthwise_conv(x, kernel, strides=tuple(self.strides), padding=padding,
                               dilation_rate=self.dilation_rate,
                               data_format=self.data_format)
        return self._add_channel_bias(z, bias)


def separable_ops(layer: Any) -> list[LayerOp]:
    """``SeparableConv1D/2D`` as two steps: the depthwise convolution (no bias, linear),
    then the pointwise (1x1) convolution with the layer's bias and activation."""
    depthwise = DepthwiseConvOp(layer, f"{layer.name}/depthwise",
                                kernel_attr="depthwise_kernel", bias_attr=None,
                                activation=None)
    pointwise = ConvOp(layer, f"{layer.name}/pointwise", pointwise=True,
                       kernel_attr="pointwise_kernel")
    return [depthwise, pointwise]


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
    ``y = x * scale + shift`` (the scale acts as a diagonal kernel, the shift as bias).

    ``decomposed`` (default: :func:`batch_norm_affine`) gives the ``(scale, shift)`` that
    rules see as kernel and bias; the layer's output is always the true one.
    """

    has_weights = True
    mixes_inputs = False
    preserves_nonnegative = False
    #: ``layer -> (scale, shift)`` that rules decompose.
    decomposed: Callable[[Any], tuple[Tensor, Tensor]] = staticmethod(batch_norm_affine)

    def _broadcast(self, v: Tensor, x: Tensor) -> Tensor:
        axis = self.layer.axis
        axis = axis[0] if isinstance(axis, (list, tuple)) else axis
        return _along(v, len(x.shape), axis)

    @property
    def kernel(self) -> Tensor:
        return self.decomposed(self.layer)[0]

    @property
    def bias(self) -> Tensor:
        return self.decomposed(self.layer)[1]

    def preactivation(self, xs: list[Tensor]) -> Tensor:
        return self.linear(xs, *batch_norm_affine(self.layer))

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        x = xs[0]
        z = x * self._broadcast(kernel, x)
        return z if bias is None else z + self._broadcast(bias, x)
