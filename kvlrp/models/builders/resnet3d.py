"""Video ResNets (Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action
Recognition", CVPR 2018) as Keras 3 functional models, channels_last.

- :func:`r3d`: R3D-18, the layout of torchvision's ``r3d_18`` (3x3x3 convolutions).
- :func:`r2plus1d`: R(2+1)D-18, the layout of torchvision's ``r2plus1d_18``: each 3x3x3
  convolution factored into a 1x3x3 spatial one, BatchNorm, ReLU and a 3x1x1 temporal one,
  with torchvision's number of intermediate channels
  ``(in * out * 27) // (in * 9 + 3 * out)`` per block.
- :func:`r3d_small`, :func:`r2plus1d_small`: the same blocks, narrower and shallower, to train
  on a CPU.

All use only Conv3D, ZeroPadding3D, BatchNormalization, ReLU, Add, GlobalAveragePooling3D and
Dense, which :mod:`analyzers` explains. Convolutions have no bias (BatchNorm follows each);
``bias=False`` also drops BatchNorm's shift and the classifier's bias, giving a network with
no additive terms, on which conserving rules must conserve relevance exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from kvlrp.models.builders.common import (
    batch_norm,
    check_num_classes,
    classifier,
    clip_input,
    conv3d,
    positive_ints,
)

#: Channels of the four stages of the 18-layer networks.
FULL_WIDTHS = (64, 128, 256, 512)
#: Residual blocks per stage of the 18-layer networks.
FULL_BLOCKS = (2, 2, 2, 2)
#: Block types.
CONV_TYPES = ("3d", "2plus1d")


def r3d(
    num_classes: int,
    input_shape: Sequence[int] = (16, 112, 112, 3),
    bias: bool = True,
    name: str = "r3d",
) -> keras.Model:
    """R3D-18 (33.4M parameters at 400 classes, as torchvision's ``r3d_18``; torchvision's
    models were trained on ``input_shape=(16, 112, 112, 3)``). Its arguments are those every
    builder takes (:mod:`~kvlrp.models.builders.common`).
    """
    return video_resnet(num_classes, input_shape, "3d", FULL_WIDTHS, FULL_BLOCKS, bias, name)


def r2plus1d(
    num_classes: int,
    input_shape: Sequence[int] = (16, 112, 112, 3),
    bias: bool = True,
    name: str = "r2plus1d",
) -> keras.Model:
    """R(2+1)D-18 (31.5M parameters at 400 classes, as torchvision's ``r2plus1d_18``); its
    arguments are those of :func:`r3d`."""
    return video_resnet(num_classes, input_shape, "2plus1d", FULL_WIDTHS, FULL_BLOCKS, bias,
                        name)


def r3d_small(
    num_classes: int,
    frames: int = 8,
    size: int = 56,
    widths: Sequence[int] = (8, 16, 32, 64),
    blocks: Sequence[int] = (1, 1, 1, 1),
    channels: int = 3,
    bias: bool = True,
    name: str = "r3d_small",
) -> keras.Model:
    """A small R3D: the stem and residual stages of :func:`r3d`, narrower and shallower (the
    arguments every builder takes: :mod:`~kvlrp.models.builders.common`).

    Parameters
    ----------
    widths
        Channels of the four stages (the stem has ``widths[0]``).
    blocks
        Residual blocks per stage.
    """
    return video_resnet(num_classes, (frames, size, size, channels), "3d", widths, blocks, bias,
                        name)


def r2plus1d_small(
    num_classes: int,
    frames: int = 8,
    size: int = 56,
    widths: Sequence[int] = (8, 16, 32, 64),
    blocks: Sequence[int] = (1, 1, 1, 1),
    channels: int = 3,
    bias: bool = True,
    name: str = "r2plus1d_small",
) -> keras.Model:
    """A small R(2+1)D: the blocks of :func:`r2plus1d`, narrower and shallower; its
    arguments are those of :func:`r3d_small`."""
    return video_resnet(num_classes, (frames, size, size, channels), "2plus1d", widths, blocks,
                        bias, name)


def midplanes(in_planes: int, out_planes: int) -> int:
    """Intermediate channels of a (2+1)D convolution: as many parameters as the 3x3x3 one."""
    return (in_planes * out_planes * 27) // (in_planes * 9 + 3 * out_planes)


def video_resnet(
    num_classes: int,
    input_shape: Sequence[int],
    conv_type: str,
    widths: Sequence[int],
    blocks: Sequence[int],
    bias: bool = True,
    name: str = "video_resnet",
) -> keras.Model:
    """A four-stage video ResNet of BasicBlocks (the builders above call this).

    Stage ``i`` has ``blocks[i]`` blocks of ``widths[i]`` channels; stages 2-4 start with
    stride 2 in time, height and width (a 1x1x1 strided convolution + BatchNorm on the
    shortcut), then global average pooling and a softmax classifier.
    """
    num_classes = check_num_classes(num_classes, name)
    if conv_type not in CONV_TYPES:
        raise ValueError(f"{name}: conv_type must be one of {CONV_TYPES}, got {conv_type!r}")
    widths = positive_ints(widths, "widths", name, 4)
    blocks = positive_ints(blocks, "blocks", name, 4)
    inputs = clip_input(input_shape, name)
    x = _stem(inputs, conv_type, widths[0], bias)
    in_planes = widths[0]
    for stage, (planes, count) in enumerate(zip(widths, blocks), start=1):
        for index in range(1, count + 1):
            stride = 2 if stage > 1 and index == 1 else 1
            x = _basic_block(x, in_planes, planes, stride, conv_type, bias,
                             f"layer{stage}_block{index}")
            in_planes = planes
    x = layers.GlobalAveragePooling3D(name="avgpool")(x)
    return keras.Model(inputs, classifier(x, num_classes, bias), name=name)


def _stem(x, conv_type: str, filters: int, bias: bool):
    """3x7x7 stride (1, 2, 2) convolution, or its (2+1)D factorisation (45 of 64 channels)."""
    if conv_type == "3d":
        x = conv3d(x, filters, (3, 7, 7), (1, 2, 2), name="stem_conv")
        x = batch_norm(x, "stem_bn", bias)
        return layers.ReLU(name="stem_relu")(x)
    middle = max(1, (filters * 45) // 64)
    x = conv3d(x, middle, (1, 7, 7), (1, 2, 2), name="stem_conv_s")
    x = batch_norm(x, "stem_bn_s", bias)
    x = layers.ReLU(name="stem_relu_s")(x)
    x = conv3d(x, filters, (3, 1, 1), name="stem_conv_t")
    x = batch_norm(x, "stem_bn", bias)
    return layers.ReLU(name="stem_relu")(x)


def _conv(x, conv_type: str, filters: int, middle: int, stride: int, bias: bool, name: str):
    """A 3x3x3 convolution, or a 1x3x3 + BN + ReLU + 3x1x1 one with ``middle`` channels."""
    if conv_type == "3d":
        return conv3d(x, filters, (3, 3, 3), (stride,) * 3, name=name)
    x = conv3d(x, middle, (1, 3, 3), (1, stride, stride), name=f"{name}_s")
    x = batch_norm(x, f"{name}_s_bn", bias)
    x = layers.ReLU(name=f"{name}_s_relu")(x)
    return conv3d(x, filters, (3, 1, 1), (stride, 1, 1), name=f"{name}_t")


def _basic_block(x, in_planes: int, planes: int, stride: int, conv_type: str, bias: bool,
                 name: str):
    """Two convolutions with BatchNorm, a shortcut, Add, ReLU (torchvision's BasicBlock)."""
    middle = midplanes(in_planes, planes)
    shortcut = x
    y = _conv(x, conv_type, planes, middle, stride, bias, f"{name}_conv1")
    y = batch_norm(y, f"{name}_bn1", bias)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(y, conv_type, planes, middle, 1, bias, f"{name}_conv2")
    y = batch_norm(y, f"{name}_bn2", bias)
    if stride != 1 or in_planes != planes:
        shortcut = conv3d(x, planes, (1, 1, 1), (stride,) * 3, name=f"{name}_downsample")
        shortcut = batch_norm(shortcut, f"{name}_downsample_bn", bias)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_relu")(y)
