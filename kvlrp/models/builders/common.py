"""Building blocks shared by the 3D-CNN builders (R3D, R(2+1)D, I3D, X3D).

- :func:`conv3d`: a bias-free Conv3D padded the way PyTorch pads (``kernel // 2`` zeros on
  both sides), so a strided convolution sees the same windows as the reference
  implementations (Keras' ``same`` pads asymmetrically when the stride is > 1).
- :func:`channelwise_conv3d`: a channelwise (depthwise) 3D convolution, by default as
  standard layers that TensorFlow runs fast on the CPU: zero padding, then per temporal tap a
  cropped copy of the clip through ``TimeDistributed(DepthwiseConv2D)``, summed by ``Add``
  (TensorFlow's ``Conv3D(groups=channels)`` is the slow path there); ``formulation="conv3d"``
  gives the grouped ``Conv3D`` (the same map; models saved with it load as before).
- :func:`batch_norm`: BatchNormalization with PyTorch's defaults (epsilon 1e-5, momentum 0.1,
  which is Keras' 0.9); ``bias=False`` drops its shift (``center=False``) for the
  bias-free variants that relevance-conservation checks need.
- :func:`clip_input`, :func:`check_num_classes`, :func:`classifier`: inputs and outputs.

The arguments every builder takes are described here once (each builder documents only its
own); every builder returns an uncompiled ``keras.Model`` mapping clips ``[B, frames, height,
width, channels]`` to class probabilities ``[B, num_classes]`` (softmax, explained at its
logits):

num_classes
    Number of output classes (>= 2).
input_shape
    Full-size builders: ``(frames, height, width, channels)`` of a clip.
frames, size, channels
    ``_small`` builders: clip length, square frame size and colour channels of the input.
bias
    ``False``: no additive terms (BatchNorm shifts, gate and classifier biases), for the
    conservation checks.
name
    Model name.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

#: Keras BatchNormalization momentum equal to PyTorch's default (0.1).
TORCH_BN_MOMENTUM = 0.9


def check_num_classes(num_classes: int, builder: str) -> int:
    """``num_classes`` as an int >= 2, or a one-line ValueError naming ``builder``."""
    if int(num_classes) != num_classes or int(num_classes) < 2:
        raise ValueError(
            f"{builder}: num_classes must be an int >= 2 for a softmax classifier, "
            f"got {num_classes!r}"
        )
    return int(num_classes)


def clip_input(
    input_shape: Sequence[int], builder: str, min_frames: int = 1, min_size: int = 1
) -> keras.KerasTensor:
    """A ``keras.Input`` named ``clip`` of shape ``(frames, height, width, channels)``."""
    shape = tuple(input_shape)
    if len(shape) != 4 or any(not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(
            f"{builder}: input_shape must be (frames, height, width, channels) of positive "
            f"ints, got {shape}"
        )
    frames, height, width, _ = shape
    if frames < min_frames or min(height, width) < min_size:
        raise ValueError(
            f"{builder}: input_shape={shape} is too small; use at least {min_frames} frames "
            f"and {min_size}x{min_size} pixels"
        )
    return keras.Input(shape=shape, name="clip")


def conv3d(
    x,
    filters: int,
    kernel: Sequence[int],
    strides: Sequence[int] = (1, 1, 1),
    name: str = "conv",
    groups: int = 1,
    use_bias: bool = False,
):
    """Conv3D with PyTorch-style symmetric zero padding of ``kernel // 2`` per axis.

    With stride 1 and odd kernels that is Keras' ``same``; with a larger stride an explicit
    ``ZeroPadding3D`` (``{name}_pad``) precedes a ``valid`` convolution.
    """
    kernel = tuple(int(k) for k in kernel)
    strides = tuple(int(s) for s in strides)
    pads = tuple(k // 2 for k in kernel)
    if all(s == 1 for s in strides) and all(k % 2 for k in kernel):
        padding = "same"
    else:
        if any(pads):
            x = layers.ZeroPadding3D(tuple((p, p) for p in pads), name=f"{name}_pad")(x)
        padding = "valid"
    return layers.Conv3D(filters, kernel, strides=strides, padding=padding, groups=groups,
                         use_bias=use_bias, name=name)(x)


#: Formulations of a channelwise 3D convolution (:func:`channelwise_conv3d`).
CHANNELWISE = ("taps", "conv3d")


def channelwise_conv3d(
    x,
    kernel: Sequence[int],
    strides: Sequence[int] = (1, 1, 1),
    name: str = "conv",
    formulation: str = "taps",
    multiplier: int = 1,
):
    """Channelwise 3D convolution (``groups == channels``, bias-free, PyTorch padding).

    ``formulation="taps"`` (default): ``ZeroPadding3D`` (``{name}_pad``), then for each
    temporal tap ``dt`` a ``Cropping3D`` (``{name}_t{dt}_crop``) keeping frames ``dt ..
    dt + T - 1`` and a ``TimeDistributed(DepthwiseConv2D)`` (``{name}_t{dt}``) with that
    tap's kernel slice, summed by ``Add`` named ``name``: the same function as
    ``Conv3D(groups=channels)`` (the weights of tap ``dt`` are the kernel's slice ``dt``,
    :func:`channelwise_tap_weights`) in standard Keras layers, which ``analyzers`` explains as
    the grouped convolution it is. ``"conv3d"``: the grouped ``Conv3D`` of :func:`conv3d`.
    A single temporal tap or a temporal stride > 1 always uses ``Conv3D``.
    """
    if formulation not in CHANNELWISE:
        raise ValueError(f"channelwise formulation must be one of {CHANNELWISE}, got "
                         f"{formulation!r}")
    kernel = tuple(int(k) for k in kernel)
    strides = tuple(int(s) for s in strides)
    channels = int(x.shape[-1])
    if formulation == "conv3d" or kernel[0] == 1 or strides[0] != 1:
        return conv3d(x, channels * multiplier, kernel, strides, name=name, groups=channels)
    pads = tuple(k // 2 for k in kernel)
    if any(pads):
        x = layers.ZeroPadding3D(tuple((p, p) for p in pads), name=f"{name}_pad")(x)
    # the grouped Conv3D's Glorot-uniform distribution (its fans count all k_t taps)
    init = keras.initializers.VarianceScaling(1.0 / kernel[0], "fan_avg", "uniform")
    taps = []
    for dt in range(kernel[0]):
        frames = layers.Cropping3D(((dt, kernel[0] - 1 - dt), (0, 0), (0, 0)),
                                   name=f"{name}_t{dt}_crop")(x)
        depthwise = layers.DepthwiseConv2D(kernel[1:], strides=strides[1:], padding="valid",
                                           depth_multiplier=multiplier, use_bias=False,
                                           depthwise_initializer=init)
        taps.append(layers.TimeDistributed(depthwise, name=f"{name}_t{dt}")(frames))
    return layers.Add(name=name)(taps)


def channelwise_tap_weights(kernel, channels: int) -> list:
    """The kernels of the ``taps`` layers of :func:`channelwise_conv3d` (in tap order, each
    ``[k_h, k_w, channels, multiplier]``) from a grouped ``Conv3D`` kernel
    ``[k_t, k_h, k_w, 1, channels * multiplier]`` (a numpy array)."""
    k_t, k_h, k_w, _, out = kernel.shape
    return [kernel[dt].reshape(k_h, k_w, channels, out // channels) for dt in range(k_t)]


def copy_channelwise_weights(grouped: keras.Model, taps: keras.Model) -> None:
    """Give ``taps`` (built with ``formulation="taps"``) the weights of ``grouped`` (the same
    builder and arguments with ``"conv3d"``, e.g. an X3D saved by an earlier release): layers
    are matched by name, tap ``dt`` of channelwise convolution ``c`` (``c_t{dt}``) gets the
    slice ``dt`` of ``c``'s kernel (:func:`channelwise_tap_weights`). Both models then compute
    the same function."""
    by_name = {layer.name: layer for layer in grouped.layers}
    for layer in taps.layers:
        if isinstance(layer, layers.TimeDistributed):
            name, tap = layer.name.rsplit("_t", 1)
            source = by_name[name]
            weights = channelwise_tap_weights(source.kernel.numpy(), int(source.groups))
            layer.set_weights([weights[int(tap)]])
        elif layer.weights:
            layer.set_weights(by_name[layer.name].get_weights())


def batch_norm(x, name: str, bias: bool = True, scale: bool = True, epsilon: float = 1e-5):
    """BatchNormalization over channels (the last axis) with PyTorch's defaults."""
    return layers.BatchNormalization(epsilon=epsilon, momentum=TORCH_BN_MOMENTUM,
                                     center=bias, scale=scale, name=name)(x)


def classifier(x, num_classes: int, bias: bool = True, dropout: float = 0.0):
    """Optional Dropout, then ``Dense(num_classes, softmax)`` named ``predictions``, computed
    in float32 also when the model is built under a mixed-precision policy."""
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_classes, activation="softmax", use_bias=bias,
                        name="predictions", dtype="float32")(x)


def positive_ints(values: Sequence[int], what: str, builder: str, length: int) -> tuple[int, ...]:
    """``values`` as a tuple of ``length`` positive ints, or a one-line ValueError."""
    out = tuple(values)
    if len(out) != length or any(int(v) != v or v < 1 for v in out):
        raise ValueError(f"{builder}: {what} must be {length} positive ints, got {out}")
    return tuple(int(v) for v in out)
