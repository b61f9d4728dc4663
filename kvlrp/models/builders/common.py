"""Building blocks shared by the 3D-CNN builders (R3D, R(2+1)D, I3D, X3D).

- :func:`conv3d`: a bias-free Conv3D padded the way PyTorch pads (``kernel // 2`` zeros on
  both sides), so a strided convolution sees the same windows as the reference
  implementations (Keras' ``same`` pads asymmetrically when the stride is > 1).
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


def batch_norm(x, name: str, bias: bool = True, scale: bool = True, epsilon: float = 1e-5):
    """BatchNormalization over channels (the last axis) with PyTorch's defaults."""
    return layers.BatchNormalization(epsilon=epsilon, momentum=TORCH_BN_MOMENTUM,
                                     center=bias, scale=scale, name=name)(x)


def classifier(x, num_classes: int, bias: bool = True, dropout: float = 0.0):
    """Optional Dropout, then ``Dense(num_classes, softmax)`` named ``predictions``."""
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_classes, activation="softmax", use_bias=bias,
                        name="predictions")(x)


def positive_ints(values: Sequence[int], what: str, builder: str, length: int) -> tuple[int, ...]:
    """``values`` as a tuple of ``length`` positive ints, or a one-line ValueError."""
    out = tuple(values)
    if len(out) != length or any(int(v) != v or v < 1 for v in out):
        raise ValueError(f"{builder}: {what} must be {length} positive ints, got {out}")
    return tuple(int(v) for v in out)
