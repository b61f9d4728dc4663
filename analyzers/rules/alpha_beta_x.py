"""Alpha-beta with the four kinds of contribution normalised separately ("alpha-beta X",
iNNvestigate 2.1.2's rule for BatchNormalization in its sequential presets)."""

from __future__ import annotations

import tensorflow as tf

from analyzers.rules.base import Rule, grads, safe_divide, signed_part


class AlphaBetaXRule(Rule):
    """``R = a_pp R_pp + a_nn R_nn - b_pn R_pn - b_np R_np``, each term the z rule of one kind
    of contribution alone, with the bias part of its sign:

    * ``R_pp``: ``x+ w+`` over ``sum x+ w+ + b+``; ``R_nn``: ``x- w-`` over ``sum x- w- + b-``;
    * ``R_pn``: ``x+ w-`` over ``sum x+ w- + b-``; ``R_np``: ``x- w+`` over ``sum x- w+ + b+``.

    ``alpha = (a_pp, a_nn)``, ``beta = (b_pn, b_np)``; a zero denominator is replaced by
    1e-7. iNNvestigate's presets use ``alpha=(2, 0)``, ``beta=(1, 0)``: ``2 R_pp - R_pn``.
    (Its code weights ``R_nn`` by ``b_np``, not ``a_nn``; the two are equal there.)
    """

    name = "alpha_beta_x"

    def __init__(self, alpha: tuple[float, float] = (2.0, 0.0),
                 beta: tuple[float, float] = (1.0, 0.0), bias: bool = True) -> None:
        self.alpha = tuple(float(a) for a in alpha)
        self.beta = tuple(float(b) for b in beta)
        self.bias = bool(bias)

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        xs = list(xs)
        b = op.bias if (self.bias and op.has_weights) else None
        biases = {+1: None if b is None else tf.nn.relu(b),
                  -1: None if b is None else tf.minimum(b, 0.0)}
        parts = {+1: [tf.nn.relu(x) for x in xs], -1: [tf.minimum(x, 0.0) for x in xs]}
        terms = [((+1, +1), self.alpha[0]), ((-1, -1), self.alpha[1]),
                 ((+1, -1), -self.beta[0]), ((-1, +1), -self.beta[1])]
        out = [tf.zeros_like(x) for x in xs]
        for (x_sign, w_sign), coefficient in terms:
            if not coefficient:
                continue
            inputs = parts[x_sign]
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(inputs)
                z = signed_part(op, inputs, w_sign, op.kernel if op.has_weights else None,
                                biases[w_sign])
            if z is None:  # a weightless map has no negative weights
                continue
            g = grads(z, inputs, tape, coefficient * safe_divide(r, z))
            out = [o + x * gi for o, x, gi in zip(out, inputs, g)]
        return out


__all__ = ["AlphaBetaXRule"]
