"""I3D: Inception-v1 inflated to 3D (Carreira & Zisserman, "Quo Vadis, Action Recognition?
A New Model and the Kinetics Dataset", CVPR 2017), as Keras 3 functional models.

- :func:`i3d`: the RGB network of the authors' release (deepmind/kinetics-i3d): a 7x7x7
  stride-2 stem, nine Inception modules whose "5x5" branch is a 3x3x3 convolution, TF
  ``same`` padding, convolutions without bias followed by BatchNorm with a shift and no scale
  (Sonnet's default), a 1x1x1 classifier with bias.
- :func:`i3d_small`: the same graph with every width scaled by ``width`` (1/8 by default).

The reference head averages the last feature map over 2-frame windows (``AvgPool(2, 7, 7)``,
stride 1), applies the 1x1x1 classifier and averages its logits over time. The classifier is
linear, so here the same pooling is followed by a global average and a Dense layer, which
gives the same logits. Layers: Conv3D, BatchNormalization, ReLU, MaxPooling3D (overlapping
windows, ``same`` padding), Concatenate, AveragePooling3D, GlobalAveragePooling3D, Dense.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from kvlrp.models.builders.common import batch_norm, check_num_classes, classifier, clip_input

#: Inception modules: name -> (branch0 1x1, branch1 1x1, branch1 3x3, branch2 1x1,
#: branch2 3x3, branch3 pool-projection 1x1); ``None`` entries are max poolings.
MODULES: tuple[tuple[str, tuple[int, ...] | None], ...] = (
    ("mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("pool_4a", None),
    ("mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("pool_5a", None),
    ("mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("mixed_5c", (384, 192, 384, 48, 128, 128)),
)
#: BatchNorm epsilon of the reference (Sonnet's 1e-3).
EPSILON = 1e-3


def i3d(
    num_classes: int,
    input_shape: Sequence[int] = (64, 224, 224, 3),
    dropout: float = 0.5,
    bias: bool = True,
    name: str = "i3d",
) -> keras.Model:
    """The I3D RGB network (12.3M trainable parameters at 400 classes; the arguments every
    builder takes: :mod:`~kvlrp.models.builders.common`).

    Parameters
    ----------
    input_shape
        The release was trained on 64-frame 224x224 clips (any size works: poolings use
        ``same`` padding).
    dropout
        Dropout rate before the classifier.
    """
    return inception3d(num_classes, input_shape, 1.0, dropout, bias, name)


def i3d_small(
    num_classes: int,
    frames: int = 8,
    size: int = 56,
    width: float = 0.125,
    channels: int = 3,
    dropout: float = 0.0,
    bias: bool = True,
    name: str = "i3d_small",
) -> keras.Model:
    """:func:`i3d` with every convolution's width multiplied by ``width`` (at least 1); its
    other arguments as there.

    Parameters
    ----------
    width
        Width multiplier in (0, 1].
    """
    return inception3d(num_classes, (frames, size, size, channels), width, dropout, bias, name)


def inception3d(
    num_classes: int,
    input_shape: Sequence[int],
    width: float = 1.0,
    dropout: float = 0.5,
    bias: bool = True,
    name: str = "inception3d",
) -> keras.Model:
    """The I3D graph with widths scaled by ``width`` (the builders above call this)."""
    num_classes = check_num_classes(num_classes, name)
    if not 0.0 < float(width) <= 1.0:
        raise ValueError(f"{name}: width must be in (0, 1], got {width}")

    def scaled(channels: int) -> int:
        return max(1, round(channels * width))

    inputs = clip_input(input_shape, name)
    x = _unit(inputs, scaled(64), (7, 7, 7), (2, 2, 2), bias, "conv_1a")
    x = layers.MaxPooling3D((1, 3, 3), (1, 2, 2), padding="same", name="pool_2a")(x)
    x = _unit(x, scaled(64), (1, 1, 1), (1, 1, 1), bias, "conv_2b")
    x = _unit(x, scaled(192), (3, 3, 3), (1, 1, 1), bias, "conv_2c")
    x = layers.MaxPooling3D((1, 3, 3), (1, 2, 2), padding="same", name="pool_3a")(x)
    for module, spec in MODULES:
        if spec is None:
            size = (3, 3, 3) if module == "pool_4a" else (2, 2, 2)
            x = layers.MaxPooling3D(size, (2, 2, 2), padding="same", name=module)(x)
        else:
            x = _inception_module(x, tuple(scaled(c) for c in spec), bias, module)
    frames = x.shape[1]
    x = layers.AveragePooling3D((min(2, frames), 1, 1), strides=1, name="logits_pool")(x)
    x = layers.GlobalAveragePooling3D(name="avgpool")(x)
    return keras.Model(inputs, classifier(x, num_classes, bias, dropout), name=name)


def _unit(x, filters: int, kernel, strides, bias: bool, name: str):
    """Conv3D (no bias, TF ``same``) + BatchNorm (shift, no scale) + ReLU."""
    x = layers.Conv3D(filters, kernel, strides=strides, padding="same", use_bias=False,
                      name=name)(x)
    x = batch_norm(x, f"{name}_bn", bias, scale=False, epsilon=EPSILON)
    return layers.ReLU(name=f"{name}_relu")(x)


def _inception_module(x, spec: tuple[int, ...], bias: bool, name: str):
    """Four branches concatenated: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max pool -> 1x1."""
    b0 = _unit(x, spec[0], (1, 1, 1), (1, 1, 1), bias, f"{name}_b0")
    b1 = _unit(x, spec[1], (1, 1, 1), (1, 1, 1), bias, f"{name}_b1a")
    b1 = _unit(b1, spec[2], (3, 3, 3), (1, 1, 1), bias, f"{name}_b1b")
    b2 = _unit(x, spec[3], (1, 1, 1), (1, 1, 1), bias, f"{name}_b2a")
    b2 = _unit(b2, spec[4], (3, 3, 3), (1, 1, 1), bias, f"{name}_b2b")
    b3 = layers.MaxPooling3D((3, 3, 3), (1, 1, 1), padding="same", name=f"{name}_b3_pool")(x)
    b3 = _unit(b3, spec[5], (1, 1, 1), (1, 1, 1), bias, f"{name}_b3b")
    return layers.Concatenate(name=f"{name}_concat")([b0, b1, b2, b3])
