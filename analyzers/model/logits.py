"""The explained function of the gradient analyzers: the model's logits, for any model.

The gradient family only differentiates the model, so it needs no rule per layer. A model
the relevance engine can flatten (:func:`analyzers.model.graph.build_graph`) runs as that graph
(softmax stripped); any other single-input Keras model is called as it is, with a softmax
of its last layer (an ``activation="softmax"`` or a ``Softmax`` / ``Activation("softmax")``
layer) left out, so that the logits are explained as in iNNvestigate's ``model_wo_softmax``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from analyzers.errors import UnsupportedLayerError
from analyzers.model.graph import Graph, build_graph

logger = logging.getLogger(__name__)

Forward = Callable[[tf.Tensor], tf.Tensor]


def _is_softmax(fn: Any) -> bool:
    return getattr(fn, "__name__", None) == "softmax"


def check_model(model: Any) -> None:
    """Raise ``ValueError`` unless ``model`` is a built Keras model with one input and one
    output."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"expected a keras.Model, got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"model '{model.name}' is not built: call it on data or build it "
                         "with an input shape before creating an analyzer")
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError) as err:
        raise ValueError(f"model '{model.name}' has no defined inputs/outputs ({err}); "
                         "build it with keras.Input") from err
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"analyzers explain models with one input and one output; "
                         f"'{model.name}' has {len(inputs)} inputs and {len(outputs)} outputs")


def _called_model(model: Any) -> Forward:
    """``x -> logits`` by calling ``model`` (its last layer's softmax left out)."""
    history = getattr(model.outputs[0], "_keras_history", None)
    layer = history.operation if history is not None else None
    if layer is None or isinstance(layer, keras.Model):
        return lambda x: model(x, training=False)
    node = layer._inbound_nodes[history.node_index]
    if isinstance(layer, keras.layers.Softmax) or (
            isinstance(layer, keras.layers.Activation) and _is_softmax(layer.activation)):
        body = keras.Model(model.inputs, node.input_tensors[0])
        _note_once(f"softmax layer '{layer.name}' of '{model.name}' left out: explaining "
                   "the logits")
        return lambda x: body(x, training=False)
    if not _is_softmax(getattr(layer, "activation", None)):
        return lambda x: model(x, training=False)
    body = keras.Model(model.inputs, node.input_tensors)
    _note_once(f"softmax of layer '{layer.name}' of '{model.name}' left out: explaining the "
               "logits")

    def forward(x: tf.Tensor) -> tf.Tensor:
        hidden = body(x, training=False)
        saved = layer.activation
        layer.activation = keras.activations.linear  # only while tracing this call
        try:
            return layer(hidden, training=False)
        finally:
            layer.activation = saved
    return forward


def logit_function(model: Any) -> tuple[Forward, Graph | None]:
    """``(x -> logits, graph or None)`` for ``model`` (see module docstring).

    Raises
    ------
    ValueError
        If the model is not built, or has several inputs or outputs.
    """
    check_model(model)
    try:
        graph = build_graph(model)
    except (UnsupportedLayerError, ValueError) as err:  # e.g. an LSTM
        _note_once(f"model '{model.name}': {_why(err)}; the gradient analyzers call the "
                   "model itself")
        return _called_model(model), None
    return graph.forward, graph


_NOTED: set[str] = set()


def _why(err: Exception) -> str:
    """One short clause: why the relevance engine has no graph of the model."""
    if isinstance(err, UnsupportedLayerError):
        return f"layer '{err.layer_name}' ({err.layer_class}) has no relevance rule"
    first = str(err).splitlines()[0] if str(err) else type(err).__name__
    return first if len(first) <= 160 else first[:157] + "..."


def _note_once(message: str) -> None:
    """Log ``message`` (INFO) the first time it comes up in this process: a program that
    builds many analyzers for one model (or its re-initialised copies) says it once."""
    if message not in _NOTED:
        _NOTED.add(message)
        logger.info(message)


__all__ = ["check_model", "logit_function"]
