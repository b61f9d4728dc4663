"""Layers whose output is a constant to the rules: relevance reaching them is absorbed."""

from __future__ import annotations

from analyzers.rules.base import Rule


class ConstantRule(Rule):
    """No relevance passes to the inputs (``None`` for each): the layer's output does not
    depend on any value relevance could reach, like a bias (an ``Embedding`` lookup of
    positions, a learned class token)."""

    name = "constant"

    def __call__(self, op, xs, r, nonnegative=False, stand_ins=None):
        return [None] * len(xs)

    def __repr__(self) -> str:
        return "ConstantRule()"


__all__ = ["ConstantRule"]
