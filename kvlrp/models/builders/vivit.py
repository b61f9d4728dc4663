"""ViViT, factorised encoder (Arnab et al., "ViViT: A Video Vision Transformer", ICCV 2021,
model 2) as a Keras 3 functional model, in the layout of Scenic's ``SpaceTimeViViT``.

- :func:`vivit`: ViViT-B/16x2 FE by default (32 frames of 224x224, tubelets of 2x16x16,
  width 768, 12 heads, MLP 3072, 12 spatial and 4 temporal blocks, class-token readouts:
  115,062,928 parameters at 400 classes; the paper's Table 4 gives 115.1M).
- :func:`vivit_small`: the same network, narrower and shallower, to train on a CPU.

The network: a tubelet embedding (``Conv3D`` with kernel = stride = tubelet), the tokens of
each temporal index ``[B, t, h*w, dim]``; a spatial class token and a learned spatial position
table; a spatial transformer over the tokens of each temporal index (attention over axis 2 of
the 4D tensor, so every temporal index is encoded on its own with the same weights); a final
LayerNormalization and the spatial class token of each temporal index ``[B, t, dim]``; a
temporal class token and a learned temporal position table; a temporal transformer; a final
LayerNormalization, the temporal class token and ``Dense(softmax)``.

Layers: Conv3D, Reshape, Embedding (class tokens and position tables, at indices computed by
``keras.ops`` calls), Concatenate, Add, LayerNormalization, MultiHeadAttention, Dense (gelu,
linear, softmax), Cropping2D, Cropping1D, Flatten and, with ``dropout``, Dropout (see
:mod:`~kvlrp.models.builders.transformer`).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from kvlrp.models.builders.common import (
    check_num_classes,
    classifier,
    clip_input,
    positive_ints,
)
from kvlrp.models.builders.transformer import (
    add_class_token,
    add_positions,
    check_width,
    encoder_block,
    layer_norm,
    token_at,
)


def vivit(
    num_classes: int,
    input_shape: Sequence[int] = (32, 224, 224, 3),
    tubelet: Sequence[int] = (2, 16, 16),
    dim: int = 768,
    heads: int = 12,
    mlp_dim: int = 3072,
    spatial_depth: int = 12,
    temporal_depth: int = 4,
    dropout: float = 0.0,
    bias: bool = True,
    name: str = "vivit",
) -> keras.Model:
    """ViViT factorised encoder; the defaults are ViViT-B/16x2 FE (the arguments every
    builder takes: :mod:`~kvlrp.models.builders.common`).

    Parameters
    ----------
    tubelet
        Frames, height and width of a tubelet (the embedding's kernel and stride); the
        clip is cut into ``frames // t`` x ``height // h`` x ``width // w`` tubelets.
    dim, heads, mlp_dim
        Token width, attention heads (``dim`` a multiple of it) and hidden width of the MLPs.
    spatial_depth, temporal_depth
        Blocks of the spatial and of the temporal transformer.
    dropout
        Dropout rate before the classifier.
    bias
        ``False``: no biases, no LayerNormalization offsets, class tokens and position
        tables initialised to zero.
    """
    num_classes = check_num_classes(num_classes, name)
    tubelet = positive_ints(tubelet, "tubelet", name, 3)
    check_width(dim, heads, mlp_dim, name)
    spatial_depth, temporal_depth = positive_ints((spatial_depth, temporal_depth),
                                                  "spatial_depth, temporal_depth", name, 2)
    inputs = clip_input(input_shape, name, min_frames=tubelet[0], min_size=max(tubelet[1:]))
    if min(inputs.shape[2] // tubelet[1], inputs.shape[3] // tubelet[2]) < 1:
        raise ValueError(f"{name}: input_shape={tuple(input_shape)} is smaller than a "
                         f"tubelet {tubelet}")
    x = layers.Conv3D(dim, tubelet, strides=tubelet, use_bias=bias, name="tubelets")(inputs)
    frames, height, width = x.shape[1:4]
    x = layers.Reshape((frames, height * width, dim), name="tokens")(x)
    x = add_class_token(x, 2, "spatial_class_token", bias)
    x = add_positions(x, 2, "spatial_positions", bias)
    for index in range(spatial_depth):
        x = encoder_block(x, heads, mlp_dim, f"spatial{index}", bias, axis=2)
    x = layer_norm(x, "spatial_ln", bias)
    x = layers.Reshape((frames, dim), name="frame_tokens")(token_at(x, "spatial_class"))
    x = add_class_token(x, 1, "temporal_class_token", bias)
    x = add_positions(x, 1, "temporal_positions", bias)
    for index in range(temporal_depth):
        x = encoder_block(x, heads, mlp_dim, f"temporal{index}", bias)
    x = layer_norm(x, "temporal_ln", bias)
    x = layers.Flatten(name="class")(token_at(x, "temporal_class"))
    return keras.Model(inputs, classifier(x, num_classes, bias, dropout), name=name)


def vivit_small(
    num_classes: int,
    frames: int = 8,
    size: int = 56,
    tubelet: Sequence[int] = (2, 8, 8),
    dim: int = 64,
    heads: int = 4,
    mlp_dim: int = 128,
    spatial_depth: int = 2,
    temporal_depth: int = 2,
    channels: int = 3,
    dropout: float = 0.0,
    bias: bool = True,
    name: str = "vivit_small",
) -> keras.Model:
    """A small ViViT factorised encoder (width 64, 4 heads, 2 spatial and 2 temporal blocks,
    tubelets of 2x8x8: 162,692 parameters for 8x56x56 clips and 4 classes); the other
    arguments as in :func:`vivit`."""
    return vivit(num_classes, (frames, size, size, channels), tubelet=tubelet, dim=dim,
                 heads=heads, mlp_dim=mlp_dim, spatial_depth=spatial_depth,
                 temporal_depth=temporal_depth, dropout=dropout, bias=bias, name=name)
