"""The private TensorFlow internals ``kvlrp`` relies on, in one place.

``tf.config.experimental.enable_op_determinism`` is process-wide and TensorFlow exports no
switch back or query; ``tensorflow.python.framework.config`` has both (TF >= 2.12).
``tests/test_compat.py`` checks the assumptions on the installed TensorFlow.
"""

from __future__ import annotations


def op_determinism_enabled() -> bool:
    """Whether TensorFlow op determinism is on (``True`` where TF cannot say)."""
    from tensorflow.python.framework import config as tf_config

    return bool(getattr(tf_config, "is_op_determinism_enabled", lambda: True)())


def disable_op_determinism() -> bool:
    """Switch op determinism off; ``False`` where this TensorFlow has no way to."""
    from tensorflow.python.framework import config as tf_config

    disable = getattr(tf_config, "disable_op_determinism", None)
    if disable is None:
        return False
    disable()
    return True


def functional_nodes(model: object) -> list | None:
    """The graph nodes of a functional Keras model in execution order (each with
    ``operation``, ``is_input``, ``input_tensors`` and ``outputs``), or None for a model that
    is not functional. Keras 3 keeps them only in the private ``_nodes_by_depth`` (depth 0
    produces the outputs)."""
    by_depth = getattr(model, "_nodes_by_depth", None)
    if by_depth is None or not hasattr(model, "inputs"):
        return None
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]
