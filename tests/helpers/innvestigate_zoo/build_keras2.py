"""Build zoo models with tf.keras 2 (TensorFlow 2.14: the iNNvestigate 2.1.2 environment)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

try:
    from . import builder
    from . import spec as zoo_spec
except ImportError:  # run from this folder
    import builder  # type: ignore[no-redef]
    import spec as zoo_spec  # type: ignore[no-redef]


def build(
    name: str | zoo_spec.ModelSpec,
    weights: Mapping[str, list[np.ndarray]] | None = None,
) -> Any:
    """Build zoo model ``name`` as a tf.keras 2 model with ``weights`` (default: seeded)."""
    import keras as keras_package
    import tensorflow as tf

    version = keras_package.__version__
    if not version.startswith("2."):
        raise RuntimeError(
            f"build_keras2 needs tf.keras 2 (TensorFlow <= 2.15), found Keras {version}"
        )
    return builder.build_model(tf.keras, name, weights)


def load_npz_weights(path) -> dict[str, list[np.ndarray]]:
    """Weights stored in an npz under ``weights/<layer>/<i>`` keys."""
    with np.load(path) as data:
        return zoo_spec.unflatten_weights({k: data[k] for k in data.files})
