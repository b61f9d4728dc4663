"""TimeSformer with divided space-time attention (Bertasius et al., "Is Space-Time Attention
All You Need for Video Understanding?", ICML 2021) as a Keras 3 functional model, in the
layout of the official implementation (facebookresearch/TimeSformer, ``vit.py``).

- :func:`timesformer`: TimeSformer-Base by default (8 frames of 224x224, 16x16 patches, width
  768, 12 blocks of 12 heads, MLP 3072: 121,566,352 parameters at 400 classes, the count of
  the official implementation; the paper gives 121.4M).
- :func:`timesformer_small`: the same network, narrower and shallower, to train on a CPU.

Tokens are kept as ``[B, frames, 1 + patches, dim]``: the class token is held once per frame,
all copies equal (as the official implementation, which keeps one class token, repeats it for
the spatial attention of each frame and averages the results). The network: a patch
embedding per frame (``Conv3D`` with a 1xPxP kernel and stride), a learned temporal position
table added to the patch tokens, the class token, a learned spatial position table (class
token and patches); blocks of

1. temporal attention over the patch tokens at the same spatial position
   (``MultiHeadAttention`` over axis 1) and a ``Dense`` projection (``temporal_fc``), added;
2. spatial attention over the class token and the patch tokens of each frame (over axis 2),
   added, the class token's update averaged over frames (``AveragePooling2D`` over frames,
   ``UpSampling2D`` back to one copy per frame);
3. an MLP, added;

then a LayerNormalization, the class token (the mean of its equal copies) and
``Dense(softmax)``. All attention and MLP branches are pre-norm.

Layers: Conv3D, Reshape, Embedding (class token and position tables, at indices computed by
``keras.ops`` calls), Concatenate, Add, LayerNormalization, MultiHeadAttention, Dense (gelu,
linear, softmax), Cropping2D, AveragePooling2D, UpSampling2D, Flatten and, with ``dropout``,
Dropout (see :mod:`~kvlrp.models.builders.transformer`). The official model's stochastic
depth (drop path 0.1) has no standard Keras layer and is left out (no parameters).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from kvlrp.models.builders.common import check_num_classes, classifier, clip_input
from kvlrp.models.builders.transformer import (
    add_class_token,
    add_positions,
    attention,
    check_width,
    layer_norm,
    mlp,
    token_at,
)


def timesformer(
    num_classes: int,
    input_shape: Sequence[int] = (8, 224, 224, 3),
    patch: int = 16,
    dim: int = 768,
    heads: int = 12,
    mlp_dim: int = 3072,
    depth: int = 12,
    dropout: float = 0.0,
    bias: bool = True,
    name: str = "timesformer",
) -> keras.Model:
    """TimeSformer (divided space-time attention); the defaults are TimeSformer-Base (the
    arguments every builder takes: :mod:`~kvlrp.models.builders.common`).

    Parameters
    ----------
    patch
        Height and width of a patch (the embedding's kernel and stride per frame).
    dim, heads, mlp_dim
        Token width, attention heads (``dim`` a multiple of it) and hidden width of the MLPs.
    depth
        Number of blocks.
    dropout
        Dropout rate before the classifier.
    bias
        ``False``: no biases, no LayerNormalization offsets, class token and position tables
        initialised to zero.
    """
    num_classes = check_num_classes(num_classes, name)
    check_width(dim, heads, mlp_dim, name)
    for what, value in (("patch", patch), ("depth", depth)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name}: {what} must be a positive int, got {value!r}")
    inputs = clip_input(input_shape, name, min_size=patch)
    x = layers.Conv3D(dim, (1, patch, patch), strides=(1, patch, patch), use_bias=bias,
                      name="patches")(inputs)
    frames, height, width = x.shape[1:4]
    x = layers.Reshape((frames, height * width, dim), name="tokens")(x)
    x = add_positions(x, 1, "time_positions", bias)
    x = add_class_token(x, 2, "class_token", bias)
    x = add_positions(x, 2, "space_positions", bias)
    for index in range(int(depth)):
        x = _divided_block(x, heads, mlp_dim, f"block{index}", bias)
    x = layer_norm(x, "final_ln", bias)
    x = layers.AveragePooling2D((frames, 1), name="class_mean")(token_at(x, "class"))
    x = layers.Flatten(name="class_flat")(x)
    return keras.Model(inputs, classifier(x, num_classes, bias, dropout), name=name)


def timesformer_small(
    num_classes: int,
    frames: int = 8,
    size: int = 56,
    patch: int = 8,
    dim: int = 64,
    heads: int = 4,
    mlp_dim: int = 128,
    depth: int = 3,
    channels: int = 3,
    dropout: float = 0.0,
    bias: bool = True,
    name: str = "timesformer_small",
) -> keras.Model:
    """A small TimeSformer (width 64, 4 heads, 3 blocks, 8x8 patches: 179,716 parameters for
    8x56x56 clips and 4 classes); the other arguments as in :func:`timesformer`."""
    return timesformer(num_classes, (frames, size, size, channels), patch=patch, dim=dim,
                       heads=heads, mlp_dim=mlp_dim, depth=depth, dropout=dropout, bias=bias,
                       name=name)


def _divided_block(x, heads: int, mlp_dim: int, name: str, bias: bool):
    """Temporal attention (patches), spatial attention (class token + patches, the class
    token's update averaged over frames), MLP; each added to its input."""
    frames, dim = x.shape[1], x.shape[-1]
    cls = token_at(x, f"{name}_class")
    patches = token_at(x, f"{name}_patches", first=False)
    t = attention(patches, heads, f"{name}_time_attention", bias, axis=1)
    t = layers.Dense(dim, use_bias=bias, name=f"{name}_time_fc")(t)
    patches = layers.Add(name=f"{name}_time_add")([patches, t])
    x = layers.Concatenate(axis=2, name=f"{name}_join")([cls, patches])
    s = attention(x, heads, f"{name}_space_attention", bias, axis=2)
    s_cls = layers.AveragePooling2D((frames, 1), name=f"{name}_class_mean")(
        token_at(s, f"{name}_space_class"))
    s_cls = layers.UpSampling2D((frames, 1), name=f"{name}_class_copies")(s_cls)
    s = layers.Concatenate(axis=2, name=f"{name}_space_join")(
        [s_cls, token_at(s, f"{name}_space_patches", first=False)])
    x = layers.Add(name=f"{name}_space_add")([x, s])
    return layers.Add(name=f"{name}_mlp_add")([x, mlp(x, mlp_dim, f"{name}_mlp", bias)])
