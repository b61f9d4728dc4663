"""The private TensorFlow internals ``kvlrp`` relies on, in one place.

``tf.config.experimental.enable_op_determinism`` is process-wide and TensorFlow exports no
switch back or query; ``tensorflow.python.framework.config`` has both (TF >= 2.12). Reseeding
(``keras.utils.set_random_seed``) cannot be undone through public names either
(:func:`random_state_kept`). ``tests/test_compat.py`` checks the assumptions on the installed
TensorFlow and Keras.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


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


@contextlib.contextmanager
def random_state_kept() -> Iterator[None]:
    """Run the block, which may reseed (``keras.utils.set_random_seed``), then put back the
    random state it found: Python's and NumPy's generators, Keras' global seed and seed
    generator, and TensorFlow's global seed with its op-seed sequence (private: the eager
    context's ``_seed`` / ``_rng``, which ``tf.random.set_seed`` sets and nothing public reads).

    So a seeded side computation (a re-initialised copy of a model during training) leaves
    what comes after it (data shuffling, dropout) as it would have been without it.
    """
    import random

    import numpy as np
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    from tensorflow.python.eager import context

    ctx = context.context()
    python_state = random.getstate()
    numpy_state = np.random.get_state()  # noqa: NPY002 - the legacy global generator is the state
    keras_state = {name: global_state.get_global_attribute(name)
                   for name in (GLOBAL_RANDOM_SEED, GLOBAL_SEED_GENERATOR)}
    tf_seed = ctx._seed
    tf_rng = ctx._rng.getstate() if tf_seed is not None else None
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)  # noqa: NPY002
        for name, value in keras_state.items():
            global_state.set_global_attribute(name, value)
        if tf_seed is None:
            ctx._seed = None
        else:
            ctx._set_global_seed(tf_seed)
            ctx._rng.setstate(tf_rng)


def functional_nodes(model: object) -> list | None:
    """The graph nodes of a functional Keras model in execution order (each with
    ``operation``, ``is_input``, ``input_tensors`` and ``outputs``), or None for a model that
    is not functional. Keras 3 keeps them only in the private ``_nodes_by_depth`` (depth 0
    produces the outputs)."""
    by_depth = getattr(model, "_nodes_by_depth", None)
    if by_depth is None or not hasattr(model, "inputs"):
        return None
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]
