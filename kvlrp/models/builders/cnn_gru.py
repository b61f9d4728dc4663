"""A per-frame 2D CNN followed by a GRU: the classic Keras video baseline (as in keras.io's
video classification example, which runs a CNN on every frame and a GRU over the frame
features), as a Keras 3 functional model.

- :func:`cnn_gru_small`: ``TimeDistributed`` around a nested ``Sequential`` frame CNN
  (Conv2D + ReLU, MaxPooling2D, ..., the last Conv2D followed by a 1x1 Conv2D and Flatten, or
  by GlobalAveragePooling2D as in keras.io's example), then ``GRU`` over the frame features
  and ``Dense(softmax)``.

keras.io's example feeds the GRU 2048 pretrained InceptionV3 channels, which carry where
things are; a small CNN trained from scratch and averaged over the frame loses that, so its
GRU cannot see a pattern move. The default frame feature therefore keeps the spatial layout.

Layers: TimeDistributed, a nested Sequential (Conv2D, MaxPooling2D, Flatten or
GlobalAveragePooling2D), GRU, Dense and, with ``dropout``, Dropout.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from kvlrp.models.builders.common import check_num_classes, classifier, clip_input


def cnn_gru_small(
    num_classes: int,
    frames: int = 8,
    size: int = 56,
    widths: Sequence[int] = (16, 32, 64),
    units: int = 64,
    channels: int = 3,
    dropout: float = 0.0,
    bias: bool = True,
    frame_features: str = "grid",
    grid_channels: int = 4,
    name: str = "cnn_gru_small",
) -> keras.Model:
    """Per-frame CNN + GRU (187,304 parameters for 8x56x56 clips and 4 classes, 85,928 for
    8x32x32; the arguments
    every builder takes: :mod:`~kvlrp.models.builders.common`).

    Parameters
    ----------
    widths
        Filters of the frame CNN's 3x3 convolutions; a 2x2 max pooling follows each but the
        last, a global average pooling the last (``size >= 2 ** (len(widths) - 1)``).
    units
        GRU units (the width of the video feature the classifier sees).
    dropout
        Dropout rate before the classifier.
    bias
        ``False``: no biases (convolutions, GRU, classifier).
    frame_features
        ``"average"``: global average pooling of the last convolution (keras.io's baseline;
        it discards where things are in the frame, so the GRU cannot see a pattern move);
        ``"grid"`` (default): a 1x1 convolution to ``grid_channels`` channels, flattened, so
        the frame feature keeps the spatial layout and the GRU can follow motion across
        frames.
    grid_channels
        Channels per grid cell with ``frame_features="grid"``.
    """
    num_classes = check_num_classes(num_classes, name)
    widths = tuple(widths)
    if not widths or any(int(w) != w or w < 1 for w in widths):
        raise ValueError(f"{name}: widths must be non-empty positive ints, got {widths}")
    if int(units) != units or units < 1:
        raise ValueError(f"{name}: units must be a positive int, got {units!r}")
    inputs = clip_input((frames, size, size, channels), name,
                        min_size=2 ** (len(widths) - 1))
    frame_cnn = keras.Sequential(name="frame_cnn")
    frame_cnn.add(keras.Input((size, size, channels), name="frame"))
    for index, filters in enumerate(widths, start=1):
        frame_cnn.add(layers.Conv2D(int(filters), 3, padding="same", activation="relu",
                                    use_bias=bias, name=f"conv{index}"))
        if index < len(widths):
            frame_cnn.add(layers.MaxPooling2D(2, name=f"pool{index}"))
    if frame_features == "average":
        frame_cnn.add(layers.GlobalAveragePooling2D(name="frame_features"))
    elif frame_features == "grid":
        frame_cnn.add(layers.Conv2D(int(grid_channels), 1, use_bias=bias,
                                    name="grid"))
        frame_cnn.add(layers.Flatten(name="frame_features"))
    else:
        raise ValueError(f"{name}: frame_features must be 'average' or 'grid', got "
                         f"{frame_features!r}")
    x = layers.TimeDistributed(frame_cnn, name="per_frame")(inputs)
    x = layers.GRU(int(units), use_bias=bias, name="gru")(x)
    return keras.Model(inputs, classifier(x, num_classes, bias, dropout), name=name)
