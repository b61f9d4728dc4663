"""X3D (Feichtenhofer, "X3D: Expanding Architectures for Efficient Video Recognition",
CVPR 2020) as Keras 3 functional models, in the layout of PyTorchVideo's ``create_x3d``.

- :func:`x3d`: X3D-XS by default (4 frames of 160x160; 3.79M parameters at 400 classes in
  PyTorchVideo's model zoo). ``depth_factor``, ``width_factor`` and the input give the other
  sizes (X3D-S: 13 frames; X3D-M: 16 frames of 224x224; X3D-L: ``depth_factor=5.0``).
- :func:`x3d_small`: narrower and shallower, to train on a CPU.

A network: a stem (1x3x3 convolution, then a channelwise 5x1x1 one), four stages of
bottleneck blocks (1x1x1, channelwise 3x3x3 = ``Conv3D(groups=channels)``, 1x1x1) with a
squeeze-and-excitation gate after the channelwise convolution of every other block and swish
after it, and a head (1x1x1 convolution, BatchNorm, ReLU, global average, a ReLU projection
and the classifier). The gate is GlobalAveragePooling3D -> Dense(relu) -> Dense(sigmoid) ->
Reshape -> Multiply. Explaining it needs grouped convolutions, gated Multiply and swish in
:mod:`analyzers`. Under z+ / deep Taylor it loses a little relevance (0.4-0.6 % of the logit
on a random bias-free ``x3d_small``): channelwise-convolution units with a negative output and
no activating contribution receive relevance through swish and cannot pass it on
(docs/analyzers.md, "Relevance conservation").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import layers

from kvlrp.models.builders.common import (
    batch_norm,
    check_num_classes,
    classifier,
    clip_input,
    conv3d,
)

#: Blocks per stage before ``depth_factor``.
STAGE_DEPTHS = (1, 2, 5, 3)
#: Stem channels before ``width_factor`` (PyTorchVideo's ``stem_dim_in``).
STEM_DIM = 12


def round_width(width: float, multiplier: float, min_width: int = 8, divisor: int = 8) -> int:
    """Scale a channel count and round it to a multiple of ``divisor`` (X3D's rule)."""
    width = width * multiplier
    out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    if out < 0.9 * width:
        out += divisor
    return int(out)


def x3d(
    num_classes: int,
    input_shape: Sequence[int] = (4, 160, 160, 3),
    width_factor: float = 2.0,
    depth_factor: float = 2.2,
    bottleneck_factor: float = 2.25,
    head_dim: int = 2048,
    se_ratio: float = 0.0625,
    dropout: float = 0.5,
    bias: bool = True,
    name: str = "x3d",
) -> keras.Model:
    """X3D; the defaults are X3D-XS, whose ``input_shape`` is ``(4, 160, 160, 3)`` (the
    arguments every builder takes: :mod:`~kvlrp.models.builders.common`).

    Parameters
    ----------
    width_factor, depth_factor, bottleneck_factor
        X3D's expansion factors (channels, blocks per stage, inner channels of a block).
    head_dim
        Width of the head's projection before the classifier.
    se_ratio
        Squeeze-and-excitation reduction (0 disables the gates).
    dropout
        Dropout rate before the classifier.
    """
    num_classes = check_num_classes(num_classes, name)
    for label, value in (("width_factor", width_factor), ("depth_factor", depth_factor),
                         ("bottleneck_factor", bottleneck_factor)):
        if not float(value) > 0:
            raise ValueError(f"{name}: {label} must be > 0, got {value}")
    if int(head_dim) < 1 or not 0.0 <= float(se_ratio) < 1.0:
        raise ValueError(f"{name}: head_dim must be >= 1 and se_ratio in [0, 1), got "
                         f"{head_dim}, {se_ratio}")
    inputs = clip_input(input_shape, name)
    stem_dim = round_width(STEM_DIM, width_factor)
    x = conv3d(inputs, stem_dim, (1, 3, 3), (1, 2, 2), name="stem_conv_s")
    x = conv3d(x, stem_dim, (5, 1, 1), name="stem_conv_t", groups=stem_dim)
    x = batch_norm(x, "stem_bn", bias)
    x = layers.ReLU(name="stem_relu")(x)
    dim_in, stage_dim = stem_dim, STEM_DIM
    for stage, depth in enumerate(STAGE_DEPTHS, start=1):
        if stage > 1:
            stage_dim = round_width(stage_dim, 2.0)
        dim_out = round_width(stage_dim, width_factor)
        dim_inner = int(bottleneck_factor * dim_out)
        for index in range(1, int(math.ceil(depth_factor * depth)) + 1):
            x = _res_block(x, dim_in, dim_inner, dim_out, 2 if index == 1 else 1,
                           se_ratio if index % 2 else 0.0, bias, f"s{stage}_b{index}")
            dim_in = dim_out
    x = conv3d(x, dim_inner, (1, 1, 1), name="head_conv")
    x = batch_norm(x, "head_bn", bias)
    x = layers.ReLU(name="head_relu")(x)
    x = layers.GlobalAveragePooling3D(name="head_pool")(x)
    x = layers.Dense(int(head_dim), activation="relu", use_bias=False, name="head_proj")(x)
    return keras.Model(inputs, classifier(x, num_classes, bias, dropout), name=name)


def x3d_small(
    num_classes: int,
    frames: int = 8,
    size: int = 56,
    width_factor: float = 0.5,
    depth_factor: float = 0.5,
    head_dim: int = 64,
    channels: int = 3,
    dropout: float = 0.0,
    bias: bool = True,
    name: str = "x3d_small",
) -> keras.Model:
    """A small X3D (stem 8 channels, stages 8/16/24/48, 1/1/3/2 blocks by default);
    ``width_factor``, ``depth_factor``, ``head_dim`` and ``dropout`` as in :func:`x3d`."""
    return x3d(num_classes, (frames, size, size, channels), width_factor=width_factor,
               depth_factor=depth_factor, head_dim=head_dim, dropout=dropout, bias=bias,
               name=name)


def _res_block(x, dim_in: int, dim_inner: int, dim_out: int, spatial_stride: int,
               se_ratio: float, bias: bool, name: str):
    """Bottleneck branch + shortcut (1x1x1 strided convolution where shapes change), ReLU."""
    strides = (1, spatial_stride, spatial_stride)
    y = conv3d(x, dim_inner, (1, 1, 1), name=f"{name}_conv_a")
    y = batch_norm(y, f"{name}_bn_a", bias)
    y = layers.ReLU(name=f"{name}_relu_a")(y)
    y = conv3d(y, dim_inner, (3, 3, 3), strides, name=f"{name}_conv_b", groups=dim_inner)
    y = batch_norm(y, f"{name}_bn_b", bias)
    if se_ratio > 0:
        y = _squeeze_excite(y, dim_inner, round_width(dim_inner, se_ratio), bias, f"{name}_se")
    y = layers.Activation("swish", name=f"{name}_swish")(y)
    y = conv3d(y, dim_out, (1, 1, 1), name=f"{name}_conv_c")
    y = batch_norm(y, f"{name}_bn_c", bias)
    shortcut = x
    if dim_in != dim_out or spatial_stride > 1:
        shortcut = conv3d(x, dim_out, (1, 1, 1), strides, name=f"{name}_shortcut")
        if dim_in != dim_out:
            shortcut = batch_norm(shortcut, f"{name}_shortcut_bn", bias)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_relu")(y)


def _squeeze_excite(x, channels: int, reduced: int, bias: bool, name: str):
    """Channel gate: global average -> Dense(relu) -> Dense(sigmoid) -> Reshape -> Multiply."""
    g = layers.GlobalAveragePooling3D(name=f"{name}_pool")(x)
    g = layers.Dense(reduced, activation="relu", use_bias=bias, name=f"{name}_reduce")(g)
    g = layers.Dense(channels, activation="sigmoid", use_bias=bias, name=f"{name}_expand")(g)
    g = layers.Reshape((1, 1, 1, channels), name=f"{name}_reshape")(g)
    return layers.Multiply(name=f"{name}_gate")([x, g])
