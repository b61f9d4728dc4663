"""Which activation functions the engine understands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

#: Activation names relevance passes through unchanged (ReLU networks; softmax is stripped).
SUPPORTED_ACTIVATIONS = ("linear", "relu", "softmax")


def activation_name(fn: Any) -> str:
    """The name of a Keras activation function (``"linear"`` for ``None``)."""
    if fn is None:
        return "linear"
    if isinstance(fn, str):
        return fn
    return getattr(fn, "__name__", type(fn).__name__)


def resolve_activation(fn: Any) -> Callable | None:
    """Map a Keras activation to the engine's form: ``tf.nn.relu``, ``tf.nn.softmax``
    or ``None`` (linear). Raises ``ValueError`` naming the activation otherwise."""
    name = activation_name(fn)
    if name == "linear":
        return None
    if name == "relu":
        return tf.nn.relu
    if name == "softmax":
        return tf.nn.softmax
    raise ValueError(
        f"activation '{name}' is not supported (supported: {', '.join(SUPPORTED_ACTIVATIONS)}; "
        "softmax only on the last layer)"
    )
