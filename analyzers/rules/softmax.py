"""AttnLRP's softmax rule (Achtibat et al. 2024, Proposition 3.1)."""

from __future__ import annotations

import tensorflow as tf
from keras import ops

from analyzers.rules.base import Rule


class SoftmaxRule(Rule):
    """``R_in = x * (R - s * sum(R))``, ``s = softmax(x)``, the sum over the softmax axis.

    This is the softmax's gradient times its input (its vector-Jacobian product at ``R / s``
    is ``R - s * sum(R)``): the first-order Taylor decomposition at zero that AttnLRP
    derives. It does not conserve: the inputs receive ``sum(x * R) - sum(x * s) * sum(R)``
    in total, not ``sum(R)`` (measured in docs/transformers-and-recurrent.md).
    """

    name = "softmax"

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        (x,) = xs
        axis = getattr(op, "axis", -1)
        s = ops.softmax(x, axis=axis)
        total = tf.reduce_sum(r, axis=axis, keepdims=True)
        return [x * (r - s * total)]

    def __repr__(self) -> str:
        return "SoftmaxRule()"


__all__ = ["SoftmaxRule"]
