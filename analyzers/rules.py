"""Relevance rules: one small class per rule.

A rule maps ``(op, inputs, output relevance)`` to the relevance of each input:
``rule(op, xs, r, nonnegative=False) -> list[tensor]``. ``op`` is a
:class:`~analyzers.ops.base.LayerOp`; ``nonnegative=True`` tells a rule that every input is
known to be >= 0 (it may then skip the negative-input terms; the result is the same).

All rules use the gradient-as-relevance identity: for a linear map ``z = f(x)`` with
weights ``w``, ``sum_j w_ij s_j`` is the vector-Jacobian product of ``f`` at ``s``, so
``R_i = x_i * sum_j w_ij R_j / z_j`` is ``x * VJP(f, R / z)``. The rules are generic over
the layer's rank (Dense, Conv1D/2D/3D, transposed convolutions, pooling) because ``f`` is
the layer's own map evaluated with modified weights.

Denominators are stabilized by adding ``eps * sign(z)`` (``sign(0) = +1``), so there is
never a division by zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

if TYPE_CHECKING:  # rules are imported by the ops (their default rules)
    from analyzers.ops.base import LayerOp

Tensor = Any
_ZERO = tf.UnconnectedGradients.ZERO


def stabilize(z: Tensor, epsilon: float) -> Tensor:
    """``z + epsilon * sign(z)`` with ``sign(0) = +1`` (never zero for epsilon > 0)."""
    return tf.where(z >= 0, z + epsilon, z - epsilon)


def _grads(z: Tensor | list, wrt: list[Tensor], tape: tf.GradientTape,
           seeds: Tensor | list) -> list[Tensor]:
    return tape.gradient(z, wrt, output_gradients=seeds, unconnected_gradients=_ZERO)


def _signed_kernel(op: LayerOp, sign: int, kernel: Tensor | None = None) -> Tensor:
    k = op.kernel if kernel is None else kernel
    return tf.nn.relu(k) if sign > 0 else tf.minimum(k, 0.0)


def _part(op: LayerOp, xs: list[Tensor], sign: int, kernel: Tensor | None = None,
          bias: Tensor | None = None) -> Tensor | None:
    """``f(xs)`` with only the positive (``sign=+1``) or negative (``-1``) weights.

    Weightless maps (pooling, Add) have non-negative weights: their negative part is
    ``None`` (no contribution)."""
    if op.has_weights:
        return op.linear(xs, _signed_kernel(op, sign, kernel), bias)
    return op.linear(xs) if sign > 0 else None


def _linear_pair(op: LayerOp, xs: list[Tensor], kernels: tuple[Tensor, Tensor],
                 biases: tuple[Tensor | None, Tensor | None]) -> tuple[Tensor, Tensor]:
    """``op.linear(xs, kernels[0], biases[0])`` and the same with ``kernels[1]``: one call
    with the kernels stacked along the output channels where the op allows it."""
    axis = op.output_channel_axis
    if axis is None or len(xs) != 1:
        return (op.linear(xs, kernels[0], biases[0]), op.linear(xs, kernels[1], biases[1]))
    kernel = tf.concat(kernels, axis=op.output_axis)
    if biases[0] is None and biases[1] is None:
        bias = None
    else:
        zero = tf.zeros([tf.shape(kernels[0])[op.output_axis]], kernels[0].dtype)
        bias = tf.concat([zero if b is None else b for b in biases], axis=0)
    z_a, z_b = tf.split(op.linear(xs, kernel, bias), 2, axis=axis)
    return z_a, z_b


def _sum(*terms: Tensor | None) -> Tensor | None:
    present = [t for t in terms if t is not None]
    if not present:
        return None
    return tf.add_n(present) if len(present) > 1 else present[0]


class Rule:
    """Base class of relevance rules.

    ``rule(op, xs, r, nonnegative=False, stand_ins=None)`` returns the relevance of each
    input in ``xs``. Rules that compute with *stand-in inputs* instead of the input itself
    (z^B: the bounds, w^2 / flat: ones) say so by returning them from
    :meth:`stand_in_inputs`; for a first layer, the engine carries those stand-ins from the
    model input through the weightless shape layers before it (so that zero padding gets
    bounds [0, 0] and is no input) and passes them as ``stand_ins`` (one tuple for the
    layer's single input). Without ``stand_ins`` a rule computes them from ``xs``.
    """

    #: Short name used in messages and ``repr``.
    name = "rule"

    def stand_in_inputs(self, x: Tensor) -> tuple[Tensor, ...] | None:
        """The stand-ins this rule uses in place of input ``x`` (``None``: it uses ``x``)."""
        return None

    def __call__(self, op: LayerOp, xs: Sequence[Tensor], r: Tensor,
                 nonnegative: bool = False,
                 stand_ins: tuple[Tensor, ...] | None = None) -> list[Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


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
        return _grads(z, xs, tape, r)


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
        g = _grads(z, xs, tape, r / stabilize(z, self.epsilon))
        return [x * gi for x, gi in zip(xs, g)]


class ZRule(EpsilonRule):
    """LRP-0 (the z rule): the epsilon rule with a negligible stabilizer (1e-12) that only
    guards against division by zero. Splits in proportion to the contributions."""

    name = "z"

    def __init__(self, bias: bool = True) -> None:
        super().__init__(epsilon=1e-12, bias=bias)


class AlphaBetaRule(Rule):
    """LRP-alpha-beta: positive and negative contributions are normalized separately,
    ``R_i = sum_j (alpha z+_ij / z+_j - beta z-_ij / z-_j) R_j``.

    ``z+_ij = x+_i w+_ij + x-_i w-_ij`` (contributions > 0), ``z-_ij = x+_i w-_ij + x-_i w+_ij``.
    With ``bias=True`` the positive part of the bias joins ``z+_j`` and the negative part
    joins ``z-_j`` (iNNvestigate 2.1.2 adds the whole bias to both denominators). Requires
    ``alpha - beta = 1`` (conservation), checked here.

    A neuron with no inhibitory contribution (``z-_j = 0``) passes its relevance by the
    activating part alone (``alpha`` taken as 1), one with no activating contribution by the
    inhibitory part alone, so relevance is conserved; iNNvestigate (and the textbook
    formula) give ``alpha R_j`` and ``-beta R_j`` there (the latter flips the sign of a
    neuron whose contributions are all negative). ``conserve_degenerate=False`` gives the
    textbook behaviour.
    """

    name = "alpha_beta"

    def __init__(self, alpha: float = 1.0, beta: float = 0.0, bias: bool = True,
                 epsilon: float = 1e-9, conserve_degenerate: bool = True) -> None:
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

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        if (not nonnegative and len(xs) == 1 and op.has_weights
                and op.input_channel_axis is not None and op.kernel_input_axis is not None):
            # an input that is >= 0 at run time (an image or clip in [0, 1]) has no x- terms:
            # the same formula without them, at half the cost of the stacked [x+, x-] call
            return [tf.cond(tf.reduce_all(xs[0] >= 0),
                            lambda: self(op, xs, r, nonnegative=True)[0],
                            lambda: self._stacked(op, xs[0], r)[0])]
        xs = list(xs)
        xp = xs if nonnegative else [tf.nn.relu(x) for x in xs]
        xn = [] if nonnegative else [tf.minimum(x, 0.0) for x in xs]
        b = op.bias if (self.bias and op.has_weights) else None
        bp = None if b is None else tf.nn.relu(b)
        bn = None if b is None else tf.minimum(b, 0.0)
        kernel = op.kernel if op.has_weights else None
        watched = xp + xn
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(watched)
            if self.beta and op.has_weights and not xn:  # one call for z+ and z-
                z_act, z_inh = _linear_pair(
                    op, xp, (tf.nn.relu(kernel), tf.minimum(kernel, 0.0)), (bp, bn))
            else:
                z_act = _sum(_part(op, xp, +1, kernel, bp),
                             _part(op, xn, -1, kernel) if xn else None)
                z_inh = None
                if self.beta:
                    z_inh = _sum(_part(op, xp, -1, kernel, bn),
                                 _part(op, xn, +1, kernel) if xn else None)
        targets = [z_act] if z_inh is None else [z_act, z_inh]
        seeds = self._seeds(z_act, z_inh, r)
        g = _grads(targets, watched, tape, seeds)
        rel = [x * gi for x, gi in zip(xp, g[: len(xp)])]
        if xn:
            rel = [a + x * gi for a, x, gi in zip(rel, xn, g[len(xp):])]
        return rel

    def _seeds(self, z_act: Tensor, z_inh: Tensor | None, r: Tensor) -> list[Tensor]:
        """Output gradients ``alpha R / z+`` and ``-beta R / z-`` (denominators are
        sign-definite: ``z+ >= 0``, ``z- <= 0``). A neuron without inhibitory (or without
        activating) contributions gives all its relevance to the part it has, so that
        ``alpha - beta = 1`` still conserves (unless ``conserve_degenerate=False``)."""
        if z_inh is None:  # no inhibitory part at all (beta = 0, or a weightless map)
            alpha = 1.0 if (self.beta and self.conserve_degenerate) else self.alpha
            return [alpha * r / (z_act + self.epsilon)]
        if not self.conserve_degenerate:
            return [self.alpha * r / (z_act + self.epsilon),
                    -self.beta * r / (z_inh - self.epsilon)]
        no_inh = tf.equal(z_inh, 0.0)
        no_act = tf.equal(z_act, 0.0)
        one = tf.ones_like(z_act)
        alpha = tf.where(no_inh, one, tf.where(no_act, 0.0 * one, self.alpha * one))
        beta = tf.where(no_inh, 0.0 * one, tf.where(no_act, -one, self.beta * one))
        return [alpha * r / (z_act + self.epsilon), -beta * r / (z_inh - self.epsilon)]

    def _stacked(self, op: LayerOp, x: Tensor, r: Tensor) -> list[Tensor]:
        """Signed input of a kernel layer: ``x+ w+ + x- w-`` as one call of the layer on
        ``[x+, x-]`` stacked along the input channels, with ``[w+; w-]`` stacked to match."""
        axis, kaxis = op.input_channel_axis, op.kernel_input_axis
        kernel = op.kernel
        wp, wn = tf.nn.relu(kernel), tf.minimum(kernel, 0.0)
        stacked = tf.concat([tf.nn.relu(x), tf.minimum(x, 0.0)], axis=axis)
        b = op.bias if self.bias else None
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(stacked)
            k_act = tf.concat([wp, wn], axis=kaxis)
            b_act = None if b is None else tf.nn.relu(b)
            z_inh = None
            if self.beta:
                z_act, z_inh = _linear_pair(
                    op, [stacked], (k_act, tf.concat([wn, wp], axis=kaxis)),
                    (b_act, None if b is None else tf.minimum(b, 0.0)))
            else:
                z_act = op.linear([stacked], k_act, b_act)
        targets = [z_act] if z_inh is None else [z_act, z_inh]
        g = _grads(targets, [stacked], tape, self._seeds(z_act, z_inh, r))[0]
        pos, neg = tf.split(stacked * g, 2, axis=axis)
        return [pos + neg]


class ZPlusRule(AlphaBetaRule):
    """z+ as in iNNvestigate 2.1.2 (alpha=1, beta=0, bias ignored): ``R_i = sum_j z+_ij /
    z+_j R_j`` with ``z+_ij = x+_i w+_ij + x-_i w-_ij``. For non-negative inputs (ReLU
    layers) this is the deep Taylor z+ rule ``x_i w+_ij / sum_i x_i w+_ij``."""

    name = "z_plus"

    def __init__(self) -> None:
        super().__init__(alpha=1.0, beta=0.0, bias=False)

    def __repr__(self) -> str:
        return "ZPlusRule()"


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
        if (len(xs) == 1 and op.has_weights and op.input_channel_axis is not None
                and op.kernel_input_axis is not None):
            return [self._stacked(op, xs[0], lows[0], highs[0], r)]
        kernel = op.kernel if op.has_weights else None
        watched = xs + lows + highs
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(watched)
            z = op.linear(xs, kernel, None) if op.has_weights else op.linear(xs)
            z = z - _part(op, lows, +1, kernel)
            neg = _part(op, highs, -1, kernel)
            if neg is not None:
                z = z - neg
        g = _grads(z, watched, tape, r / stabilize(z, self.epsilon))
        n = len(xs)
        return [x * gx + lo * gl + hi * gh for x, lo, hi, gx, gl, gh in
                zip(xs, lows, highs, g[:n], g[n:2 * n], g[2 * n:])]

    def _stacked(self, op: LayerOp, x: Tensor, low: Tensor, high: Tensor, r: Tensor) -> Tensor:
        """The same formula with one VJP: ``[x, low, high]`` stacked along the input channels
        against the kernels ``[w; -w+; -w-]`` (that call's forward is not needed). The bounds'
        term of ``z`` is the same for every sample (``low``/``high`` are the rule's bounds
        broadcast), so it is computed on the first sample only."""
        axis, kaxis = op.input_channel_axis, op.kernel_input_axis
        kernel = op.kernel
        wp, wn = tf.nn.relu(kernel), tf.minimum(kernel, 0.0)
        bounds = op.linear([tf.concat([low[:1], high[:1]], axis=axis)],
                           tf.concat([wp, wn], axis=kaxis), None)
        z = op.linear([x], kernel, None) - bounds
        stacked = tf.concat([x, low, high], axis=axis)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(stacked)
            z_stacked = op.linear([stacked], tf.concat([kernel, -wp, -wn], axis=kaxis), None)
        g = _grads(z_stacked, [stacked], tape, r / stabilize(z, self.epsilon))[0]
        return tf.add_n(tf.split(stacked * g, 3, axis=axis))


class _InputIndependentRule(Rule):
    """Shared part of w^2 and flat: redistribution by modified weights, not by inputs."""

    epsilon = 1e-12

    def _kernel(self, kernel: Tensor) -> Tensor:
        raise NotImplementedError

    def stand_in_inputs(self, x: Tensor) -> tuple[Tensor]:
        """The inputs the weights are applied to: ones."""
        return (tf.ones_like(x),)

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        ones = ([stand_ins[0]] if stand_ins is not None
                else [self.stand_in_inputs(x)[0] for x in xs])
        kernel = self._kernel(op.kernel) if op.has_weights else None
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(ones)
            z = op.linear(ones, kernel, None) if op.has_weights else op.linear(ones)
        return _grads(z, ones, tape, r / stabilize(z, self.epsilon))


class WSquareRule(_InputIndependentRule):
    """Deep Taylor w^2 rule (unbounded inputs): ``R_i = sum_j w_ij^2 / sum_i' w_i'j^2 R_j``.
    On weightless maps (pooling, Add) it splits evenly over each window."""

    name = "w_square"

    def __init__(self) -> None:
        pass

    def _kernel(self, kernel: Tensor) -> Tensor:
        return tf.square(kernel)


class FlatRule(_InputIndependentRule):
    """Flat rule: all weights set to one, ``R_i = sum_j R_j / n_j`` over the receptive field."""

    name = "flat"

    def __init__(self) -> None:
        pass

    def _kernel(self, kernel: Tensor) -> Tensor:
        return tf.ones_like(kernel)


class IdentityRule(Rule):
    """Relevance passes through unchanged: ``R_in = R`` (elementwise activations such as
    ReLU, swish, GELU, tanh, as AttnLRP treats elementwise nonlinearities)."""

    name = "identity"

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        (x,) = xs
        if x.shape.rank is not None and r.shape.rank is not None and x.shape != r.shape:
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


__all__ = [
    "AlphaBetaRule", "BoundedRule", "EpsilonRule", "FlatRule", "GateRule", "GradientRule",
    "IdentityRule", "Rule",
    "WSquareRule", "ZPlusRule", "ZRule", "stabilize",
]
