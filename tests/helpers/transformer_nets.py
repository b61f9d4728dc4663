"""Small ViViT- and TimeSformer-shaped Keras video transformers for the analyzers tests, the
LXT cross-check (``tests/analyzers/lxt``) and ``benchmarks/bench_attention.py``.

* :func:`vivit`: a tubelet embedding (Conv3D), a learned class token, a learned position
  table added to the tokens, pre-norm blocks (LayerNormalization, MultiHeadAttention,
  residual sum; LayerNormalization, Dense GELU, Dense, residual sum), a final
  LayerNormalization, the class token (or the mean over tokens) and a Dense head.
* :func:`timesformer`: patch embedding per frame, space and time position tables,
  divided space-time attention (attention over frames for each patch, through Permute, then
  over patches for each frame, with ``attention_axes``), an MLP, mean over tokens, a head.

The class token is a custom layer holding a weight (:class:`ClassToken`, concatenated
inside its call) or a learned vector broadcast by a custom layer and joined with
``Concatenate`` (:class:`LearnedToken`); the position table is an ``Embedding`` looked up
inside a custom layer (:class:`PositionalEncoder`, as the keras.io ViViT example does) or a
functional ``Embedding`` of position ids (:class:`PositionIds`) added with ``Add``.
``offsets=False`` gives the bias-free variant: no biases, no LayerNormalization offsets,
position tables and class tokens zero.
"""

from __future__ import annotations

import keras
from keras import ops

L = keras.layers

#: Input clip: frames, height, width, channels.
SHAPE = (4, 8, 8, 3)
_PACKAGE = "analyzers_tests"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LearnedToken(L.Layer):
    """A learned vector broadcast to ``[batch, 1, d]`` (its output ignores the input's values;
    joined with the tokens by ``Concatenate``)."""

    def __init__(self, initializer: str = "random_normal", **kwargs) -> None:
        super().__init__(**kwargs)
        self.initializer = initializer

    def build(self, input_shape) -> None:
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]),
                                     initializer=self.initializer, name="token")

    def call(self, x):
        return ops.broadcast_to(self.token, (ops.shape(x)[0], 1, ops.shape(x)[-1]))

    def get_config(self) -> dict:
        return {**super().get_config(), "initializer": self.initializer}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassToken(LearnedToken):
    """A learned vector put before the tokens ``[batch, n, d] -> [batch, n + 1, d]``."""

    def call(self, x):
        return ops.concatenate([super().call(x), x], axis=1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PositionalEncoder(L.Layer):
    """Tokens plus a learned position table (an ``Embedding`` of ``arange(n)``), as in the
    keras.io ViViT example."""

    def __init__(self, initializer: str = "random_normal", **kwargs) -> None:
        super().__init__(**kwargs)
        self.initializer = initializer

    def build(self, input_shape) -> None:
        self.table = L.Embedding(input_shape[1], input_shape[2],
                                 embeddings_initializer=self.initializer)
        self.table.build((input_shape[1],))
        self.positions = ops.arange(input_shape[1])

    def call(self, x):
        return x + self.table(self.positions)

    def get_config(self) -> dict:
        return {**super().get_config(), "initializer": self.initializer}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PositionIds(L.Layer):
    """``arange(n)`` along axis ``axis`` of the input, shaped to broadcast against it
    (int32; the input's values are not read)."""

    def __init__(self, axis: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, x):
        n = x.shape[self.axis]
        shape = [1] * (len(x.shape) - 1)
        shape[self.axis] = n
        return ops.reshape(ops.arange(n, dtype="int32"), shape)

    def compute_output_spec(self, x):
        shape = [1] * (len(x.shape) - 1)
        shape[self.axis] = x.shape[self.axis]
        return keras.KerasTensor(tuple(shape), dtype="int32")

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


def _init(offsets: bool) -> str:
    return "random_normal" if offsets else "zeros"


def _mlp(h, dim: int, offsets: bool, name: str):
    m = L.LayerNormalization(center=offsets, name=f"{name}_ln")(h)
    m = L.Dense(2 * dim, activation="gelu", use_bias=offsets, name=f"{name}_fc1")(m)
    m = L.Dense(dim, use_bias=offsets, name=f"{name}_fc2")(m)
    return L.Add(name=f"{name}_sum")([h, m])


def vivit(offsets: bool = True, dim: int = 16, heads: int = 2, depth: int = 2, seed: int = 0,
          class_token: str = "layer", pool: str = "class", shape: tuple = SHAPE,
          tubelet: tuple = (2, 4, 4)) -> keras.Model:
    """A ViViT-shaped classifier of 3 classes (see module docstring).

    ``class_token``: ``"layer"`` (:class:`ClassToken`) or ``"concatenate"``
    (:class:`LearnedToken` and ``Concatenate``); ``pool``: ``"class"`` (read the class token
    with a Lambda-free slice: a Cropping1D) or ``"mean"`` (GlobalAveragePooling1D).
    """
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape, name="clip")
    h = L.Conv3D(dim, tubelet, strides=tubelet, use_bias=offsets, name="tubelets")(inp)
    h = L.Reshape((-1, dim), name="tokens")(h)
    if class_token == "layer":
        h = ClassToken(_init(offsets), name="class_token")(h)
    else:
        token = LearnedToken(_init(offsets), name="class_token")(h)
        h = L.Concatenate(axis=1, name="with_class_token")([token, h])
    h = PositionalEncoder(_init(offsets), name="positions")(h)
    for k in range(depth):
        a = L.LayerNormalization(center=offsets, name=f"block{k}_ln")(h)
        a = L.MultiHeadAttention(heads, dim // heads, use_bias=offsets,
                                 name=f"block{k}_attention")(a, a)
        h = L.Add(name=f"block{k}_attention_sum")([h, a])
        h = _mlp(h, dim, offsets, f"block{k}_mlp")
    h = L.LayerNormalization(center=offsets, name="final_ln")(h)
    if pool == "class":
        h = L.Flatten(name="class")(L.Cropping1D((0, h.shape[1] - 1), name="class_crop")(h))
    else:
        h = L.GlobalAveragePooling1D(name="mean")(h)
    out = L.Dense(3, use_bias=offsets, name="head")(h)
    return keras.Model(inp, out, name="vivit_test")


def timesformer(offsets: bool = True, dim: int = 16, heads: int = 2, depth: int = 1,
                seed: int = 0, shape: tuple = SHAPE, patch: tuple = (1, 4, 4)) -> keras.Model:
    """A TimeSformer-shaped classifier of 3 classes with divided space-time attention (see
    module docstring)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape, name="clip")
    h = L.Conv3D(dim, patch, strides=patch, use_bias=offsets, name="patches")(inp)
    frames = h.shape[1]
    h = L.Reshape((frames, -1, dim), name="tokens")(h)  # [batch, frames, patches, dim]
    init = _init(offsets)
    space = L.Embedding(h.shape[2], dim, embeddings_initializer=init, name="space_table")(
        PositionIds(axis=2, name="space_ids")(h))
    time = L.Embedding(frames, dim, embeddings_initializer=init, name="time_table")(
        PositionIds(axis=1, name="time_ids")(h))
    h = L.Add(name="with_positions")([h, space, time])
    for k in range(depth):
        t = L.LayerNormalization(center=offsets, name=f"block{k}_time_ln")(h)
        t = L.Permute((2, 1, 3), name=f"block{k}_by_patch")(t)  # [batch, patches, frames, d]
        t = L.MultiHeadAttention(heads, dim // heads, attention_axes=(2,), use_bias=offsets,
                                 name=f"block{k}_time_attention")(t, t)
        t = L.Permute((2, 1, 3), name=f"block{k}_by_frame")(t)
        h = L.Add(name=f"block{k}_time_sum")([h, t])
        s = L.LayerNormalization(center=offsets, name=f"block{k}_space_ln")(h)
        s = L.MultiHeadAttention(heads, dim // heads, attention_axes=(2,), use_bias=offsets,
                                 name=f"block{k}_space_attention")(s, s)
        h = L.Add(name=f"block{k}_space_sum")([h, s])
        h = _mlp(h, dim, offsets, f"block{k}_mlp")
    h = L.LayerNormalization(center=offsets, name="final_ln")(h)
    h = L.Reshape((-1, dim), name="all_tokens")(h)
    h = L.GlobalAveragePooling1D(name="mean")(h)
    out = L.Dense(3, use_bias=offsets, name="head")(h)
    return keras.Model(inp, out, name="timesformer_test")


__all__ = ["SHAPE", "ClassToken", "LearnedToken", "PositionIds", "PositionalEncoder",
           "timesformer", "vivit"]
