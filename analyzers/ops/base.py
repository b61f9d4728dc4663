"""The layer-operation interface that relevance rules work on.

A :class:`LayerOp` wraps one Keras layer (or a canonized combination of layers) and
exposes what relevance rules need:

* :meth:`LayerOp.forward` — the layer's true output (activation included);
* :meth:`LayerOp.preactivation` — the output before the activation function; the
  gradient rule routes relevance through its vector-Jacobian product;
* :meth:`LayerOp.linear` — the linear map that LRP rules decompose, evaluated with
  replaceable kernel and bias (``linear(xs, kernel=w_plus, bias=None)`` is the z+ forward
  pass). For a weightless layer (pooling, Add) the kernel argument is ignored; the
  "weights" of those maps are non-negative constants. A max-pooling layer's linear map
  is the average pooling over the same windows (the proportional surrogate).

Inputs are always passed as a list (one tensor for single-input layers).

Every op class is registered in :mod:`analyzers.ops.factory` with the Keras classes it
handles, its configuration check and its default rule (:meth:`LayerOp.standard_rule`);
a registration without a rule is refused. A normalising layer (LayerNormalization) is linear only
with its statistics held constant: :meth:`LayerOp.at` returns that linearisation at the
actual inputs, which is what rules decompose.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from analyzers.ops.activations import NONNEGATIVE

Tensor = Any  # a tf.Tensor (kept loose for type hints)


class LayerOp:
    """Base class: a weightless, linear, single-input layer (identity by default).

    Parameters
    ----------
    layer
        The Keras layer whose kind decides the rule (for ``TimeDistributed`` the inner layer).
    name
        Name reported in messages (the Keras layer's name).
    """

    #: True if the op carries a weight kernel (Dense, Conv, folded BatchNormalization, ...).
    has_weights: bool = False
    #: True if the linear map mixes several inputs by a weighted sum (Add, pooling, kernels).
    mixes_inputs: bool = False
    #: True if non-negative inputs give a non-negative output (weightless layers).
    preserves_nonnegative: bool = True
    #: Axis of the input holding its channels, and axis of the kernel indexing input
    #: channels, for kernel layers whose linear map is a sum over input channels (then
    #: ``f(a, A) + f(b, B) = f(concat(a, b), concat(A, B))``, one call instead of two).
    input_channel_axis: int | None = None
    kernel_input_axis: int | None = None
    #: Axis of the output holding its channels (kernel layers): kernels stacked along
    #: ``output_axis`` give outputs stacked along it (two maps in one call).
    output_channel_axis: int | None = None

    #: The registration that made the op (set by :func:`analyzers.ops.make_op`).
    support: Any = None

    def __init__(self, layer: Any, name: str | None = None) -> None:
        self.layer = layer
        self.name = name or getattr(layer, "name", type(self).__name__)
        self.activation: Callable[[Tensor], Tensor] | None = None
        self.activation_name: str = "linear"

    # -- rule ------------------------------------------------------------------------
    def standard_rule(self, max_pooling: str) -> Any:
        """The op's default rule (a :class:`~analyzers.rules.Rule`) from its registration
        (:mod:`analyzers.ops.factory`), or ``None`` for a layer with weights, whose rule
        the composite gives. An op not made by ``make_op`` has none: an error."""
        if self.support is None:
            raise ValueError(f"layer op {self!r} was not created by analyzers.ops.make_op: "
                             "it has no registered default rule")
        return self.support.default_rule(self, max_pooling)

    def at(self, xs: list[Tensor]) -> LayerOp:
        """The op as rules decompose it at inputs ``xs`` (itself, unless its linear form
        depends on the input, as LayerNormalization's statistics do)."""
        return self

    def without_activation(self) -> LayerOp:
        """A copy of the op with its activation removed (a stripped final softmax)."""
        op = copy.copy(self)
        op.activation = None
        op.activation_name = "linear"
        return op

    # -- weights ---------------------------------------------------------------------
    @property
    def kernel(self) -> Tensor | None:
        """The effective kernel as a tensor (``None`` for weightless layers)."""
        return None

    @property
    def bias(self) -> Tensor | None:
        """The effective bias as a tensor (``None`` if the layer has none)."""
        return None

    # -- maps ------------------------------------------------------------------------
    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        """The linear map that LRP rules decompose (identity here)."""
        return xs[0]

    def preactivation(self, xs: list[Tensor]) -> Tensor:
        """The layer's output before its activation function."""
        return self.linear(xs, self.kernel, self.bias)

    def forward(self, xs: list[Tensor]) -> Tensor:
        """The layer's output (activation applied)."""
        z = self.preactivation(xs)
        return z if self.activation is None else self.activation(z)

    @property
    def output_nonnegative(self) -> bool:
        """True if the output is non-negative whatever the input (ReLU, sigmoid, ...)."""
        return self.activation_name in NONNEGATIVE

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
