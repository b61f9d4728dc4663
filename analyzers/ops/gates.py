"""``Multiply`` by gates: the product of one tensor with the outputs of sigmoid /
hard_sigmoid activations (squeeze-and-excitation, LSTM-style gating). Which inputs are
gates is decided on the whole graph (:func:`analyzers.model.graph.mark_gates`)."""

from __future__ import annotations

from typing import Any

from analyzers.ops.base import LayerOp, Tensor


class MultiplyOp(LayerOp):
    """``Multiply``: ``y = x * g1 * g2 ...`` with gates ``g`` (``gate_inputs[k]`` True for
    a gate input). Relevance goes to the one non-gate input (:class:`~analyzers.rules.GateRule`)."""

    mixes_inputs = True

    def __init__(self, layer: Any, name: str | None = None) -> None:
        super().__init__(layer, name)
        self.gate_inputs: tuple[bool, ...] = ()


    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        z = xs[0]
        for x in xs[1:]:
            z = z * x
        return z

    @property
    def gated_input(self) -> int:
        """Index of the input that gets the relevance."""
        return self.gate_inputs.index(False)


