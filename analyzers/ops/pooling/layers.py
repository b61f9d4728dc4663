"""Pooling layer ops: Max/Average pooling 1D/2D/3D and their global forms.

The *linear* map of every pooling op is an average over the same windows; relevance
rules that decompose it (``ZRule``) split relevance in proportion to the inputs. The
*preactivation* of a max pooling is the max itself; the gradient rule routes through it
and so gives winner-take-all, with exactly one winner per window: the first maximum in
window order (see :mod:`analyzers.ops.pooling.winner`), whatever kernel TensorFlow runs. An
op's ``ties`` switches to another tie rule (:mod:`analyzers.ops.pooling.ties`: TensorFlow's own,
which ``compat="innvestigate"`` uses).
"""

from __future__ import annotations

from typing import Any

from keras import ops

from analyzers.ops.base import LayerOp, Tensor
from analyzers.ops.pooling.ties import global_max_split, max_pool_every_max
from analyzers.ops.pooling.winner import global_max_first_winner, max_pool_first_winner


class PoolOp(LayerOp):
    """``MaxPooling*`` / ``AveragePooling*`` with any pool size, strides and padding."""

    mixes_inputs = True
    #: Which inputs of a max-pooling window with tied maxima get its gradient: ``"first"``
    #: (the first maximum in window order) or ``"every"`` (each, in full).
    ties = "first"

    def __init__(self, layer: Any, is_max: bool, name: str | None = None) -> None:
        super().__init__(layer, name)
        self.is_max = is_max

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        layer = self.layer
        return ops.average_pool(xs[0], layer.pool_size, strides=layer.strides,
                                padding=layer.padding, data_format=layer.data_format)

    def preactivation(self, xs: list[Tensor]) -> Tensor:
        if not self.is_max:
            return self.linear(xs)
        layer = self.layer
        pool = max_pool_every_max if self.ties == "every" else max_pool_first_winner
        return pool(xs[0], layer.pool_size, strides=layer.strides, padding=layer.padding,
                    data_format=layer.data_format)


class GlobalPoolOp(LayerOp):
    """``GlobalMaxPooling*`` / ``GlobalAveragePooling*`` (``keepdims`` respected)."""

    mixes_inputs = True
    #: Global max pooling at tied maxima: ``"first"`` (the first maximum, row-major) or
    #: ``"split"`` (an equal share each).
    ties = "first"

    def __init__(self, layer: Any, is_max: bool, name: str | None = None) -> None:
        super().__init__(layer, name)
        self.is_max = is_max

    def _axes(self, x: Tensor) -> list[int]:
        rank = len(x.shape)
        if self.layer.data_format == "channels_last":
            return list(range(1, rank - 1))
        return list(range(2, rank))

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        x = xs[0]
        return ops.mean(x, axis=self._axes(x), keepdims=self.layer.keepdims)

    def preactivation(self, xs: list[Tensor]) -> Tensor:
        if not self.is_max:
            return self.linear(xs)
        pool = global_max_split if self.ties == "split" else global_max_first_winner
        return pool(xs[0], self.layer.data_format, self.layer.keepdims)
