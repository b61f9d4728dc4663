"""Recurrent models unrolled into layers the analyzers already trust, for the recurrent tests.

``unrolled(model)`` takes a model ``Input -> recurrent layer -> (Flatten) -> Dense`` and builds
the same function as a functional model of Cropping / Reshape (the frames), Concatenate, Dense
or Conv2D (one per pre-activation, the input and recurrent kernels stacked), ``Multiply`` by
sigmoid gates, ``Add`` and ``Activation("tanh")``, with the weights copied. The first step has
no state: its maps read ``x_0`` alone.
"""

from __future__ import annotations

import keras
import numpy as np

L = keras.layers


def _frame(inp, t: int, steps: int):
    """Frame ``t`` of ``[batch, steps, features]`` or ``[batch, steps, h, w, c]``."""
    crop = (t, steps - 1 - t)
    cropped = L.Cropping1D(crop)(inp) if len(inp.shape) == 3 else \
        L.Cropping3D((crop, (0, 0), (0, 0)))(inp)
    return L.Reshape(tuple(inp.shape[2:]))(cropped)


class _Maps:
    """Dense (or Conv2D) layers with given weights on ``[x]`` or ``concat([x, h])``."""

    def __init__(self, conv: bool, kernel_size=None) -> None:
        self.conv = conv
        self.kernel_size = kernel_size

    def __call__(self, inputs, kernel, bias, activation=None):
        x = inputs[0] if len(inputs) == 1 else L.Concatenate(axis=-1)(inputs)
        units = kernel.shape[-1]
        use_bias = bias is not None
        if self.conv:
            layer = L.Conv2D(units, self.kernel_size, padding="same", activation=activation,
                             use_bias=use_bias)
        else:
            layer = L.Dense(units, activation=activation, use_bias=use_bias)
        out = layer(x)
        layer.set_weights([kernel] + ([bias] if use_bias else []))
        return out


def _blocks(kernel: np.ndarray, n: int) -> list[np.ndarray]:
    return np.split(kernel, n, axis=-1)


def _bias_blocks(bias, n: int) -> list:
    return [None] * n if bias is None else np.split(bias, n, axis=-1)


def _stack(kx: np.ndarray, kh: np.ndarray, first: bool) -> np.ndarray:
    return kx if first else np.concatenate([kx, kh], axis=-2)


def _lstm(x_frames, cell, maps: _Maps, weights):
    kernel, recurrent = weights[0], weights[1]
    bias = weights[2] if cell.use_bias else None
    kx, kh = _blocks(kernel, 4), _blocks(recurrent, 4)
    bs = _bias_blocks(bias, 4)
    h = c = None
    for t, x in enumerate(x_frames):
        first = t == 0
        ins = [x] if first else [x, h]
        i, f, g, o = (maps(ins, _stack(kx[k], kh[k], first), bs[k],
                           "sigmoid" if k != 2 else "tanh") for k in range(4))
        ig = L.Multiply()([i, g])
        c = ig if first else L.Add()([L.Multiply()([f, c]), ig])
        h = L.Multiply()([o, L.Activation("tanh")(c)])
    return h


def _gru(x_frames, cell, maps: _Maps, weights):
    kernel, recurrent = weights[0], weights[1]
    bias = weights[2] if cell.use_bias else None
    reset_after = cell.reset_after
    b_in, b_rec = (None, None) if bias is None else ((bias[0], bias[1]) if reset_after
                                                      else (bias, None))
    kx, kh = _blocks(kernel, 3), _blocks(recurrent, 3)
    bi, br = _bias_blocks(b_in, 3), _bias_blocks(b_rec, 3)

    def gate_bias(k, sign=1.0):
        if bi[k] is None:
            return None
        return sign * (bi[k] + (br[k] if br[k] is not None else 0.0))

    h = None
    for t, x in enumerate(x_frames):
        first = t == 0
        ins = [x] if first else [x, h]
        z = maps(ins, _stack(kx[0], kh[0], first), gate_bias(0), "sigmoid")
        one_minus_z = maps(ins, -_stack(kx[0], kh[0], first), gate_bias(0, -1.0), "sigmoid")
        r = maps(ins, _stack(kx[1], kh[1], first), gate_bias(1), "sigmoid")
        if not reset_after:
            if first:
                cand = maps([x], kx[2], bi[2], "tanh")
            else:
                cand = maps([x, L.Multiply()([r, h])], _stack(kx[2], kh[2], False), bi[2],
                            "tanh")
        else:
            a = maps([x], kx[2], bi[2])
            if first and br[2] is None:
                pre = a
            else:
                # first step: U h = 0, the recurrent term is its bias (a zero kernel on x)
                rec_in, rec_k = ([x], np.zeros_like(kx[2])) if first else ([h], kh[2])
                pre = L.Add()([a, L.Multiply()([r, maps(rec_in, rec_k, br[2])])])
            cand = L.Activation("tanh")(pre)
        kept = L.Multiply()([one_minus_z, cand])
        h = kept if first else L.Add()([L.Multiply()([z, h]), kept])
    return h


def _simple(x_frames, cell, maps: _Maps, weights):
    kernel, recurrent = weights[0], weights[1]
    bias = weights[2] if cell.use_bias else None
    h = None
    for t, x in enumerate(x_frames):
        first = t == 0
        h = maps([x] if first else [x, h], _stack(kernel, recurrent, first), bias, "tanh")
    return h


def unrolled(model: keras.Model) -> keras.Model:
    """The unrolled twin of ``Input -> LSTM / GRU / SimpleRNN / ConvLSTM2D -> [Flatten] ->
    Dense`` (tanh activations, sigmoid gates, return_sequences=False)."""
    rnn = next(layer for layer in model.layers if isinstance(layer, L.RNN))
    head = model.layers[-1]
    inp = keras.Input(model.input_shape[1:])
    steps = model.input_shape[1]
    frames = [_frame(inp, t, steps) for t in range(steps)]
    weights = [w.numpy() for w in rnn.weights]
    if isinstance(rnn, L.ConvLSTM2D):
        h = _lstm(frames, rnn.cell, _Maps(True, rnn.cell.kernel_size), weights)
        h = L.Flatten()(h)
    elif isinstance(rnn, L.LSTM):
        h = _lstm(frames, rnn.cell, _Maps(False), weights)
    elif isinstance(rnn, L.GRU):
        h = _gru(frames, rnn.cell, _Maps(False), weights)
    else:
        h = _simple(frames, rnn.cell, _Maps(False), weights)
    out_layer = L.Dense(head.units, use_bias=head.use_bias)
    out = out_layer(h)
    out_layer.set_weights(head.get_weights())
    return keras.Model(inp, out, name=f"{model.name}_unrolled")


__all__ = ["unrolled"]
