"""The private Keras / TensorFlow internals ``analyzers`` relies on, in one place.

Keras 3 exports no public way to walk a functional model's graph in execution order (the
functional model keeps it in ``_nodes_by_depth``), to ask what input shape a subclassed model
was built with (every layer keeps it in ``_build_shapes_dict``) or to list every layer inside
a model (``_flatten_layers``). TensorFlow exports no public way to ask whether its oneDNN CPU
kernels are on; ``_pywrap_util_port.IsMklEnabled`` answers it. Every use goes through this
module, and ``tests/test_compat.py`` checks the assumptions on the installed versions.
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


def sublayers(model: Any) -> list[Any]:
    """``model`` and every layer inside it, recursively (wrapped layers, RNN cells and the
    layers of nested models included)."""
    return list(model._flatten_layers(include_self=True, recursive=True))


def build_input_shape(model: Any) -> tuple[Any, ...] | None:
    """The input shape a built single-input layer or model was built with (batch first), or
    None (not built, or several inputs). Keras keeps it in ``_build_shapes_dict``, also
    for a subclassed model loaded from a ``.keras`` file."""
    shapes = getattr(model, "_build_shapes_dict", None)
    if not isinstance(shapes, dict) or len(shapes) != 1:
        return None
    (shape,) = shapes.values()
    if not isinstance(shape, (list, tuple)) or not all(
            d is None or isinstance(d, int) for d in shape):
        return None
    return tuple(shape)


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
