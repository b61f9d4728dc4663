"""Building blocks shared by the video transformers (ViViT, TimeSformer).

Everything is a standard Keras layer or a ``keras.ops`` call recorded in the functional
graph, so a saved model reloads with plain ``keras.saving.load_model`` (safe mode, no kvlrp
import):

- :func:`add_class_token`: a learned class token put before the tokens along one axis: an
  ``Embedding(1, dim)`` looked up at index 0 and joined with ``Concatenate``.
- :func:`add_positions`: a learned position table added to the tokens: ``Embedding(n, dim)``
  looked up at the indices ``0 .. n-1`` along one axis and joined with ``Add`` (which
  broadcasts it over the other axes).
- :func:`encoder_block`: a pre-norm transformer block (LayerNormalization,
  MultiHeadAttention, residual ``Add``; LayerNormalization, ``Dense(gelu)``, ``Dense``,
  residual ``Add``), attending over one axis of a 3D or 4D token tensor.
- :func:`token_at`: the token at index 0 of an axis (``Cropping1D`` / ``Cropping2D``).

The index vectors are computed from the token tensor by ``keras.ops`` calls that ignore its
values (``x[...]`` slicing, ``ones_like`` / ``zeros_like``, ``cumsum``, a subtraction): the
only non-layer nodes of these models. LayerNormalization uses epsilon 1e-6 as the reference
implementations (timm / Flax).
"""

from __future__ import annotations

import keras
from keras import layers, ops

#: LayerNormalization epsilon of the reference implementations.
LN_EPSILON = 1e-6
#: Standard deviation of the truncated-normal initialiser of class tokens and position tables.
TABLE_STDDEV = 0.02


def check_width(dim: int, heads: int, mlp_dim: int, builder: str) -> None:
    """One-line ValueError unless ``dim`` splits into ``heads`` heads and ``mlp_dim >= 1``."""
    for what, value in (("dim", dim), ("heads", heads), ("mlp_dim", mlp_dim)):
        if int(value) != value or value < 1:
            raise ValueError(f"{builder}: {what} must be a positive int, got {value!r}")
    if dim % heads:
        raise ValueError(f"{builder}: dim={dim} must be a multiple of heads={heads}")


def table_initializer(bias: bool) -> keras.initializers.Initializer:
    """Initialiser of class tokens and position tables (zeros for the ``bias=False`` variant:
    no additive term in the untrained network)."""
    if not bias:
        return keras.initializers.Zeros()
    return keras.initializers.TruncatedNormal(stddev=TABLE_STDDEV)


def add_class_token(x, axis: int, name: str, bias: bool = True):
    """``x`` with a learned token of width ``x.shape[-1]`` put first along ``axis``.

    The token is ``Embedding(1, dim)`` (named ``name``) at index 0, one copy for every index
    of the other axes; ``Concatenate`` (``{name}_join``) joins it with the tokens.
    """
    index = _index(x, keep=lambda a: a != axis)
    ids = ops.zeros_like(x[index], dtype="int32")
    token = layers.Embedding(1, x.shape[-1], embeddings_initializer=table_initializer(bias),
                             name=name)(ids)
    return layers.Concatenate(axis=axis, name=f"{name}_join")([token, x])


def add_positions(x, axis: int, name: str, bias: bool = True):
    """``x`` plus a learned position table ``Embedding(x.shape[axis], dim)`` (named ``name``)
    along ``axis``, broadcast over the other axes by ``Add`` (``{name}_add``)."""
    index = _index(x, keep=lambda a: a == axis)
    ids = ops.cumsum(ops.ones_like(x[index], dtype="int32"), axis=axis) - 1
    table = layers.Embedding(x.shape[axis], x.shape[-1],
                             embeddings_initializer=table_initializer(bias), name=name)(ids)
    return layers.Add(name=f"{name}_add")([x, table])


def layer_norm(x, name: str, bias: bool = True):
    """LayerNormalization over the last axis (epsilon 1e-6; no offset if ``bias=False``)."""
    return layers.LayerNormalization(epsilon=LN_EPSILON, center=bias, name=name)(x)


def attention(x, heads: int, name: str, bias: bool = True, axis: int | None = None):
    """LayerNormalization then self-attention over ``axis`` (default: the token axis before
    the channels); returns the residual branch (not yet added)."""
    dim = x.shape[-1]
    y = layer_norm(x, f"{name}_ln", bias)
    # Keras' default for a 4D input attends over axes 1 and 2 jointly: always name one axis
    axes = (len(x.shape) - 2 if axis is None else axis,)
    return layers.MultiHeadAttention(heads, dim // heads, attention_axes=axes, use_bias=bias,
                                     name=name)(y, y)


def mlp(x, mlp_dim: int, name: str, bias: bool = True):
    """LayerNormalization, ``Dense(mlp_dim, gelu)``, ``Dense(dim)``: the residual branch."""
    y = layer_norm(x, f"{name}_ln", bias)
    y = layers.Dense(mlp_dim, activation="gelu", use_bias=bias, name=f"{name}_fc1")(y)
    return layers.Dense(x.shape[-1], use_bias=bias, name=f"{name}_fc2")(y)


def encoder_block(x, heads: int, mlp_dim: int, name: str, bias: bool = True,
                  axis: int | None = None):
    """Pre-norm transformer block: ``x + attention(x)``, then ``+ mlp(.)``; attention over
    ``axis`` (default: the token axis before the channels)."""
    x = layers.Add(name=f"{name}_attention_add")([x, attention(x, heads, f"{name}_attention",
                                                               bias, axis)])
    return layers.Add(name=f"{name}_mlp_add")([x, mlp(x, mlp_dim, f"{name}_mlp", bias)])


def token_at(x, name: str, first: bool = True):
    """The first token along axis 1 of ``[B, n, d]`` (``Cropping1D``) or along axis 2 of
    ``[B, t, n, d]`` (``Cropping2D``), keeping that axis with length 1; ``first=False``: the
    other tokens instead."""
    n = x.shape[-2]
    crop = (0, n - 1) if first else (1, 0)
    if len(x.shape) == 3:
        return layers.Cropping1D(crop, name=name)(x)
    return layers.Cropping2D(((0, 0), crop), name=name)(x)


def _index(x, keep) -> tuple:
    """Index of ``x[...]`` that keeps every non-batch token axis ``a`` with ``keep(a)`` whole,
    the others (and the channels) at index 0 with length 1 (channels dropped)."""
    rank = len(x.shape)
    return ((slice(None),)
            + tuple(slice(None) if keep(a) else slice(0, 1) for a in range(1, rank - 1))
            + (0,))
