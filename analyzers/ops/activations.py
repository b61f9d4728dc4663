"""Which activation functions the engine understands, and how.

* ``linear``: no activation.
* ``softmax``: only as the model's last activation (stripped: the logits are explained).
* elementwise activations (:data:`ELEMENTWISE`): relevance passes through unchanged (the
  identity rule, as AttnLRP does for elementwise nonlinearities).
* gate activations (:data:`GATES`, sigmoid / hard_sigmoid): only where the output feeds
  nothing but ``Multiply`` layers, as a gate held constant (checked on the whole graph).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

#: Elementwise activations passed by the identity rule (Keras names).
ELEMENTWISE = ("relu", "relu6", "leaky_relu", "elu", "silu", "hard_silu", "gelu", "tanh")
#: Activations allowed only as gates (inputs of Multiply).
GATES = ("sigmoid", "hard_sigmoid")
#: Every supported activation name.
SUPPORTED_ACTIVATIONS = ("linear",) + ELEMENTWISE + GATES + ("softmax",)
#: Activations whose output is >= 0 for every input (deep Taylor's non-negativity inference).
NONNEGATIVE = ("relu", "relu6", "sigmoid", "hard_sigmoid")
#: Keras aliases.
_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


def activation_name(fn: Any) -> str:
    """The canonical name of a Keras activation function (``"linear"`` for ``None``)."""
    if fn is None:
        return "linear"
    name = fn if isinstance(fn, str) else getattr(fn, "__name__", type(fn).__name__)
    return _ALIASES.get(name, name)


def resolve_activation(fn: Any) -> tuple[str, Callable | None]:
    """``(name, function)`` of a Keras activation (``function`` is ``None`` for linear and
    ``tf.nn.softmax`` for softmax). Raises ``ValueError`` naming the activation otherwise."""
    name = activation_name(fn)
    if name == "linear":
        return name, None
    if name == "softmax":
        return name, tf.nn.softmax
    if name == "relu":
        return name, tf.nn.relu
    if name in ELEMENTWISE or name in GATES:
        return name, fn if callable(fn) else keras.activations.get(name)
    raise ValueError(f"activation '{name}'")  # the supported ones: SUPPORTED_ACTIVATIONS
