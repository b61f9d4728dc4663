"""C3D architectures (Tran et al., "Learning Spatiotemporal Features with 3D Convolutional
Networks", ICCV 2015) as Keras 3 functional models.

Every model here uses only layers that :mod:`analyzers` explains (Conv3D, MaxPooling3D,
ZeroPadding3D, BatchNormalization, ReLU, Flatten, GlobalAveragePooling3D, Dense, Dropout)
and ends in ``Dense(activation="softmax")``, so an analyzer explains it at its logits.

Padding notes
-------------
- ``pool5`` of the original (Caffe, ceil-mode pooling) turns the 7x7 maps of a 112x112 input
  into 4x4. Here that is a ``ZeroPadding3D`` of one zero row/column at the bottom/right before
  a valid 2x2x2 max pooling, which gives the same windows (inputs are post-ReLU, so a zero pad
  never wins a max over a real value). It is added only where the spatial size is odd.
- ``temporal_padding="valid"`` (``c3d_small`` only) pads height and width by one on each side
  with ``ZeroPadding3D`` and runs a valid convolution, so no frame position sees temporal zero
  padding: the way to tell a padding-caused border effect apart from a learned one.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

#: Allowed values of ``temporal_padding``.
TEMPORAL_PADDINGS = ("same", "valid")
#: Allowed values of ``head`` (``c3d_small``).
HEADS = ("flatten", "global_average")


def c3d(
    num_classes: int,
    input_shape: Sequence[int] = (16, 112, 112, 3),
    batch_norm: bool = False,
    dense_units: int = 4096,
    dropout: float = 0.5,
    name: str = "c3d",
) -> keras.Model:
    """The C3D network: 8 convolutions, 5 poolings, two dense layers, softmax (the arguments
    every builder takes: :mod:`~kvlrp.models.builders.common`).

    Parameters
    ----------
    input_shape
        The original is ``(16, 112, 112, 3)``. Frames must be >= 16 (four temporal poolings)
        and height/width >= 16.
    batch_norm
        Insert ``BatchNormalization`` between each convolution and its ReLU.
    dense_units
        Width of ``fc6`` and ``fc7`` (4096 in the original).
    dropout
        Dropout rate after ``fc6`` and ``fc7``.
    """
    frames, height, width, _ = _check_input_shape(input_shape)
    _check_classes_units_dropout(num_classes, dense_units, dropout)
    blocks = [(1, (64,)), (2, (128,)), (3, (256, 256)), (4, (512, 512)), (5, (512, 512))]
    inputs = keras.Input(shape=tuple(input_shape), name="clip")
    x = inputs
    t, h, w = frames, height, width
    for index, widths in blocks:
        for letter, filters in zip("ab", widths):
            x = _conv_block(x, filters, f"conv{index}{letter}", batch_norm, "same")
        pool_t = 1 if index == 1 else 2
        if index == 5 and (h % 2 or w % 2):
            x = layers.ZeroPadding3D(((0, 0), (0, h % 2), (0, w % 2)), name="pool5_pad")(x)
            h, w = h + h % 2, w + w % 2
        if t // pool_t < 1 or h // 2 < 1 or w // 2 < 1:
            raise ValueError(
                f"c3d: input_shape={tuple(input_shape)} is too small: pool{index} would get "
                f"{t}x{h}x{w} maps; use at least 16 frames and 16x16 pixels "
                "(the original is (16, 112, 112, 3))"
            )
        x = layers.MaxPooling3D((pool_t, 2, 2), strides=(pool_t, 2, 2), name=f"pool{index}")(x)
        t, h, w = t // pool_t, h // 2, w // 2
    x = layers.Flatten(name="flatten")(x)
    for index in (6, 7):
        x = layers.Dense(dense_units, activation="relu", name=f"fc{index}")(x)
        x = layers.Dropout(dropout, name=f"drop{index}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def c3d_small(
    num_classes: int,
    frames: int = 8,
    size: int = 56,
    widths: Sequence[int] = (16, 32, 64),
    dense_units: int = 128,
    batch_norm: bool = False,
    temporal_padding: str = "same",
    dropout: float = 0.5,
    channels: int = 3,
    head: str = "flatten",
    name: str = "c3d_small",
) -> keras.Model:
    """A small C3D: one 3x3x3 convolution + max pooling per entry of ``widths``, then
    Flatten (as C3D; or global average pooling), one ReLU dense layer with dropout, softmax.

    The first pooling is (1, 2, 2) and the others (2, 2, 2), as in C3D. A pooling keeps the
    temporal size where halving it would leave too few frames for the remaining
    convolutions (only possible with ``temporal_padding="valid"`` or very short clips). The
    arguments every builder takes: :mod:`~kvlrp.models.builders.common`.

    Parameters
    ----------
    size
        At least ``2 ** len(widths)``.
    widths
        Filters of each convolution block.
    dense_units
        Width of the hidden dense layer.
    batch_norm
        Insert ``BatchNormalization`` between each convolution and its ReLU.
    temporal_padding
        ``"same"`` (zero-pad frames, as C3D) or ``"valid"`` (no temporal padding: each
        convolution shortens the clip by 2 frames; needs ``frames >= 2 * len(widths) + 1``).
    dropout
        Dropout rate after the hidden dense layer.
    head
        ``"flatten"`` (as C3D: the dense layer sees every position) or ``"global_average"``
        (average over time and space first: few weights, position-invariant features). On
        small training sets the global-average head learns with less data: with 56 synthetic
        training videos it learnt the drift classes in ~600 steps of 8 clips while the
        flatten head stayed at chance; the flatten head learns them from more videos and
        steps (the demo's configuration).
    """
    _check_classes_units_dropout(num_classes, dense_units, dropout)
    widths = tuple(int(w) for w in widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"c3d_small: widths must be non-empty positive ints, got {widths}")
    if temporal_padding not in TEMPORAL_PADDINGS:
        raise ValueError(
            f"c3d_small: temporal_padding must be one of {TEMPORAL_PADDINGS}, "
            f"got {temporal_padding!r}"
        )
    if head not in HEADS:
        raise ValueError(f"c3d_small: head must be one of {HEADS}, got {head!r}")
    if size < 2 ** len(widths):
        raise ValueError(
            f"c3d_small: size={size} is too small for {len(widths)} pooling stages; "
            f"use size >= {2 ** len(widths)}"
        )
    shrink = 2 if temporal_padding == "valid" else 0
    min_frames = shrink * len(widths) + 1
    if frames < min_frames:
        raise ValueError(
            f"c3d_small: frames={frames} is too short for {len(widths)} convolutions with "
            f"temporal_padding={temporal_padding!r}; use frames >= {min_frames}"
        )
    inputs = keras.Input(shape=(frames, size, size, channels), name="clip")
    x = inputs
    t = frames
    for index, filters in enumerate(widths, start=1):
        x = _conv_block(x, filters, f"conv{index}", batch_norm, temporal_padding)
        t -= shrink
        remaining = len(widths) - index
        halve = index > 1 and t // 2 >= shrink * remaining + 1
        pool_t = 2 if halve else 1
        x = layers.MaxPooling3D((pool_t, 2, 2), strides=(pool_t, 2, 2), name=f"pool{index}")(x)
        t //= pool_t
    if head == "flatten":
        x = layers.Flatten(name="flatten")(x)
    else:
        x = layers.GlobalAveragePooling3D(name="global_average")(x)
    x = layers.Dense(dense_units, activation="relu", name="fc")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def _conv_block(x, filters: int, name: str, batch_norm: bool, temporal_padding: str):
    """3x3x3 convolution (+ BatchNormalization) + ReLU; ``valid`` pads only height and width."""
    padding = "same"
    if temporal_padding == "valid":
        x = layers.ZeroPadding3D(((0, 0), (1, 1), (1, 1)), name=f"{name}_pad")(x)
        padding = "valid"
    if not batch_norm:
        return layers.Conv3D(filters, 3, padding=padding, activation="relu", name=name)(x)
    x = layers.Conv3D(filters, 3, padding=padding, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 4 or any(not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(
            "c3d: input_shape must be (frames, height, width, channels) of positive ints, "
            f"got {shape}"
        )
    return shape  # type: ignore[return-value]


def _check_classes_units_dropout(num_classes: int, dense_units: int, dropout: float) -> None:
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2 for a softmax classifier, got {num_classes}")
    if int(dense_units) < 1:
        raise ValueError(f"dense_units must be >= 1, got {dense_units}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
