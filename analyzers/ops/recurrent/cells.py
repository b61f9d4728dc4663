"""The cells of the recurrent layers: one time step forward, and the same step backward with
the LRP rules of Arras et al. 2017 ("Explaining Recurrent Neural Network Predictions in
Sentiment Analysis").

Backward, every gate (a sigmoid / hard_sigmoid output multiplying a signal) is held constant:
the product gives all relevance to the signal and none to the gate (as the engine's
:class:`~analyzers.rules.GateRule` does); the candidate's and the output's activation pass
relevance unchanged (the identity rule); what is left are linear maps and sums:

* a **linear part**: a pre-activation that Keras computes as one sum of kernel maps before any
  gate, ``W x_t + U h_{t-1} + b``, is one linear layer with the two inputs ``[x_t, h_{t-1}]``
  (:class:`CellDenseOp` / :class:`CellConvOp`, the kernels stacked along the input axis); the
  composite's rule for the layer decomposes it (rule ``"linear"``);
* a **sum**: ``c_t = f c_{t-1} + i g`` (LSTM), ``h_t = z h_{t-1} + (1 - z) hh`` (GRU) and
  GRU's ``(W x + b) + r (U h + b')`` with ``reset_after=True`` (where the gate sits inside the
  pre-activation) are an ``Add`` of the gated terms (:class:`CellSumOp`); the composite's
  ``Add`` rule splits them (rule ``"sum"``).

The initial state is zero and is no input: at a sample's first step the linear parts are the
maps of ``x_t`` alone and the state sums have one term. Cells read their weights once per call
(:meth:`Cell.weights`); ``step`` and ``relevance`` take them, so that a rule can walk the
loop without reading variables again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from analyzers.ops.activations import ELEMENTWISE, GATES, activation_name, resolve_activation
from analyzers.ops.base import LayerOp, Tensor
from analyzers.ops.kernel import ConvOp, DenseOp
from analyzers.ops.structural import AddOp
from analyzers.rules import ZRule

L = keras.layers
#: ``rule(op, xs, r) -> [relevance per input]``, as :class:`~analyzers.rules.Rule` is called.
RuleFn = Callable[..., list]
State = tuple[Tensor, ...]


# -- the linear parts and the sums -----------------------------------------------------
class _CellMap:
    """A pre-activation of a cell as a linear map of ``[x_t]`` or ``[x_t, h_{t-1}]``:
    ``sum_k map_k(xs[k], kernel_k) + bias``, the blocks ``kernel_k`` stacked along the
    kernel's input axis. Holds its kernel and bias as tensors (``None``: a part, which only
    chooses the rule). ``reads_input``: the map reads ``x_t`` (so it is an input layer where
    its recurrent layer is one); False for a map of ``h_{t-1}`` alone."""

    def __init__(self, layer: Any, name: str, kernel: Tensor | None = None,
                 bias: Tensor | None = None, owner: Any = None,
                 reads_input: bool = True) -> None:
        super().__init__(layer, name, activation=None)
        self._kernel = kernel
        self._bias = bias
        self.reads_input = reads_input
        if owner is not None:  # the layer composites see (e.g. a Bidirectional wrapper)
            self.layer = owner

    @property
    def kernel(self) -> Tensor:
        return self._kernel

    @property
    def bias(self) -> Tensor | None:
        return self._bias

    def _map(self, k: int, x: Tensor, kernel: Tensor) -> Tensor:
        raise NotImplementedError

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        blocks = [kernel]
        if len(xs) > 1:
            sizes = [int(x.shape[self.input_channel_axis]) for x in xs]
            blocks = tf.split(kernel, sizes, axis=self.kernel_input_axis)
        terms = [self._map(k, x, w) for k, (x, w) in enumerate(zip(xs, blocks))]
        z = tf.add_n(terms) if len(terms) > 1 else terms[0]
        return z if bias is None else self._add_bias(z, bias)


class CellDenseOp(_CellMap, DenseOp):
    """A pre-activation of an LSTM / GRU / SimpleRNN cell: ``x_t @ W + h_{t-1} @ U + b``
    (kernels stacked along axis 0)."""

    def _map(self, k: int, x: Tensor, kernel: Tensor) -> Tensor:
        return ops.matmul(x, kernel)


class CellConvOp(_CellMap, ConvOp):
    """A pre-activation of a ConvLSTM cell: the input convolution of ``x_t`` (the layer's
    strides, padding and dilation) plus the recurrent convolution of ``h_{t-1}`` (stride 1,
    ``same``), kernels stacked along the input-channel axis (-2)."""

    def __init__(self, layer: Any, name: str, kernel: Tensor | None = None,
                 bias: Tensor | None = None, owner: Any = None) -> None:
        # the cell has the geometry; composites see the layer
        super().__init__(layer.cell, name, kernel, bias, owner or layer)

    def _add_bias(self, z: Tensor, bias: Tensor | None) -> Tensor:
        return self._add_channel_bias(z, bias)

    def _map(self, k: int, x: Tensor, kernel: Tensor) -> Tensor:
        if k == 0:
            return ConvOp.linear(self, [x], kernel, None)
        return ops.conv(x, kernel, strides=1, padding="same", data_format=self.data_format)


class CellSumOp(AddOp):
    """A sum of gated terms inside a cell (``f c' + i g``, ``z h' + (1 - z) hh``); the
    composite's ``Add`` rule splits it (in proportion to the terms by default). Never an
    input layer."""

    reads_input = False

    def standard_rule(self, max_pooling: str) -> Any:
        return ZRule()


# -- the cells -----------------------------------------------------------------------------
def _activation(cell: Any, attr: str, allowed: tuple[str, ...], what: str
                ) -> Callable[[Tensor], Tensor]:
    name = activation_name(getattr(cell, attr))
    if name not in allowed:
        raise ValueError(f"{attr} '{name}' ({what}: {', '.join(allowed)})")
    _, fn = resolve_activation(getattr(cell, attr))
    return (lambda z: z) if fn is None else fn


@dataclass(frozen=True)
class Weights:
    """A cell's kernel ``[in, k*n]``, recurrent kernel ``[n, k*n]`` and bias tensors, and the
    linear parts the relevance walk decomposes, built once per call (``maps``: by name, e.g.
    ``"first"``, the map of ``x_t`` alone, and ``"step"``, the map of ``[x_t, h_{t-1}]``)."""

    kernel: Tensor
    recurrent: Tensor
    bias: Tensor | None
    maps: dict[str, LayerOp]


class Cell:
    """One step of a recurrent layer (subclasses: :class:`LSTMCell`, :class:`GRUCell`,
    :class:`SimpleRNNCell`). ``owner`` is the layer its parts report to composites (default
    ``layer``; a Bidirectional wrapper), ``label`` the prefix of their names.

    ``step(w, x, state)`` returns ``(new state, record)``; ``state`` is ``None`` at a
    sample's first step (the zero initial state, no input). ``relevance(w, record, r_state,
    rules, fresh)`` maps the relevance of the new state to ``(R of x_t, R of the previous
    state)``; ``fresh`` says the step was the first (no previous state). The state's first
    tensor is the output ``h_t``.
    """

    #: linear parts are convolutions (ConvLSTM)
    conv = False

    def __init__(self, layer: Any, owner: Any = None, label: str | None = None) -> None:
        cell = layer.cell
        self.layer = layer
        self.units = int(getattr(cell, "units", 0) or getattr(cell, "filters", 0))
        self.act = _activation(cell, "activation", ("linear",) + ELEMENTWISE,
                               "passed by the identity rule; supported")
        self.use_bias = bool(cell.use_bias)
        cls = CellConvOp if self.conv else CellDenseOp
        #: the ops whose rules the composite chooses: a linear part and a sum
        owner, label = owner or layer, label or layer.name
        self.parts = {"linear": cls(layer, f"{label}/linear", owner=owner),
                      "sum": CellSumOp(owner, name=f"{label}/sum")}

    def weights(self) -> Weights:
        """The cell's weights as tensors (read from the variables on every call) and its
        linear parts."""
        cell = self.layer.cell
        kernel = tf.convert_to_tensor(cell.kernel)
        recurrent = tf.convert_to_tensor(cell.recurrent_kernel)
        bias = tf.convert_to_tensor(cell.bias) if self.use_bias else None
        return Weights(kernel, recurrent, bias, self._maps(kernel, recurrent, bias))

    def _maps(self, kernel: Tensor, recurrent: Tensor, bias: Tensor | None
              ) -> dict[str, LayerOp]:
        """The linear parts (see :class:`Weights`)."""
        raise NotImplementedError

    def _pair(self, kx: Tensor, kh: Tensor, bias: Tensor | None) -> dict[str, LayerOp]:
        """``"first"``: the map of ``x_t`` alone; ``"step"``: of ``[x_t, h_{t-1}]``, the
        kernels stacked along the input axis."""
        cls = CellConvOp if self.conv else CellDenseOp
        name = f"{self.layer.name}/linear"
        stacked = tf.concat([kx, kh], axis=-2 if self.conv else 0)
        return {"first": cls(self.layer, name, kx, bias),
                "step": cls(self.layer, name, stacked, bias)}

    def step(self, w: Weights, x: Tensor, state: State | None) -> tuple[State, Any]:
        raise NotImplementedError

    def relevance(self, w: Weights, record: Any, r_state: State,
                  rules: Mapping[str, RuleFn], fresh: bool) -> tuple[Tensor, State]:
        raise NotImplementedError


def _split_bias(bias: Tensor | None, n: int) -> list[Tensor | None]:
    return [None] * n if bias is None else tf.split(bias, n, axis=-1)


@dataclass(frozen=True)
class _LSTMRecord:
    x: Tensor
    h: Tensor | None
    c: Tensor | None
    i: Tensor
    f: Tensor
    g: Tensor


class LSTMCell(Cell):
    """LSTM (and ConvLSTM, :class:`ConvLSTMCell`): ``i, f, o = gate(.)``, ``g = act(W_g x +
    U_g h + b_g)``, ``c = f c' + i g``, ``h = o act(c)``.

    Backward: ``h = o act(c)``: o constant, act by the identity; ``c = f c' + i g``: the sum
    rule, f and i constant; ``g``: act by the identity, then the linear rule on ``[x, h']``.
    """

    def __init__(self, layer: Any, owner: Any = None, label: str | None = None) -> None:
        super().__init__(layer, owner, label)
        self.gate = _activation(layer.cell, "recurrent_activation", GATES,
                                "gates must be one of")

    def _maps(self, kernel: Tensor, recurrent: Tensor, bias: Tensor | None
              ) -> dict[str, LayerOp]:
        block = 2  # the candidate g among (i, f, g, o)
        return self._pair(tf.split(kernel, 4, axis=-1)[block],
                          tf.split(recurrent, 4, axis=-1)[block], _split_bias(bias, 4)[block])

    def _project(self, w: Weights, x: Tensor, h: Tensor | None) -> Tensor:
        z = ops.matmul(x, w.kernel)
        if h is not None:
            z = z + ops.matmul(h, w.recurrent)
        return z if w.bias is None else z + w.bias

    def step(self, w: Weights, x: Tensor, state: State | None) -> tuple[State, _LSTMRecord]:
        h, c = (None, None) if state is None else state
        z_i, z_f, z_g, z_o = tf.split(self._project(w, x, h), 4, axis=-1)
        i, f, o, g = self.gate(z_i), self.gate(z_f), self.gate(z_o), self.act(z_g)
        c_new = i * g if c is None else f * c + i * g
        return (o * self.act(c_new), c_new), _LSTMRecord(x, h, c, i, f, g)

    def relevance(self, w: Weights, record: _LSTMRecord, r_state: State,
                  rules: Mapping[str, RuleFn], fresh: bool) -> tuple[Tensor, State]:
        r_h, r_c = r_state
        r_c = r_c + r_h  # h = o act(c): o held constant, act by the identity rule
        if fresh:  # c = i g
            r_ig, r_c_prev = r_c, tf.zeros_like(r_c)
        else:  # c = f c' + i g: the sum rule; f held constant
            r_c_prev, r_ig = rules["sum"](self.parts["sum"], [record.f * record.c,
                                                                record.i * record.g], r_c)
        # i held constant; g = act(W x + U h' + b): act by the identity, then the linear rule
        xs = [record.x] if fresh else [record.x, record.h]
        r_in = rules["linear"](w.maps["first" if fresh else "step"], xs, r_ig)
        r_h_prev = tf.zeros_like(r_h) if fresh else r_in[1]
        return r_in[0], (r_h_prev, r_c_prev)


class ConvLSTMCell(LSTMCell):
    """ConvLSTM1D/2D/3D: the LSTM cell with convolutions (input: the layer's strides, padding,
    dilation; recurrent: stride 1, ``same``)."""

    conv = True

    def _project(self, w: Weights, x: Tensor, h: Tensor | None) -> Tensor:
        xs = [x] if h is None else [x, h]
        kernel = w.kernel if h is None else tf.concat([w.kernel, w.recurrent], axis=-2)
        return self.parts["linear"].linear(xs, kernel, w.bias)


@dataclass(frozen=True)
class _GRURecord:
    x: Tensor
    h: Tensor | None
    z: Tensor
    r: Tensor
    cand: Tensor
    x_h: Tensor  # W_h x + b_h (the candidate's input map; reset_after)
    u_h: Tensor | None  # U_h h + b'_h (the candidate's recurrent map; reset_after)


class GRUCell(Cell):
    """GRU: ``z, r = gate(.)``, ``h = z h' + (1 - z) hh`` with ``hh = act(W_h x + U_h (r h') +
    b_h)`` (``reset_after=False``) or ``act(W_h x + b_h + r (U_h h' + b'_h))`` (True).

    Backward: ``h = z h' + (1 - z) hh``: the sum rule, z constant; hh: act by the identity;
    then ``reset_after=False``: the linear rule on ``[x, r h']``, r constant;
    ``reset_after=True``: the sum rule on ``(W_h x + b_h) + r (U_h h' + b'_h)``, r constant,
    and the linear rule on each map (rule ``"recurrent"`` for the map of ``h'``, which is no
    input layer).
    """

    def __init__(self, layer: Any, owner: Any = None, label: str | None = None) -> None:
        super().__init__(layer, owner, label)
        self.gate = _activation(layer.cell, "recurrent_activation", GATES,
                                "gates must be one of")
        self.reset_after = bool(layer.cell.reset_after)
        if self.reset_after:  # U_h h' + b'_h: a map of the state alone
            self.parts["recurrent"] = CellDenseOp(
                layer, f"{label or layer.name}/recurrent", owner=owner or layer,
                reads_input=False)

    def _biases(self, bias: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """(input bias, recurrent bias), each ``[3n]`` or None."""
        if bias is None:
            return None, None
        if self.reset_after:
            return bias[0], bias[1]
        return bias, None

    def _maps(self, kernel: Tensor, recurrent: Tensor, bias: Tensor | None
              ) -> dict[str, LayerOp]:
        """The candidate's maps: ``"first"`` / ``"step"`` (reset_after=False), or
        ``"input"`` (``W_h x + b_h``) and ``"recurrent"`` (``U_h h' + b'_h``)."""
        kx, kh = tf.split(kernel, 3, axis=-1)[2], tf.split(recurrent, 3, axis=-1)[2]
        b_in, b_rec = (_split_bias(b, 3)[2] for b in self._biases(bias))
        if not self.reset_after:
            return self._pair(kx, kh, b_in)
        name = self.layer.name
        return {"input": CellDenseOp(self.layer, f"{name}/linear", kx, b_in),
                "recurrent": CellDenseOp(self.layer, f"{name}/recurrent", kh, b_rec)}

    def step(self, w: Weights, x: Tensor, state: State | None) -> tuple[State, _GRURecord]:
        h = None if state is None else state[0]
        b_in, b_rec = self._biases(w.bias)
        mx = ops.matmul(x, w.kernel)
        mx = mx if b_in is None else mx + b_in
        x_z, x_r, x_h = tf.split(mx, 3, axis=-1)
        n = self.units
        if self.reset_after:
            mh = tf.zeros_like(mx) if h is None else ops.matmul(h, w.recurrent)
            mh = mh if b_rec is None else mh + b_rec
            h_z, h_r, u_h = tf.split(mh, 3, axis=-1)
            z, r = self.gate(x_z + h_z), self.gate(x_r + h_r)
            cand = self.act(x_h + r * u_h)
        else:
            if h is None:
                z, r, cand = self.gate(x_z), self.gate(x_r), self.act(x_h)
            else:
                h_z, h_r = tf.split(ops.matmul(h, w.recurrent[:, : 2 * n]), 2, axis=-1)
                z, r = self.gate(x_z + h_z), self.gate(x_r + h_r)
                cand = self.act(x_h + ops.matmul(r * h, w.recurrent[:, 2 * n:]))
            u_h = None
        h_new = (1.0 - z) * cand if h is None else z * h + (1.0 - z) * cand
        return (h_new,), _GRURecord(x, h, z, r, cand, x_h, u_h)

    def relevance(self, w: Weights, record: _GRURecord, r_state: State,
                  rules: Mapping[str, RuleFn], fresh: bool) -> tuple[Tensor, State]:
        (r_h,) = r_state
        rec = record
        if fresh:  # h = (1 - z) hh
            r_cand, r_h_prev = r_h, tf.zeros_like(r_h)
        else:  # h = z h' + (1 - z) hh: the sum rule; z held constant
            r_h_prev, r_cand = rules["sum"](self.parts["sum"],
                                            [rec.z * rec.h, (1.0 - rec.z) * rec.cand], r_h)
        # hh = act(pre): act by the identity
        if not self.reset_after:
            xs = [rec.x] if fresh else [rec.x, rec.r * rec.h]
            r_in = rules["linear"](w.maps["first" if fresh else "step"], xs, r_cand)
            if not fresh:  # r held constant: all relevance of r h' to h'
                r_h_prev = r_h_prev + r_in[1]
            return r_in[0], (r_h_prev,)
        if fresh and w.bias is None:  # pre = W_h x
            return rules["linear"](w.maps["input"], [rec.x], r_cand)[0], (r_h_prev,)
        # pre = (W_h x + b_h) + r (U_h h' + b'_h): the sum rule; r held constant
        r_a, r_b = rules["sum"](self.parts["sum"], [rec.x_h, rec.r * rec.u_h], r_cand)
        r_x = rules["linear"](w.maps["input"], [rec.x], r_a)[0]
        if not fresh:  # fresh: U_h h' = 0, the recurrent term is its bias alone (absorbed)
            r_h_prev = r_h_prev + rules["recurrent"](w.maps["recurrent"], [rec.h], r_b)[0]
        return r_x, (r_h_prev,)


@dataclass(frozen=True)
class _RNNRecord:
    x: Tensor
    h: Tensor | None


class SimpleRNNCell(Cell):
    """SimpleRNN: ``h = act(W x + U h' + b)``. Backward: act by the identity, then the linear
    rule on ``[x, h']``."""

    def _maps(self, kernel: Tensor, recurrent: Tensor, bias: Tensor | None
              ) -> dict[str, LayerOp]:
        return self._pair(kernel, recurrent, bias)

    def step(self, w: Weights, x: Tensor, state: State | None) -> tuple[State, _RNNRecord]:
        h = None if state is None else state[0]
        z = ops.matmul(x, w.kernel)
        if w.bias is not None:
            z = z + w.bias
        if h is not None:
            z = z + ops.matmul(h, w.recurrent)
        return (self.act(z),), _RNNRecord(x, h)

    def relevance(self, w: Weights, record: _RNNRecord, r_state: State,
                  rules: Mapping[str, RuleFn], fresh: bool) -> tuple[Tensor, State]:
        xs = [record.x] if fresh else [record.x, record.h]
        r_in = rules["linear"](w.maps["first" if fresh else "step"], xs, r_state[0])
        return r_in[0], (tf.zeros_like(r_state[0]) if fresh else r_in[1],)


def make_cell(layer: Any, owner: Any = None, label: str | None = None) -> Cell:
    """The cell of a recurrent Keras layer (``owner``, ``label``: see :class:`Cell`);
    ``ValueError`` naming what is not supported."""
    if isinstance(layer, (L.ConvLSTM1D, L.ConvLSTM2D, L.ConvLSTM3D)):
        if layer.data_format != "channels_last":
            raise ValueError("ConvLSTM with data_format='channels_first' (supported: "
                             "channels_last)")
        return ConvLSTMCell(layer, owner, label)
    cell = layer.cell
    for cls, made in ((L.LSTMCell, LSTMCell), (L.GRUCell, GRUCell),
                      (L.SimpleRNNCell, SimpleRNNCell)):
        if type(cell) is cls:
            return made(layer, owner, label)
    raise ValueError(f"a recurrent layer with cell {type(cell).__name__} (supported: LSTM, "
                     "GRU, SimpleRNN, ConvLSTM1D/2D/3D, or RNN around an LSTMCell, GRUCell or "
                     "SimpleRNNCell; stack cells as separate layers)")


__all__ = ["Cell", "CellConvOp", "CellDenseOp", "CellSumOp", "ConvLSTMCell", "GRUCell",
           "LSTMCell", "SimpleRNNCell", "Weights", "make_cell"]
