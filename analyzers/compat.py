"""The private Keras / TensorFlow internals ``analyzers`` relies on, in one place.

Keras 3 exports no public way to walk a functional model's graph in execution order; the
functional model keeps it in ``_nodes_by_depth``, and each node keeps the arguments of its call
(the ``mask`` a layer was handed among them) in ``arguments``. TensorFlow exports no public way
to ask whether its oneDNN CPU kernels are on; ``_pywrap_util_port.IsMklEnabled`` answers it.
Every use goes through this module, and ``tests/test_compat.py`` checks the assumptions on the
installed versions.
"""

from __future__ import annotations

from typing import Any

import keras


def is_functional(model: Any) -> bool:
    """Whether ``model`` is a functional Keras model (a traced graph of layer calls)."""
    return hasattr(model, "_nodes_by_depth") and hasattr(model, "inputs")


def nodes_by_depth(model: Any) -> dict[int, list[Any]]:
    """Depth -> the model's graph nodes (depth 0 produces the outputs).

    Each node has ``operation`` (the layer), ``is_input``, ``input_tensors`` and ``outputs``.
    """
    return model._nodes_by_depth


def mask_arguments(node: Any) -> list[Any]:
    """The Keras tensors a graph node was called with as its ``mask`` argument.

    Keras 3 records the mask a layer is handed in the functional graph: as the call's ``mask``
    keyword, computed by operation nodes of their own (a Masking layer's mask by ``NotEqual``
    and ``Any`` nodes).
    """
    kwargs = getattr(getattr(node, "arguments", None), "kwargs", None) or {}
    return [t for t in keras.tree.flatten(kwargs.get("mask")) if isinstance(t, keras.KerasTensor)]


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
