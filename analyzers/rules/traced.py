"""Relevance through the operations a layer's call runs (custom layers, attention)."""

from __future__ import annotations

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

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        graph = op.modified(self.convention, self.epsilon)
        return tracing.traced_relevance(graph, list(xs), op.weights, r)


__all__ = ["TracedRule"]
