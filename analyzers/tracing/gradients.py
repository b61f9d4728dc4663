"""The modified gradients the rewritten graphs use, registered with TensorFlow.

With the relevance of every tensor written as ``R_t = t * g_t`` (the tensor times its
modified gradient), each rule is a change of one gradient:

* :data:`SCALE` (an ``Identity`` on one factor of a product): ``g * factor``, the factor's
  share of a bilinear product;
* :data:`EPSILON` (an ``Identity`` after a weight layer's output ``z``): ``g * z /
  (z + eps * sign(z))``, the epsilon rule;
* :data:`IDENTITY` (an ``IdentityN`` of an elementwise function's output ``y`` and its
  argument ``x``): ``g * y / x`` to ``x`` (summed over broadcast axes) and nothing into the
  function, so ``R_x = R_y``, the identity rule.

A node opts in through its ``_gradient_op_type`` attribute, which ``tf.gradients`` honours
for graphs imported with ``tf.graph_util.import_graph_def`` (a ``tf.GradientTape`` does not
see such graphs). The parameters travel as node attributes (:data:`FACTOR_ATTR`,
:data:`EPSILON_ATTR`).
"""

from __future__ import annotations

import tensorflow as tf

SCALE = "AnalyzersShareGradient"
EPSILON = "AnalyzersEpsilonGradient"
IDENTITY = "AnalyzersIdentityRuleGradient"
FACTOR_ATTR = "_analyzers_factor"
EPSILON_ATTR = "_analyzers_epsilon"

#: Stabilizer of the identity rule's division by its argument.
IDENTITY_EPSILON = 1e-12


def _stabilize(z: tf.Tensor, epsilon: float) -> tf.Tensor:
    """``z + epsilon * sign(z)`` with ``sign(0) = +1``."""
    return tf.where(z >= 0, z + epsilon, z - epsilon)


def _sum_to(t: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """``t`` summed over the axes along which ``like`` was broadcast to ``t``'s shape."""
    axes, _ = tf.raw_ops.BroadcastGradientArgs(s0=tf.shape(like), s1=tf.shape(t))
    return tf.reshape(tf.reduce_sum(t, axis=axes), tf.shape(like))


@tf.RegisterGradient(SCALE)
def _share(op: tf.Operation, grad: tf.Tensor) -> tf.Tensor:
    return grad * tf.cast(op.get_attr(FACTOR_ATTR), grad.dtype)


@tf.RegisterGradient(EPSILON)
def _epsilon(op: tf.Operation, grad: tf.Tensor) -> tf.Tensor:
    z = op.inputs[0]
    return grad * z / _stabilize(z, op.get_attr(EPSILON_ATTR))


@tf.RegisterGradient(IDENTITY)
def _identity_rule(op: tf.Operation, *grads: tf.Tensor | None) -> list[tf.Tensor | None]:
    y, x = op.inputs
    g_y, g_x = grads
    ratio = y / _stabilize(x, IDENTITY_EPSILON) if g_y is not None else None
    out = None if ratio is None else _sum_to(g_y * ratio, x)
    if g_x is not None:
        out = g_x if out is None else out + g_x
    return [None, out]


__all__ = ["EPSILON", "EPSILON_ATTR", "FACTOR_ATTR", "IDENTITY", "IDENTITY_EPSILON", "SCALE"]
