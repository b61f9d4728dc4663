"""The :class:`Rule` base class and the helpers the rule formulas share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import tensorflow as tf

if TYPE_CHECKING:  # rules are imported by the ops (their default rules)
    from analyzers.ops.base import LayerOp

Tensor = Any
_ZERO = tf.UnconnectedGradients.ZERO


def stabilize(z: Tensor, epsilon: float) -> Tensor:
    """``z + epsilon * sign(z)`` with ``sign(0) = +1`` (never zero for epsilon > 0)."""
    return tf.where(z >= 0, z + epsilon, z - epsilon)


def safe_divide(a: Tensor, b: Tensor, epsilon: float = 1e-7) -> Tensor:
    """``a / b`` with ``epsilon`` in place of a zero ``b`` (iNNvestigate's ``safe_divide``:
    unlike :func:`stabilize`, every nonzero ``b`` is left as it is)."""
    return a / (b + epsilon * tf.cast(tf.equal(b, 0.0), b.dtype))


def grads(z: Tensor | list, wrt: list[Tensor], tape: tf.GradientTape,
          seeds: Tensor | list) -> list[Tensor]:
    """``d(z)/d(wrt)`` seeded with ``seeds`` (unconnected inputs get zeros)."""
    return tape.gradient(z, wrt, output_gradients=seeds, unconnected_gradients=_ZERO)


def _signed_kernel(op: LayerOp, sign: int, kernel: Tensor | None = None) -> Tensor:
    k = op.kernel if kernel is None else kernel
    return tf.nn.relu(k) if sign > 0 else tf.minimum(k, 0.0)


def signed_part(op: LayerOp, xs: list[Tensor], sign: int, kernel: Tensor | None = None,
                bias: Tensor | None = None) -> Tensor | None:
    """``f(xs)`` with only the positive (``sign=+1``) or negative (``-1``) weights.

    Weightless maps (pooling, Add) have non-negative weights: their negative part is
    ``None`` (no contribution)."""
    if op.has_weights:
        return op.linear(xs, _signed_kernel(op, sign, kernel), bias)
    return op.linear(xs) if sign > 0 else None


def sum_present(*terms: Tensor | None) -> Tensor | None:
    """The sum of the terms that are not ``None`` (``None`` if all are)."""
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

    def forward(self, op: LayerOp, xs: Sequence[Tensor]) -> Tensor:
        """The layer's output in the analyzer's forward pass: ``op.forward(xs)``. A rule
        may compute it in a form its relevance pass reuses (the same values)."""
        return op.forward(list(xs))

    def __call__(self, op: LayerOp, xs: Sequence[Tensor], r: Tensor,
                 nonnegative: bool = False,
                 stand_ins: tuple[Tensor, ...] | None = None) -> list[Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


__all__ = ["Rule", "Tensor", "grads", "safe_divide", "signed_part", "stabilize",
           "sum_present"]
