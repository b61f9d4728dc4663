"""Layers explained through the TensorFlow operations their ``call`` runs.

A custom layer (a ``keras.layers.Layer`` subclass defined outside Keras, or a ``Lambda``), a
``keras.ops`` call inside a functional model, and ``MultiHeadAttention`` are explained without a
rule per class: the call is traced once, with the layer's weights as explicit inputs
(``Layer.stateless_call``), and every operation it runs gets its rule from
:mod:`analyzers.tracing` (weight contractions: epsilon; products of two signals: AttnLRP's
equal split or CP-LRP's constant attention weights; softmax: its gradient times input;
normalising statistics held constant; elementwise nonlinearities: the identity rule). The
rewritten call runs inside the analyzer's compiled function with the layer's current weights,
so an analyzer follows further training.

An operation without a rule is refused when the model graph is built, naming the layer, the
operation and what to do (:meth:`TracedOp.unsupported`).
"""

from __future__ import annotations

import inspect
from typing import Any

import keras
import tensorflow as tf

from analyzers import tracing
from analyzers.ops.base import LayerOp, Tensor

#: Gradient analyzers, which explain any differentiable model (named in refusals).


def explained_by_operations(layer: Any) -> bool:
    """Whether ``layer`` is explained through its operations when no registration handles it:
    a ``keras.ops`` call in a functional model, a ``Lambda`` layer, or a layer class defined
    outside Keras."""
    if not isinstance(layer, keras.layers.Layer):
        return isinstance(layer, keras.Operation)
    if isinstance(layer, keras.layers.Lambda):
        return True
    return not type(layer).__module__.startswith("keras.")


class CallTemplate:
    """How a model's node called its layer: the call's arguments with one slot per input
    tensor (in the order of the node's input tensors).

    Parameters
    ----------
    args, kwargs
        The call's arguments, KerasTensors in place.
    tensors
        The node's input KerasTensors.
    """

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any],
                 tensors: list[Any]) -> None:
        self.args = args
        self.kwargs = {k: v for k, v in kwargs.items() if k != "training"}
        self.slots = {id(t): k for k, t in enumerate(tensors)}
        self.specs = [tf.TensorSpec(t.shape, t.dtype) for t in tensors]

    def fill(self, values: list[Tensor]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's arguments with ``values`` for the input tensors."""
        def put(a: Any) -> Any:
            return values[self.slots[id(a)]] if isinstance(a, keras.KerasTensor) else a
        return (tuple(keras.tree.map_structure(put, list(self.args))),
                {k: keras.tree.map_structure(put, v) for k, v in self.kwargs.items()})


def _takes_training(layer: Any) -> bool:
    call = getattr(layer, "call", None)
    try:
        return call is not None and "training" in inspect.signature(call).parameters
    except (TypeError, ValueError):
        return False


class TracedOp(LayerOp):
    """A layer explained through the operations its call runs (see module docstring).

    Built from the layer alone; :meth:`bind` gives it the call it explains (the arguments
    of the model's node) and traces it. ``softmax_inputs`` flags inputs that are softmax
    outputs computed outside the call (under CP-LRP an attention weight held constant where
    it multiplies another signal); the model graph sets it.
    """

    mixes_inputs = True
    preserves_nonnegative = False

    def __init__(self, layer: Any, name: str | None = None) -> None:
        super().__init__(layer, name)
        self.template: CallTemplate | None = None
        self.trace: tracing.Trace | None = None
        self.softmax_inputs: tuple[bool, ...] = ()
        self._plans: dict[tuple[Any, ...], tracing.Plan] = {}
        self._graphs: dict[tuple[Any, ...], tracing.ModifiedGraph] = {}

    # -- the call ------------------------------------------------------------------------
    @property
    def variables(self) -> list[Any]:
        """The layer's variables, trainable first (an operation has none)."""
        if not isinstance(self.layer, keras.layers.Layer):
            return []
        return list(self.layer.trainable_variables) + list(self.layer.non_trainable_variables)

    @property
    def weights(self) -> list[Tensor]:
        """The current values of :attr:`variables`."""
        return [tf.convert_to_tensor(v) for v in self.variables]

    def check_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise ``ValueError`` for a call this op cannot explain (subclasses)."""

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any], tensors: list[Any]) -> None:
        """Set the call (a node's arguments and input tensors) and trace it.

        Raises
        ------
        ValueError
            If the call cannot be traced into one output tensor.
        """
        self.check_call(args, kwargs)
        self.template = CallTemplate(args, kwargs, tensors)
        layer = self.layer
        n_trainable = len(layer.trainable_variables) if isinstance(layer, keras.layers.Layer) else 0

        def call(xs: list[Tensor], ws: list[Tensor]) -> Any:
            a, kw = self._arguments(xs)
            if not isinstance(layer, keras.layers.Layer):
                return layer(*a, **kw)
            out, _ = layer.stateless_call(ws[:n_trainable], ws[n_trainable:], *a, **kw)
            return out

        specs = [tf.TensorSpec(v.shape, v.dtype) for v in self.variables]
        try:
            self.trace = tracing.trace_function(call, self.template.specs, specs)
        except Exception as err:  # noqa: BLE001  (whatever the layer raises: not traceable)
            raise ValueError(f"its call could not be traced into one output tensor "
                             f"({type(err).__name__}: {str(err)[:200]})") from err
        self.softmax_inputs = (False,) * len(tensors)

    def _arguments(self, xs: list[Tensor]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if self.template is None:
            raise ValueError(f"layer '{self.name}' is explained through its operations but was "
                             "not given its call (bind); it is only supported as a node of a "
                             "functional model, not inside TimeDistributed")
        args, kwargs = self.template.fill(xs)
        if _takes_training(self.layer):
            kwargs["training"] = False
        return args, kwargs

    def forward(self, xs: list[Tensor]) -> Tensor:
        args, kwargs = self._arguments(xs)
        return self.layer(*args, **kwargs)

    def preactivation(self, xs: list[Tensor]) -> Tensor:
        return self.forward(xs)

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        raise TypeError(f"layer '{self.name}' is explained through its operations; its rule is "
                        "analyzers.rules.TracedRule (the analyzers 'attnlrp' and 'cp_lrp')")

    # -- the rules -----------------------------------------------------------------------
    def plan(self, convention: str) -> tracing.Plan:
        """The roles of the call's operations under ``convention``."""
        if self.trace is None:
            self._arguments([])  # raises: not bound
        key = (convention, self.softmax_inputs)
        if key not in self._plans:
            self._plans[key] = tracing.plan_relevance(self.trace, convention,
                                                      self.softmax_inputs)
        return self._plans[key]

    def modified(self, convention: str, epsilon: float) -> tracing.ModifiedGraph:
        """The call rewritten for ``convention`` with the epsilon rule's ``epsilon``."""
        key = (convention, float(epsilon), self.softmax_inputs)
        if key not in self._graphs:
            self._graphs[key] = tracing.modified_graph(self.trace, self.plan(convention),
                                                       epsilon)
        return self._graphs[key]

    def unsupported(self, convention: str) -> str | None:
        """Why the call cannot be explained under ``convention`` (``None`` if it can): the
        first operation without a rule, and what to do."""
        missing = self.plan(convention).unsupported
        if not missing:
            return None
        first = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        why = f" here: {first.reason}" if first.reason else ""
        return (f"op '{first.op_type}'{more} in its call has no rule{why}; see "
                "analyzers.tracing.register_operation")


class AttentionOp(TracedOp):
    """``keras.layers.MultiHeadAttention`` (any heads, ``attention_axes``, masks, biases;
    dropout is inactive at inference), explained through the operations of its own call:

    * the query, key, value and output projections (``EinsumDense``) are weight layers: the
      epsilon rule;
    * the scores ``Q K^T`` and the output ``A V`` are bilinear products: under AttnLRP each
      factor gets half of the product's relevance, under CP-LRP the attention weights ``A`` are
      held constant and ``V`` gets all of it (``Q`` and ``K`` none);
    * the softmax (masked: the mask is a held input) gets AttnLRP's softmax rule.

    Tracing Keras's own call keeps every option of the layer exact; the roles found are
    checked in ``tests/analyzers/test_attention.py``.
    """

    def check_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if kwargs.get("return_attention_scores"):
            raise ValueError("return_attention_scores=True gives a second output; call it "
                             "without, or explain the scores with a model of their own")


__all__ = ["AttentionOp", "CallTemplate", "TracedOp", "explained_by_operations"]
