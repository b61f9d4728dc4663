"""Matrix-form reference of the relevance rules (numpy), for the analyzers tests.

A layer's linear map is read off as a dense matrix by applying the Keras layer itself to
the identity basis: ``W[i, j]`` is output ``j`` for the ``i``-th unit input, ``b = f(0)``.
The rules are then applied in matrix form, ``R_i = sum_j c_ij / z_j R_j``.
"""

from __future__ import annotations

import numpy as np


def dense_matrix(layer, in_shape: tuple[int, ...], dtype: str = "float32"
                 ) -> tuple[np.ndarray, np.ndarray, tuple]:
    """``(W [n_in, n_out], b [n_out], out_shape)`` of an affine Keras layer."""
    n_in = int(np.prod(in_shape))
    eye = np.eye(n_in, dtype=np.float64).reshape((n_in,) + tuple(in_shape)).astype(dtype)
    zero = np.zeros((1,) + tuple(in_shape), dtype)
    y0 = np.asarray(layer(zero), dtype=np.float64)
    y = np.asarray(layer(eye), dtype=np.float64)
    out_shape = y.shape[1:]
    b = y0.reshape(-1)
    w = y.reshape(n_in, -1) - b[None, :]
    return w, b, out_shape


def stab(z: np.ndarray, eps: float) -> np.ndarray:
    return z + eps * np.where(z >= 0, 1.0, -1.0)


def _redistribute(c: np.ndarray, z: np.ndarray, r: np.ndarray, eps: float) -> np.ndarray:
    """``R_i = sum_j c_ij / stab(z_j) R_j``."""
    return (c * (r / stab(z, eps))[None, :]).sum(axis=1)


def rule_z(x, w, b, r, eps=1e-12, bias=True):
    c = x[:, None] * w
    z = c.sum(0) + (b if bias else 0.0)
    return _redistribute(c, z, r, eps)


def rule_epsilon(x, w, b, r, eps=1e-7, bias=True):
    return rule_z(x, w, b, r, eps=eps, bias=bias)


def _pos(a):
    return np.maximum(a, 0.0)


def _neg(a):
    return np.minimum(a, 0.0)


def rule_alpha_beta(x, w, b, r, alpha, beta, bias=True, eps=1e-9):
    act = _pos(x)[:, None] * _pos(w) + _neg(x)[:, None] * _neg(w)
    inh = _pos(x)[:, None] * _neg(w) + _neg(x)[:, None] * _pos(w)
    za = act.sum(0) + (_pos(b) if bias else 0.0)
    zi = inh.sum(0) + (_neg(b) if bias else 0.0)
    if beta == 0:
        return alpha * _redistribute(act, za, r, eps)
    # a neuron without inhibitory (activating) part passes relevance by the other part alone
    a = np.where(zi == 0, 1.0, np.where(za == 0, 0.0, alpha))
    b_ = np.where(zi == 0, 0.0, np.where(za == 0, -1.0, beta))
    return _redistribute(act, za, a * r, eps) - _redistribute(inh, zi, b_ * r, eps)


def rule_z_plus(x, w, b, r):
    return rule_alpha_beta(x, w, b, r, 1.0, 0.0, bias=False)


def rule_bounded(x, w, b, r, low, high, eps=1e-9):
    c = x[:, None] * w - low[:, None] * _pos(w) - high[:, None] * _neg(w)
    return _redistribute(c, c.sum(0), r, eps)


def rule_w_square(x, w, b, r, eps=1e-12):
    c = w ** 2
    return _redistribute(c, c.sum(0), r, eps)


def rule_flat(x, w, b, r, eps=1e-12):
    c = (w != 0).astype(np.float64)
    return _redistribute(c, c.sum(0), r, eps)


def pool_winner_take_all(x, membership, r):
    """Max pooling: each window's relevance goes to its largest input."""
    out = np.zeros_like(x)
    for j in range(membership.shape[1]):
        idx = np.flatnonzero(membership[:, j])
        out[idx[np.argmax(x[idx])]] += r[j]
    return out


def pool_proportional(x, membership, r, eps=1e-12):
    c = x[:, None] * membership
    return _redistribute(c, c.sum(0), r, eps)
