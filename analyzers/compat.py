"""The private Keras / TensorFlow internals ``analyzers`` relies on, in one place.

Keras 3 exports no public way to walk a functional model's graph in execution order; the
functional model keeps it in ``_nodes_by_depth``, and each node the arguments its layer was
called with in ``arguments``. TensorFlow exports no public way to ask
whether its oneDNN CPU kernels are on; ``_pywrap_util_port.IsMklEnabled`` answers it. Every use
goes through this module, and ``tests/test_compat.py`` checks the assumptions on the installed
versions.
"""

from __future__ import annotations

from typing import Any


def is_functional(model: Any) -> bool:
    """Whether ``model`` is a functional Keras model (a traced graph of layer calls)."""
    return hasattr(model, "_nodes_by_depth") and hasattr(model, "inputs")


def nodes_by_depth(model: Any) -> dict[int, list[Any]]:
    """Depth -> the model's graph nodes (depth 0 produces the outputs).

    Each node has ``operation`` (the layer), ``is_input``, ``input_tensors`` and ``outputs``.
    """
    return model._nodes_by_depth


def call_arguments(node: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` a functional model's node called its layer with, KerasTensors in
    place of the tensors (in the order of ``node.input_tensors`` when flattened)."""
    arguments = node.arguments
    return tuple(arguments.args), dict(arguments.kwargs)


def onednn_enabled() -> bool | None:
    """Whether the loaded TensorFlow runs its oneDNN CPU kernels (imports TensorFlow).

    None where this TensorFlow build has no such query (then nothing is known).
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    query = getattr(_pywrap_util_port, "IsMklEnabled", None)
    return None if query is None else bool(query())
