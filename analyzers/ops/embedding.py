"""``Embedding``: a lookup of learned vectors by integer indices."""

from __future__ import annotations

from analyzers.ops.base import LayerOp, Tensor


class EmbeddingOp(LayerOp):
    """``keras.layers.Embedding``. Its indices carry no relevance (they are not values a
    function of the input could be differentiated by), so the looked-up vectors are
    constants to the rules: relevance reaching them is absorbed, as by a bias
    (:class:`~analyzers.rules.ConstantRule`). A learned position table added to the tokens
    keeps the share the sum gives it."""

    mixes_inputs = True
    preserves_nonnegative = False

    def forward(self, xs: list[Tensor]) -> Tensor:
        return self.layer(xs[0])

    def preactivation(self, xs: list[Tensor]) -> Tensor:
        return self.forward(xs)

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        raise TypeError(f"'{self.name}' is a lookup, not a linear map of its input")
