"""LRP-alpha-beta and z+: activating and inhibitory contributions normalized separately; and
two variants of iNNvestigate 2.1.2 (``compat="innvestigate"``): alpha-beta X (the four kinds
of contribution normalised separately) and its "fast" z+ (``x w+`` taken literally)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from analyzers.rules import _fused
from analyzers.rules.base import Rule, Tensor, grads, safe_divide, signed_part, sum_present


class AlphaBetaRule(Rule):
    """LRP-alpha-beta: positive and negative contributions are normalized separately,
    ``R_i = sum_j (alpha z+_ij / z+_j - beta z-_ij / z-_j) R_j``.

    ``z+_ij = x+_i w+_ij + x-_i w-_ij`` (contributions > 0), ``z-_ij = x+_i w-_ij + x-_i w+_ij``.
    With ``bias=True`` the positive part of the bias joins ``z+_j`` and the negative part
    joins ``z-_j``; ``whole_bias=True`` adds the whole bias to both denominators instead, as
    iNNvestigate 2.1.2 does. Requires ``alpha - beta = 1`` (conservation), checked here.

    A neuron with no inhibitory contribution (``z-_j = 0``) passes its relevance by the
    activating part alone (``alpha`` taken as 1), one with no activating contribution by the
    inhibitory part alone, so relevance is conserved; iNNvestigate (and the textbook
    formula) give ``alpha R_j`` and ``-beta R_j`` there (the latter flips the sign of a
    neuron whose contributions are all negative). ``conserve_degenerate=False`` gives the
    textbook behaviour.
    """

    name = "alpha_beta"

    def __init__(self, alpha: float = 1.0, beta: float = 0.0, bias: bool = True,
                 epsilon: float = 1e-9, conserve_degenerate: bool = True,
                 whole_bias: bool = False) -> None:
        if not np.isclose(alpha - beta, 1.0):
            raise ValueError(f"alpha-beta rule needs alpha - beta = 1 (relevance "
                             f"conservation); got alpha={alpha}, beta={beta} "
                             f"(alpha - beta = {alpha - beta})")
        if beta < 0:
            raise ValueError(f"alpha-beta rule needs beta >= 0, got beta={beta}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.bias = bool(bias)
        self.epsilon = float(epsilon)
        self.conserve_degenerate = bool(conserve_degenerate)
        self.whole_bias = bool(whole_bias)

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        if not self.whole_bias:  # (the fused paths split the bias)
            fused = _fused.alpha_beta(
                op, xs, r, nonnegative, beta=self.beta, bias=self.bias, seeds=self._seeds,
                plain_nonnegative=lambda: self(op, xs, r, nonnegative=True))
            if fused is not None:
                return fused
        xs = list(xs)
        xp = xs if nonnegative else [tf.nn.relu(x) for x in xs]
        xn = [] if nonnegative else [tf.minimum(x, 0.0) for x in xs]
        b = op.bias if (self.bias and op.has_weights) else None
        bp = None if b is None else (b if self.whole_bias else tf.nn.relu(b))
        bn = None if b is None else (b if self.whole_bias else tf.minimum(b, 0.0))
        kernel = op.kernel if op.has_weights else None
        watched = xp + xn
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(watched)
            z_act = sum_present(signed_part(op, xp, +1, kernel, bp),
                                signed_part(op, xn, -1, kernel) if xn else None)
            z_inh = None
            if self.beta:
                z_inh = sum_present(signed_part(op, xp, -1, kernel, bn),
                                    signed_part(op, xn, +1, kernel) if xn else None)
        targets = [z_act] if z_inh is None else [z_act, z_inh]
        seeds = self._seeds(z_act, z_inh, r)
        g = grads(targets, watched, tape, seeds)
        rel = [x * gi for x, gi in zip(xp, g[: len(xp)])]
        if xn:
            rel = [a + x * gi for a, x, gi in zip(rel, xn, g[len(xp):])]
        return rel

    def _seeds(self, z_act: Tensor, z_inh: Tensor | None, r: Tensor) -> list[Tensor]:
        """Output gradients ``alpha R / z+`` and ``-beta R / z-`` (denominators are
        sign-definite, ``z+ >= 0``, ``z- <= 0``, unless ``whole_bias``: then a zero
        denominator is replaced by 1e-7, as iNNvestigate does). A neuron without inhibitory
        (or without activating) contributions gives all its relevance to the part it has, so
        that ``alpha - beta = 1`` still conserves (unless ``conserve_degenerate=False``)."""
        if z_inh is None:  # no inhibitory part at all (beta = 0, or a weightless map)
            alpha = 1.0 if (self.beta and self.conserve_degenerate) else self.alpha
            if self.whole_bias:
                return [alpha * safe_divide(r, z_act)]
            return [alpha * r / (z_act + self.epsilon)]
        if self.whole_bias:
            return [self.alpha * safe_divide(r, z_act), -self.beta * safe_divide(r, z_inh)]
        if not self.conserve_degenerate:
            return [self.alpha * r / (z_act + self.epsilon),
                    -self.beta * r / (z_inh - self.epsilon)]
        no_inh = tf.equal(z_inh, 0.0)
        no_act = tf.equal(z_act, 0.0)
        one = tf.ones_like(z_act)
        alpha = tf.where(no_inh, one, tf.where(no_act, 0.0 * one, self.alpha * one))
        beta = tf.where(no_inh, 0.0 * one, tf.where(no_act, -one, self.beta * one))
        return [alpha * r / (z_act + self.epsilon), -beta * r / (z_inh - self.epsilon)]


class ZPlusRule(AlphaBetaRule):
    """z+ as in iNNvestigate 2.1.2 (alpha=1, beta=0, bias ignored): ``R_i = sum_j z+_ij /
    z+_j R_j`` with ``z+_ij = x+_i w+_ij + x-_i w-_ij``. For non-negative inputs (ReLU
    layers) this is the deep Taylor z+ rule ``x_i w+_ij / sum_i x_i w+_ij``."""

    name = "z_plus"

    def __init__(self) -> None:
        super().__init__(alpha=1.0, beta=0.0, bias=False)

    def __repr__(self) -> str:
        return "ZPlusRule()"


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


__all__ = ["AlphaBetaRule", "AlphaBetaXRule", "ZPlusFastRule", "ZPlusRule"]
