"""The deep Taylor z^B rule for inputs bounded to ``[low, high]``."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from analyzers.rules import _fused
from analyzers.rules.base import Rule, Tensor, grads, signed_part, stabilize


class BoundedRule(Rule):
    """Deep Taylor z^B rule for inputs bounded to ``[low, high]``:
    ``R_i = sum_j (x_i w_ij - l_i w+_ij - h_i w-_ij) / z_j R_j`` (bias ignored).

    ``low``/``high`` are scalars or arrays broadcastable to one input sample (e.g. one
    value per channel, shape ``(channels,)``).
    """

    name = "bounded"

    def __init__(self, low: Any = -1.0, high: Any = 1.0, epsilon: float = 1e-9) -> None:
        low_a = np.asarray(low, dtype=np.float32)
        high_a = np.asarray(high, dtype=np.float32)
        if not np.all(np.isfinite(low_a)) or not np.all(np.isfinite(high_a)):
            raise ValueError(f"low and high must be finite, got low={low!r}, high={high!r}")
        if np.any(low_a > high_a):
            raise ValueError(f"low must be <= high, got low={low!r}, high={high!r}")
        self.low = low_a
        self.high = high_a
        self.epsilon = float(epsilon)

    def stand_in_inputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``low`` and ``high`` broadcast to ``x``."""
        return (tf.broadcast_to(tf.constant(self.low, x.dtype), tf.shape(x)),
                tf.broadcast_to(tf.constant(self.high, x.dtype), tf.shape(x)))

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        """``stand_ins``: optional ``(low, high)`` shaped like the single input."""
        xs = list(xs)
        if stand_ins is not None:
            lows, highs = [stand_ins[0]], [stand_ins[1]]
        else:
            pairs = [self.stand_in_inputs(x) for x in xs]
            lows, highs = [p[0] for p in pairs], [p[1] for p in pairs]
        fused = _fused.bounded(op, xs, lows, highs, r, self.epsilon)
        if fused is not None:
            return fused
        kernel = op.kernel if op.has_weights else None
        watched = xs + lows + highs
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(watched)
            z = op.linear(xs, kernel, None) if op.has_weights else op.linear(xs)
            z = z - signed_part(op, lows, +1, kernel)
            neg = signed_part(op, highs, -1, kernel)
            if neg is not None:
                z = z - neg
        g = grads(z, watched, tape, r / stabilize(z, self.epsilon))
        n = len(xs)
        return [x * gx + lo * gl + hi * gh for x, lo, hi, gx, gl, gh in
                zip(xs, lows, highs, g[:n], g[n:2 * n], g[2 * n:])]


__all__ = ["BoundedRule"]
