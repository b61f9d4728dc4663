"""iNNvestigate's "fast" z+: the contributions ``x w+`` taken literally, on any input."""

from __future__ import annotations

import tensorflow as tf

from analyzers.rules.base import Rule, grads, safe_divide


class ZPlusFastRule(Rule):
    """``R_i = sum_j x_i w+_ij / z_j R_j`` with ``z_j = sum_i x_i w+_ij``: positive weights,
    no bias, the input as it is (iNNvestigate 2.1.2's ``lrp.z_plus_fast``; a zero ``z_j`` is
    replaced by 1e-7, as its ``safe_divide`` does).

    On a non-negative input (a ReLU layer's) this is z+. On a signed input a negative
    ``x_i`` gets relevance of the opposite sign and ``z_j`` can be near zero, so it is not
    z+ there (:class:`~analyzers.rules.ZPlusRule` splits ``x+ w+ + x- w-``).
    """

    name = "z_plus_fast"

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        xs = list(xs)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(xs)
            z = op.linear(xs, tf.nn.relu(op.kernel), None) if op.has_weights else \
                op.linear(xs)
        g = grads(z, xs, tape, safe_divide(r, z))
        return [x * gi for x, gi in zip(xs, g)]

    def __repr__(self) -> str:
        return "ZPlusFastRule()"


__all__ = ["ZPlusFastRule"]
