"""Build zoo models with Keras 3 (our tests and benchmarks)."""

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
    """Build zoo model ``name`` as a Keras 3 model with ``weights`` (default: seeded)."""
    import keras

    if not keras.__version__.startswith("3."):
        raise RuntimeError(f"build_keras3 needs Keras 3, found Keras {keras.__version__}")
    return builder.build_model(keras, name, weights)


def load_npz_weights(path) -> dict[str, list[np.ndarray]]:
    """Weights stored in an npz under ``weights/<layer>/<i>`` keys."""
    with np.load(path) as data:
        return zoo_spec.unflatten_weights({k: data[k] for k in data.files})
