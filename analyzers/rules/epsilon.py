"""LRP-epsilon and LRP-0 (the z rule): contributions ``x_i w_ij`` over the stabilized
pre-activation ``z_j``."""

from __future__ import annotations

import tensorflow as tf

from analyzers.rules.base import Rule, grads, stabilize


class EpsilonRule(Rule):
    """LRP-epsilon: ``R_i = sum_j x_i w_ij / (z_j + eps sign(z_j)) R_j``, ``z_j = sum_i x_i
    w_ij + b_j`` (the bias is included unless ``bias=False``).

    On a weightless map it splits in proportion to the inputs (average pooling, Add, and the
    average-pooling surrogate of max pooling).
    """

    name = "epsilon"

    def __init__(self, epsilon: float = 1e-7, bias: bool = True) -> None:
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
        self.epsilon = float(epsilon)
        self.bias = bool(bias)

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        xs = list(xs)
        bias = op.bias if self.bias else None
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(xs)
            z = op.linear(xs, op.kernel, bias)
        g = grads(z, xs, tape, r / stabilize(z, self.epsilon))
        return [x * gi for x, gi in zip(xs, g)]


class ZRule(EpsilonRule):
    """LRP-0 (the z rule): the epsilon rule with a negligible stabilizer (1e-12) that only
    guards against division by zero. Splits in proportion to the contributions."""

    name = "z"

    def __init__(self, bias: bool = True) -> None:
        super().__init__(epsilon=1e-12, bias=bias)


__all__ = ["EpsilonRule", "ZRule"]
