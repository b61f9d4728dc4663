"""Relevance through the operations a layer's call runs (custom layers, attention)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from analyzers import tracing
from analyzers.rules.base import Rule


class TracedRule(Rule):
    """The rules of :mod:`analyzers.tracing` applied to the operations of a layer's call (an
    :class:`~analyzers.ops.traced.TracedOp`): the epsilon rule at weight contractions,
    ``convention`` at bilinear products (``"attnlrp"``: an equal split between the factors;
    ``"cp_lrp"``: attention weights held constant), the softmax rule, normalising statistics
    held constant, the identity rule for elementwise nonlinearities.

    Parameters
    ----------
    convention
        ``"attnlrp"`` or ``"cp_lrp"``.
    epsilon
        Stabilizer of the epsilon rule at the call's weight contractions (> 0).
    """

    name = "traced"

    def __init__(self, convention: str = tracing.ATTNLRP, epsilon: float = 1e-6) -> None:
        if convention not in tracing.CONVENTIONS:
            raise ValueError(f"convention must be one of {', '.join(tracing.CONVENTIONS)}; "
                             f"got {convention!r}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
        self.convention = convention
        self.epsilon = float(epsilon)

        #: op id -> (inputs, output) of :meth:`forward` in the graph being built
        self._outputs: dict[int, tuple[list, Any]] = {}

    def forward(self, op, xs):
        """The layer's output computed by its rewritten call (graph mode; the same values),
        kept so that the relevance pass differentiates it instead of running the call again."""
        if tf.executing_eagerly():
            return op.forward(list(xs))
        graph = op.modified(self.convention, self.epsilon)
        y = tracing.traced_output(graph, list(xs), op.weights)
        self._outputs[id(op)] = (list(xs), y)
        return y

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        graph = op.modified(self.convention, self.epsilon)
        kept = self._outputs.get(id(op))
        if (kept is not None and not tf.executing_eagerly() and len(kept[0]) == len(xs)
                and all(a is b for a, b in zip(kept[0], xs))
                and kept[1].graph is tf.compat.v1.get_default_graph()):
            return tracing.relevance_at(graph, kept[1], list(xs), r)
        return tracing.traced_relevance(graph, list(xs), op.weights, r)

    def __repr__(self) -> str:
        return f"TracedRule(convention={self.convention!r}, epsilon={self.epsilon!r})"


__all__ = ["TracedRule"]
