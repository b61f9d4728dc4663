"""Rules that pass relevance on without normalizing it by the layer's output: through the
vector-Jacobian product (:class:`GradientRule`; of the whole layer, activation included:
:class:`LayerGradientRule`), unchanged (:class:`IdentityRule`), or to the non-gate factor of
a gated product (:class:`GateRule`)."""

from __future__ import annotations

import tensorflow as tf

from analyzers.rules.base import Rule, Tensor, grads


class GradientRule(Rule):
    """Pass relevance through the layer's vector-Jacobian product: ``R_in = J^T R``.

    Exact redistribution for layers that only move values (Flatten, Reshape, padding,
    cropping, Concatenate, identity layers, activations), *winner-take-all* for max
    pooling (all relevance of a window goes to its maximum), and the plain gradient for
    anything else.
    """

    name = "gradient"

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        xs = list(xs)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(xs)
            z = op.preactivation(xs)
        return grads(z, xs, tape, r)


class LayerGradientRule(Rule):
    """Pass relevance through the gradient of the whole layer, ``R_in = J^T R`` of its
    output: the activation included (a ReLU masks where its input is <= 0), and a
    LayerNormalization's statistics not held constant. This is what TensorFlow's gradient
    of the layer gives, iNNvestigate 2.1.2's treatment of a layer without a rule of its own
    (``compat="innvestigate"``: every weightless layer under deep Taylor, ReLU layers under
    LRP)."""

    name = "layer_gradient"

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        op = getattr(op, "source", op)  # a normalisation linearised at xs: the layer itself
        xs = list(xs)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(xs)
            z = op.forward(xs)
        return grads(z, xs, tape, r)


class IdentityRule(Rule):
    """Relevance passes through unchanged: ``R_in = R`` (elementwise activations such as
    ReLU, swish, GELU, tanh, as AttnLRP treats elementwise nonlinearities)."""

    name = "identity"

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        (x,) = xs
        # compatible, not equal: a traced relevance may know fewer dimensions than x
        if not x.shape.is_compatible_with(r.shape):
            raise ValueError(f"identity rule on layer '{op.name}': input shape {x.shape} "
                             f"differs from output shape {r.shape}")
        return [r]


def _unbroadcast(r: Tensor, x: Tensor) -> Tensor:
    """Sum ``r`` over the axes along which ``x`` was broadcast to ``r``'s shape."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        y = x * tf.ones_like(r)
    return tape.gradient(y, x, output_gradients=r)


class GateRule(Rule):
    """A ``Multiply`` by gates: the gates (sigmoid outputs, ``op.gate_inputs``) are held
    constant, so the product is a diagonal linear map of the other factor, which gets all
    the relevance (summed over broadcast axes); the gates get none (the LRP convention for
    LSTM gates, Arras et al. 2017)."""

    name = "gate"

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        gates = op.gate_inputs
        return [tf.zeros_like(x) if is_gate else _unbroadcast(r, x)
                for x, is_gate in zip(xs, gates)]


__all__ = ["GateRule", "GradientRule", "IdentityRule", "LayerGradientRule"]
