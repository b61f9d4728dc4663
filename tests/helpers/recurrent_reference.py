"""Hand-written numpy reference of LRP through LSTM and GRU cells (Arras et al. 2017), for the
recurrent tests: one sample at a time, every rule in matrix form (``analyzers_reference``).

A model ``Input [T, F] -> LSTM / GRU (tanh, sigmoid gates) -> Dense`` is explained as: the head
by the kernel rule; then, from the last step to the first, ``h = o tanh(c)`` passes relevance
to ``c`` (gate constant, tanh by identity), a sum of gated terms splits by the sum rule (the
matrix form of ``Add``: ``[a; b] @ [I; I]``), each pre-activation is one linear layer of
``[x_t, h_{t-1}]`` (kernels stacked) decomposed by the linear rule. The zero initial state is
no input: the first step's maps read ``x_0`` alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: ``rule(x [n_in], w [n_in, n_out], b [n_out] or 0, r [n_out]) -> [n_in]``
MatrixRule = Callable[..., np.ndarray]


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _sum_rule(rule: MatrixRule, terms: list[np.ndarray], r: np.ndarray) -> list[np.ndarray]:
    """A sum of terms as the linear map ``concat(terms) @ [I; I; ...]``."""
    n = terms[0].shape[0]
    w = np.vstack([np.eye(n)] * len(terms))
    out = rule(np.concatenate(terms), w, np.zeros(n), r)
    return np.split(out, len(terms))


def _linear(rule: MatrixRule, xs: list[np.ndarray], kernels: list[np.ndarray], bias, r):
    """The linear rule on ``[x_t, h_{t-1}]`` (or ``[x_t]``): kernels stacked along the input."""
    out = rule(np.concatenate(xs), np.vstack(kernels), 0.0 if bias is None else bias, r)
    return np.split(out, np.cumsum([len(x) for x in xs])[:-1])


def lstm(x, kernel, recurrent, bias, r_h, linear: MatrixRule, sum_rule: MatrixRule):
    """Relevance of the frames ``x [T, F]`` of one sample, given the relevance ``r_h`` of the
    last output."""
    n = recurrent.shape[0]
    b = np.zeros(4 * n) if bias is None else bias
    h, c = np.zeros(n), np.zeros(n)
    steps = []
    for x_t in x:
        z = x_t @ kernel + h @ recurrent + b
        i, f, o = sigmoid(z[:n]), sigmoid(z[n:2 * n]), sigmoid(z[3 * n:])
        g = np.tanh(z[2 * n:3 * n])
        steps.append((x_t, h, c, i, f, g))
        c = f * c + i * g
        h = o * np.tanh(c)
    kx, kh = kernel[:, 2 * n:3 * n], recurrent[:, 2 * n:3 * n]
    bc = None if bias is None else bias[2 * n:3 * n]
    r_c = np.zeros(n)
    out = []
    for t in reversed(range(len(x))):
        x_t, h_p, c_p, i, f, g = steps[t]
        r_c = r_c + r_h
        if t == 0:
            r_ig, r_c = r_c, np.zeros(n)
        else:
            r_c, r_ig = _sum_rule(sum_rule, [f * c_p, i * g], r_c)
        if t == 0:
            (r_x,) = _linear(linear, [x_t], [kx], bc, r_ig)
        else:
            r_x, r_h = _linear(linear, [x_t, h_p], [kx, kh], bc, r_ig)
        out.append(r_x)
    return np.stack(out[::-1]), h


def gru(x, kernel, recurrent, bias, r_h, linear: MatrixRule, sum_rule: MatrixRule,
        reset_after: bool, recurrent_rule: MatrixRule | None = None):
    """As :func:`lstm`, for a GRU (``bias``: ``[3n]``, or ``[2, 3n]`` with reset_after)."""
    n = recurrent.shape[0]
    recurrent_rule = recurrent_rule or linear
    if bias is None:
        b_in, b_rec = np.zeros(3 * n), np.zeros(3 * n)
    else:
        b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, np.zeros(3 * n))
    h = np.zeros(n)
    steps = []
    for x_t in x:
        mx = x_t @ kernel + b_in
        mh = h @ recurrent + (b_rec if reset_after else 0.0)
        z = sigmoid(mx[:n] + mh[:n])
        r = sigmoid(mx[n:2 * n] + mh[n:2 * n])
        if reset_after:
            pre = mx[2 * n:] + r * mh[2 * n:]
        else:
            pre = mx[2 * n:] + (r * h) @ recurrent[:, 2 * n:]
        cand = np.tanh(pre)
        steps.append((x_t, h, z, r, cand, mx[2 * n:], mh[2 * n:]))
        h = z * h + (1 - z) * cand
    kx, kh = kernel[:, 2 * n:], recurrent[:, 2 * n:]
    bx = None if bias is None else b_in[2 * n:]
    br = None if bias is None else b_rec[2 * n:]
    out = []
    for t in reversed(range(len(x))):
        x_t, h_p, z, r, cand, a, u = steps[t]
        if t == 0:
            r_cand, r_h = r_h, np.zeros(n)
        else:
            r_h, r_cand = _sum_rule(sum_rule, [z * h_p, (1 - z) * cand], r_h)
        if not reset_after:
            if t == 0:
                (r_x,) = _linear(linear, [x_t], [kx], bx, r_cand)
            else:
                r_x, r_rh = _linear(linear, [x_t, r * h_p], [kx, kh], bx, r_cand)
                r_h = r_h + r_rh
        elif t == 0 and bias is None:
            (r_x,) = _linear(linear, [x_t], [kx], bx, r_cand)
        else:
            r_a, r_b = _sum_rule(sum_rule, [a, r * u], r_cand)
            (r_x,) = _linear(linear, [x_t], [kx], bx, r_a)
            if t > 0:
                r_h = r_h + _linear(recurrent_rule, [h_p], [kh], br, r_b)[0]
        out.append(r_x)
    return np.stack(out[::-1]), h


__all__ = ["gru", "lstm", "sigmoid"]
