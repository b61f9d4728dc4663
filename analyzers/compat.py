"""The private Keras / TensorFlow internals ``analyzers`` relies on, in one place.

Keras 3 exports no public way to walk a functional model's graph in execution order (the
functional model keeps it in ``_nodes_by_depth``, and each node keeps the arguments of its call,
the ``mask`` a layer was handed among them, in ``arguments``), to ask what input shape a
subclassed model was built with (every layer keeps it in ``_build_shapes_dict``) or to list
every layer inside a model (``_flatten_layers``). TensorFlow exports no public way to ask
whether its oneDNN CPU kernels are on; ``_pywrap_util_port.IsMklEnabled`` answers it. Importing
TensorFlow 2.21 writes start-up notes straight to file descriptor 2, some of them before its
log level (``TF_CPP_MIN_LOG_LEVEL``) is read; :func:`import_tensorflow` filters them. Every use
goes through this module, and ``tests/test_compat.py`` checks the assumptions on the installed
versions.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

#: Start-up notes of TensorFlow / XLA / CUDA stubs dropped on import (everything else is kept).
TF_STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers"
    r"|failed call to cuInit"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions:"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
    r"|cuda_(platform|executor|blas|dnn|fft)\.cc"
    r"|cudart_stub\.cc"
)


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


def mask_arguments(node: Any) -> list[Any]:
    """The Keras tensors a graph node was called with as its ``mask`` argument.

    Keras 3 records the mask a layer is handed in the functional graph: as the call's ``mask``
    keyword, computed by operation nodes of their own (a Masking layer's mask by ``NotEqual``
    and ``Any`` nodes).
    """
    import keras  # here, not at the top: import_tensorflow must run before TensorFlow loads

    kwargs = getattr(getattr(node, "arguments", None), "kwargs", None) or {}
    return [t for t in keras.tree.flatten(kwargs.get("mask")) if isinstance(t, keras.KerasTensor)]


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


@contextlib.contextmanager
def filtered_stderr(pattern: re.Pattern[str] = TF_STARTUP_NOISE) -> Iterator[None]:
    """Send file descriptor 2 to a temporary file inside the block; afterwards write back the
    lines that do not match ``pattern`` (so real errors still show)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a windowless process): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines()
                    if line.strip() and not pattern.search(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def import_tensorflow() -> Any:
    """Import TensorFlow (once) and look for its devices without its start-up notes.

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` (INFO and WARNING off) unless the variable is set already,
    then imports TensorFlow and lists its GPUs (where CUDA initialisation notes come from)
    inside :func:`filtered_stderr`. A TensorFlow imported earlier is returned as it is.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    return tf
