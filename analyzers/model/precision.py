"""Explanations in float32 whatever dtype policy a model was built under.

A model built under ``mixed_float16`` or ``mixed_bfloat16`` keeps float32 weights but computes
in half precision. Its analyzers compute in float32: while an analyzer runs (and traces), every
layer of the model computes in float32 (:func:`float32_compute`), so relevance is conserved as
for a float32 model and the rules' quotients are not rounded to 8 or 11 bits. A model whose
weights themselves are not float32 (a ``float16`` / ``bfloat16`` policy) is refused in one
line saying how to make a float32 copy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import keras

from analyzers.compat import sublayers

FLOAT32 = "float32"
#: The half-precision dtypes a policy may compute (or keep weights) in.
HALF = ("float16", "bfloat16")


def reduced_precision_layers(model: Any) -> list[Any]:
    """The layers of ``model`` that compute in half precision (none for a float32 model).

    Raises
    ------
    ValueError
        A layer keeps its weights in half precision.
    """
    for layer in sublayers(model):
        for variable in layer.weights:
            if variable.dtype in HALF:
                raise ValueError(
                    f"model '{model.name}' keeps weights in {variable.dtype} (layer "
                    f"'{layer.name}', policy '{layer.dtype_policy.name}'); explain a float32 "
                    "copy: the same model built under the 'float32' policy, then "
                    "copy.set_weights(model.get_weights())")
    return computing_in_reduced_precision(model)


def computing_in_reduced_precision(model: Any) -> list[Any]:
    """The layers of ``model`` whose compute dtype is float16 or bfloat16."""
    return [layer for layer in sublayers(model) if layer.dtype_policy.compute_dtype in HALF]


@contextmanager
def float32_compute(layers: Sequence[Any]) -> Iterator[None]:
    """Within the block, ``layers`` compute in float32 (their policies are restored after)."""
    saved = [layer.dtype_policy for layer in layers]
    try:
        for layer in layers:
            layer.dtype_policy = keras.DTypePolicy(FLOAT32)
        yield
    finally:
        for layer, policy in zip(layers, saved):
            layer.dtype_policy = policy


__all__ = ["computing_in_reduced_precision", "float32_compute", "reduced_precision_layers"]
