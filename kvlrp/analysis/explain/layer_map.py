"""Where a Keras model's intermediate outputs sit on the input clip's frame axis.

:func:`frame_centres` walks the model's graph (nested models inlined) from the input, whose
element ``[t, h, w, c]`` sits at frame ``t``, and carries for every layer output a **centre
array**: one frame centre per element, stored broadcastable to the output's shape (an axis
along which the centre does not change has size 1, so a feature map ``[T, H, W, C]`` of a
convolution is kept as ``[T, 1, 1, 1]``). A window layer (convolution, pooling) puts output
``j`` at the centre of its nominal input window ``stride * j - pad_left + (kernel - 1) *
dilation / 2`` (TensorFlow's ``same`` padding puts the odd padding on the right), read off
the input's centres by linear interpolation (extrapolated into the padding); padding,
cropping and upsampling shift or repeat positions; reshapes, flattening, permutes and
concatenations move the centres with the elements; an element-wise or per-position layer
keeps them; a layer that mixes every position (global pooling, a dense layer over a flat
vector) gets their mean (one time cell: no frame resolution left). A static ``keras.ops``
slice (``GetItem``) slices the centres alike; an ``Embedding`` (a class token or position
table looked up at indices computed from the shape) is a constant, from no frame (NaN);
``MultiHeadAttention`` whose value tokens along the attention axes sit at one frame (spatial
attention within a frame) keeps that frame, attention across frames gets no rule. A layer
no rule covers that changes the shape gets no centres, and neither does anything computed
from it.

The measures (:mod:`kvlrp.analysis.measures.layer_profiles`) turn the relevance arriving at
a layer's output and its centres into relevance per input frame.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kvlrp.analysis.measures.layer_profiles import compress, time_axis, time_cells
from kvlrp.infra.compat import functional_nodes

__all__ = ["LayerMap", "frame_centres", "window_centres"]

_WINDOW_LAYERS = ("Conv", "Pooling", "DepthwiseConv", "SeparableConv")
_GLOBAL = "Global"
_MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")


@dataclass(frozen=True)
class LayerMap:
    """The centres of every layer output of a model (by Keras layer name, the input by its
    name), and why the others have none."""

    centres: dict[str, np.ndarray]
    #: Layer name -> why its output has no centres.
    unmapped: dict[str, str]
    #: Frames of the input clip.
    length: int

    def cells(self, name: str) -> int:
        """Distinct frame centres (time cells) of layer ``name``'s output."""
        return int(time_cells(self.centres[name])[1].size)

    def axis(self, name: str) -> int | None:
        """The axis of layer ``name``'s output (batch excluded) along which it moves in
        time, None where it does not."""
        return time_axis(self.centres[name])


def window_centres(centres: np.ndarray, axis: int, out_size: int, kernel: int, stride: int,
                   padding: str, dilation: int = 1) -> np.ndarray:
    """Centres after a convolution or pooling window along ``axis`` of ``centres`` (an axis
    of size 1 stays constant): output ``j`` sits at the centre of its nominal input window
    (``padding`` ``same`` / ``valid`` / ``causal``, as TensorFlow pads)."""
    n = centres.shape[axis]
    if n == 1:
        return centres
    span = (kernel - 1) * dilation
    if padding == "same":
        pad_left = max((out_size - 1) * stride + span + 1 - n, 0) // 2
    elif padding == "causal":
        pad_left = span
    else:
        pad_left = 0
    u = stride * np.arange(out_size) - pad_left + span / 2.0
    return _interpolate(centres, axis, u)


def _interpolate(centres: np.ndarray, axis: int, u: np.ndarray) -> np.ndarray:
    """``centres`` read at the fractional indices ``u`` along ``axis`` (linear, and linearly
    extrapolated beyond either end)."""
    n = centres.shape[axis]
    if n == 1:
        return np.take(centres, np.zeros(len(u), dtype=int), axis=axis)
    i0 = np.clip(np.floor(u).astype(int), 0, n - 2)
    frac = (u - i0).reshape([-1 if a == axis else 1 for a in range(centres.ndim)])
    low, high = np.take(centres, i0, axis=axis), np.take(centres, i0 + 1, axis=axis)
    return low * (1.0 - frac) + high * frac


def frame_centres(model: Any, length: int | None = None) -> LayerMap:
    """The :class:`LayerMap` of a Keras model whose input is ``[batch, frames, ...]``
    (``length``: the frames, default the input shape's)."""
    shape = tuple(model.inputs[0].shape) if hasattr(model, "inputs") and model.inputs else None
    if shape is None or len(shape) < 3:
        raise ValueError(f"model {model.name!r} has no input of shape [batch, frames, ...]")
    length = int(length or shape[1])
    start = np.arange(length, dtype=np.float64).reshape([1, length] + [1] * (len(shape) - 2))
    walker = _Walker()
    walker.centres[model.inputs[0].name] = start[0]
    walker.walk(model, [start], [(1, length, *shape[2:])])
    return LayerMap(centres=walker.centres, unmapped=walker.unmapped, length=length)


class _Walker:
    """Carries centre arrays (with a leading batch axis of size 1) through a model."""

    def __init__(self) -> None:
        self.centres: dict[str, np.ndarray] = {}
        self.unmapped: dict[str, str] = {}

    def record(self, name: str, c: np.ndarray | None, reason: str) -> None:
        if c is None:
            self.unmapped.setdefault(name, reason)
        else:
            self.centres[name] = compress(c[0])

    def walk(self, model: Any, inputs: list[np.ndarray | None],
             shapes: list[tuple]) -> list[np.ndarray | None]:
        """Centres of ``model``'s outputs from those of its inputs (recording each layer's)."""
        import keras

        if isinstance(model, keras.Sequential):
            current, shape = inputs[0], shapes[0]
            for layer in model.layers:
                out_shape = tuple(layer.compute_output_shape(shape))
                current = self.layer(layer, [current], [shape], out_shape)
                shape = out_shape
            return [current]
        nodes = functional_nodes(model)
        if nodes is None:
            raise ValueError(f"model {model.name!r} is not a functional or Sequential Keras "
                             f"model: its layers cannot be placed in time")
        tensors = {id(t): (c, s) for t, c, s in zip(model.inputs, inputs, shapes)}
        for node in nodes:
            if not node.operation or node.is_input:
                continue
            ins = [tensors.get(id(t), (None, tuple(t.shape))) for t in node.input_tensors]
            outs = list(node.outputs)
            out_shape = tuple(outs[0].shape)
            result = (self.layer(node.operation, [c for c, _ in ins], [s for _, s in ins],
                                 out_shape, getattr(node, "arguments", None))
                      if len(outs) == 1 else None)
            for t in outs:
                tensors[id(t)] = (result, tuple(t.shape))
        return [tensors.get(id(t), (None, None))[0] for t in model.outputs]

    def layer(self, layer: Any, cs: list[np.ndarray | None], in_shapes: list[tuple],
              out_shape: tuple, arguments: Any = None) -> np.ndarray | None:
        """The centres of one layer call's output (recorded under the layer's name;
        ``arguments``: the call's arguments, where the graph keeps them)."""
        import keras

        if isinstance(layer, keras.Model):
            out = self.walk(layer, cs, in_shapes)[0]
            self.record(layer.name, out, f"nested model {layer.name!r}: an inner layer could "
                                         f"not be placed in time")
            return out
        if any(c is None for c in cs):
            self.record(layer.name, None, "computed from an output that could not be placed "
                                          "in time")
            return None
        try:
            out = _map_layer(layer, cs, in_shapes, out_shape, arguments)
        except Exception as err:  # a layer whose attributes are not as expected
            out, why = None, f"{type(err).__name__}: {err}"
        else:
            why = (f"no rule places the output of {type(layer).__name__} "
                   f"{tuple(out_shape[1:])} in time")
        self.record(layer.name, out, why)
        return out


def _size(value: Any) -> int:
    return 1 if value is None else int(value)


def _map_layer(layer: Any, cs: list[np.ndarray], in_shapes: list[tuple],
               out_shape: tuple, arguments: Any = None) -> np.ndarray | None:
    """Output centres of one (non-model) layer, None where no rule applies (each axis along
    which they do not change kept at size 1)."""
    out = _map_uncompressed(layer, cs, in_shapes, out_shape, arguments)
    return None if out is None else compress(out)


def _map_uncompressed(layer: Any, cs: list[np.ndarray], in_shapes: list[tuple],
                      out_shape: tuple, arguments: Any = None) -> np.ndarray | None:
    kind = type(layer).__name__
    c, in_shape = cs[0], in_shapes[0]
    rank = len(out_shape)
    if kind == "GetItem":  # x[key] (keras.ops slicing): the centres sliced alike
        key = _static_key(arguments)
        if key is None:
            return None
        full = np.broadcast_to(c, (c.shape[0], *[_size(d) for d in in_shape[1:]]))
        return full[key]
    if kind == "Embedding" and rank == len(in_shape) + 1:
        # a learned table looked up at integer indices (a class token, a position table):
        # a constant, from no frame
        return np.full((1,) * rank, np.nan)
    if kind == "MultiHeadAttention":
        return _attention(layer, cs, in_shapes, out_shape)
    if kind == "TimeDistributed":
        return _time_distributed(layer, c, in_shape, out_shape)
    if kind in ("Concatenate",):
        axis = layer.axis % rank
        lead = max(ci.shape[0] for ci in cs)
        full = [np.broadcast_to(ci, (lead, *[_size(d) for d in s[1:]]))
                for ci, s in zip(cs, in_shapes)]
        return np.concatenate(full, axis=axis)
    if kind in _MERGES or len(cs) > 1:
        if kind not in _MERGES:
            return None
        # a factor without time resolution (a squeeze-excitation gate, a global context)
        # does not move the other inputs' positions
        resolved = [ci for ci in cs if compress(ci[:1]).size > 1] or cs
        full = np.broadcast_arrays(*resolved)
        return np.nanmean(np.stack(full), axis=0) if not all(
            np.array_equal(full[0], f, equal_nan=True) for f in full[1:]) else full[0]
    if kind.startswith(_GLOBAL):
        return _mixed(c, rank)
    if kind.startswith(("ZeroPadding", "Cropping", "UpSampling")):
        return _shift(layer, kind, c, out_shape)
    if any(k in kind for k in _WINDOW_LAYERS) and hasattr(layer, "strides"):
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            return None
        sizes = layer.kernel_size if hasattr(layer, "kernel_size") else layer.pool_size
        dilation = getattr(layer, "dilation_rate", (1,) * len(sizes))
        out = c
        for a in range(len(sizes)):
            out = window_centres(out, a + 1, _size(out_shape[a + 1]), int(sizes[a]),
                                 int(layer.strides[a]), str(layer.padding).lower(),
                                 int(dilation[a]))
        return out
    if kind in ("Flatten", "Reshape"):
        full = np.broadcast_to(c, (c.shape[0], *[_size(d) for d in in_shape[1:]]))
        return full.reshape((c.shape[0], *[_size(d) for d in out_shape[1:]]))
    if kind == "Permute":
        return np.transpose(c, (0, *layer.dims))
    if tuple(out_shape) == tuple(in_shape):  # element-wise: activations, normalisation, ...
        return c
    if rank == len(in_shape) and tuple(out_shape[:-1]) == tuple(in_shape[:-1]):
        # a per-position map of the last axis (a dense layer over features): centres kept
        # if constant along that axis, else every position mixed
        return c if c.shape[-1] == 1 else _mixed(c, rank)
    if kind == "Dense" or rank == 2:
        return _mixed(c, rank)
    return None


def _attention(layer: Any, cs: list[np.ndarray], in_shapes: list[tuple],
               out_shape: tuple) -> np.ndarray | None:
    """Attention mixes the value's tokens along its attention axes. Where those tokens sit at
    one frame (or none: a class token), as in spatial attention within a frame, every output
    token along those axes sits there; attention across frames gets no rule (where its mixed
    tokens sit is a choice, not a fact: at a mean centre their relevance would go to the
    middle frames)."""
    value, shape = (cs[1], in_shapes[1]) if len(cs) > 1 else (cs[0], in_shapes[0])
    rank = len(shape)
    if len(out_shape) != rank:
        return None
    axes = getattr(layer, "attention_axes", None)
    axes = (tuple(range(1, rank - 1)) if axes is None
            else tuple(int(a) % rank for a in axes))
    v = np.broadcast_to(value, (value.shape[0], *[_size(d) for d in shape[1:]]))
    if not np.array_equal(np.broadcast_to(v[..., :1], v.shape), v, equal_nan=True):
        return None  # centres change along the features
    v = v[..., :1]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no frame
        low = np.nanmin(v, axis=axes, keepdims=True)
        high = np.nanmax(v, axis=axes, keepdims=True)
    if not np.array_equal(low, high, equal_nan=True):
        return None
    return np.broadcast_to(low, (1, *[_size(d) for d in out_shape[1:-1]], 1))


def _static_key(arguments: Any) -> tuple | None:
    """The key of a ``GetItem`` call when it is static (ints, slices with int bounds, None,
    Ellipsis) and keeps the batch axis whole (a leading ``slice(None)``); else None."""
    if arguments is None:
        return None
    args = list(getattr(arguments, "args", ()))
    key = args[1] if len(args) > 1 else getattr(arguments, "kwargs", {}).get("key")
    key = tuple(key) if isinstance(key, (list, tuple)) else (key,)

    def static(k: Any) -> bool:
        if isinstance(k, slice):
            return all(v is None or isinstance(v, (int, np.integer))
                       for v in (k.start, k.stop, k.step))
        return k is None or k is Ellipsis or isinstance(k, (int, np.integer))

    if not key or key[0] != slice(None) or not all(static(k) for k in key):
        return None
    return key


def _mixed(c: np.ndarray, rank: int) -> np.ndarray:
    """One centre for every element (of each entry of the leading axis, the batch): the
    mean of the finite input centres."""
    flat = c.reshape(c.shape[0], -1)
    finite = np.isfinite(flat)
    with np.errstate(invalid="ignore"):
        value = np.where(finite, flat, 0.0).sum(axis=1) / finite.sum(axis=1)
    return value.reshape((c.shape[0],) + (1,) * (rank - 1))


def _shift(layer: Any, kind: str, c: np.ndarray, out_shape: tuple) -> np.ndarray:
    """Zero padding and cropping shift the indices; upsampling repeats them."""
    out = c
    if kind.startswith("UpSampling"):
        size = layer.size if isinstance(layer.size, (tuple, list)) else (layer.size,)
        for a, s in enumerate(size):
            if out.shape[a + 1] > 1:
                out = np.repeat(out, int(s), axis=a + 1)
        return out
    attr = layer.padding if kind.startswith("ZeroPadding") else layer.cropping
    pairs = _pairs(attr)
    sign = -1 if kind.startswith("ZeroPadding") else 1
    for a, (left, _) in enumerate(pairs):
        if out.shape[a + 1] > 1:
            u = np.arange(_size(out_shape[a + 1])) + sign * int(left)
            out = _interpolate(out, a + 1, u.astype(np.float64))
    return out


def _pairs(attr: Any) -> Sequence[tuple[int, int]]:
    """``(left, right)`` per spatial axis from a padding / cropping attribute."""
    if isinstance(attr, int):
        return [(attr, attr)]
    out = []
    for item in attr:
        out.append((int(item), int(item)) if isinstance(item, int)
                   else (int(item[0]), int(item[1])))
    return out


def _time_distributed(layer: Any, c: np.ndarray, in_shape: tuple,
                      out_shape: tuple) -> np.ndarray | None:
    """The inner layer on every frame: the time axis moves into the batch and back."""
    steps = c.shape[1]
    inner_in = (1, *in_shape[2:])
    inner_out = (1, *out_shape[2:])
    inner = c.reshape((steps, *c.shape[2:]))
    mapped = _map_layer(layer.layer, [inner], [inner_in], inner_out)
    if mapped is None:
        return None
    return mapped.reshape((1, mapped.shape[0], *mapped.shape[1:]))
