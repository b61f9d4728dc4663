"""Fused fast paths: rule formulas computed with fewer layer calls.

The rule modules state each formula plainly; where a layer allows it, the same formula can
be computed by stacking terms into one call of the layer. :func:`alpha_beta` decides whether
such a path applies to one alpha-beta call, and computes it; :data:`ENABLED` is the one
switch that turns every fused path off (then each rule runs its plain formula; the two agree
to float rounding, which the tests check).

Fused alpha-beta paths, for a layer with a kernel and a single input:

* signed input: ``x+ w+ + x- w-`` (and ``x+ w- + x- w+``) as one call of the layer on
  ``[x+, x-]`` stacked along the input channels, with the kernels ``[w+; w-]`` stacked to
  match (needs the op's ``input_channel_axis`` and ``kernel_input_axis``);
* input known non-negative, ``beta > 0``: ``z+`` and ``z-`` as one call with ``w+`` and
  ``w-`` stacked along the output channels (needs ``output_channel_axis``);
* signed input that is ``>= 0`` at run time (a clip in ``[0, 1]`` at the first layer): the
  formula without the ``x-`` terms (the rule's own non-negative path), at half the cost of
  the stacked call, chosen by ``tf.cond``.

Fused z^B path (:func:`bounded`): ``[x, low, high]`` stacked along the input channels
against the kernels ``[w; -w+; -w-]``, one VJP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import tensorflow as tf

from analyzers.rules.base import Tensor, grads, stabilize

if TYPE_CHECKING:
    from analyzers.ops.base import LayerOp

#: The switch: ``False`` computes every rule by its plain formula.
ENABLED = True

#: ``(z+, z- or None, R) -> output gradients`` of an alpha-beta rule.
Seeds = Callable[[Tensor, Tensor | None, Tensor], list[Tensor]]


def alpha_beta(op: LayerOp, xs: Sequence[Tensor], r: Tensor, nonnegative: bool, *,
               beta: float, bias: bool, seeds: Seeds,
               plain_nonnegative: Callable[[], list[Tensor]] | None = None
               ) -> list[Tensor] | None:
    """The alpha-beta relevance of ``xs`` by a fused path, or ``None`` where none applies
    (or :data:`ENABLED` is off): then the rule computes its plain formula.

    Parameters
    ----------
    op, xs, r, nonnegative
        As given to the rule.
    beta
        The rule's ``beta`` (0: no inhibitory term).
    bias
        Whether the rule includes the layer's bias.
    seeds
        The rule's output gradients ``alpha R / z+`` and ``-beta R / z-``.
    plain_nonnegative
        The rule on the same input declared non-negative: used instead of the stacked call
        when the input has no negative value at run time.
    """
    if not ENABLED or len(xs) != 1 or not op.has_weights:
        return None
    if (not nonnegative and op.input_channel_axis is not None
            and op.kernel_input_axis is not None):
        signed = lambda: _signed_input(op, xs[0], r, beta, bias, seeds)[0]  # noqa: E731
        if plain_nonnegative is None:
            return [signed()]
        return [tf.cond(tf.reduce_all(xs[0] >= 0), lambda: plain_nonnegative()[0], signed)]
    if nonnegative and beta and op.output_channel_axis is not None:
        return _nonnegative_input(op, xs[0], r, bias, seeds)
    return None


def _signed_input(op: LayerOp, x: Tensor, r: Tensor, beta: float, bias: bool,
                  seeds: Seeds) -> list[Tensor]:
    """Signed input of a kernel layer: ``x+ w+ + x- w-`` as one call of the layer on
    ``[x+, x-]`` stacked along the input channels, with ``[w+; w-]`` stacked to match."""
    axis, kaxis = op.input_channel_axis, op.kernel_input_axis
    kernel = op.kernel
    wp, wn = tf.nn.relu(kernel), tf.minimum(kernel, 0.0)
    stacked = tf.concat([tf.nn.relu(x), tf.minimum(x, 0.0)], axis=axis)
    b = op.bias if bias else None
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(stacked)
        k_act = tf.concat([wp, wn], axis=kaxis)
        b_act = None if b is None else tf.nn.relu(b)
        z_inh = None
        if beta:
            z_act, z_inh = _linear_pair(
                op, [stacked], (k_act, tf.concat([wn, wp], axis=kaxis)),
                (b_act, None if b is None else tf.minimum(b, 0.0)))
        else:
            z_act = op.linear([stacked], k_act, b_act)
    targets = [z_act] if z_inh is None else [z_act, z_inh]
    g = grads(targets, [stacked], tape, seeds(z_act, z_inh, r))[0]
    pos, neg = tf.split(stacked * g, 2, axis=axis)
    return [pos + neg]


def _nonnegative_input(op: LayerOp, x: Tensor, r: Tensor, bias: bool, seeds: Seeds
                       ) -> list[Tensor]:
    """Input known non-negative (so ``x- = 0``): ``z+ = x w+`` and ``z- = x w-`` as one
    call of the layer with ``[w+, w-]`` stacked along the output channels."""
    b = op.bias if bias else None
    bp = None if b is None else tf.nn.relu(b)
    bn = None if b is None else tf.minimum(b, 0.0)
    kernel = op.kernel
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch([x])
        z_act, z_inh = _linear_pair(
            op, [x], (tf.nn.relu(kernel), tf.minimum(kernel, 0.0)), (bp, bn))
    g = grads([z_act, z_inh], [x], tape, seeds(z_act, z_inh, r))
    return [x * g[0]]


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


def bounded(op: LayerOp, xs: Sequence[Tensor], lows: Sequence[Tensor],
            highs: Sequence[Tensor], r: Tensor, epsilon: float) -> list[Tensor] | None:
    """The z^B relevance by one VJP, or ``None`` where the path does not apply.

    ``[x, low, high]`` stacked along the input channels against the kernels ``[w; -w+; -w-]``
    (that call's forward is not needed). The bounds' term of ``z`` is the same for every
    sample (the bounds are constants broadcast to the input, or carried through weightless
    layers), so it is computed on the first sample only.
    """
    if (not ENABLED or len(xs) != 1 or not op.has_weights or op.input_channel_axis is None
            or op.kernel_input_axis is None):
        return None
    x, low, high = xs[0], lows[0], highs[0]
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
    g = grads(z_stacked, [stacked], tape, r / stabilize(z, epsilon))[0]
    return [tf.add_n(tf.split(stacked * g, 3, axis=axis))]


__all__ = ["ENABLED", "alpha_beta", "bounded"]
