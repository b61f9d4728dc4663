"""Numeric precision of models: building under a Keras mixed-precision policy without leaking
it, and float32 copies for explanation.

- :data:`PRECISIONS`, :data:`POLICIES`: ``float32``, ``bfloat16``, ``float16`` and the Keras
  dtype policies they train with (``mixed_bfloat16`` / ``mixed_float16``: float32 weights,
  half-precision computation; a builder's classifier stays float32).
- :func:`precision_scope`: the Keras global policy for the layers built inside a block,
  restored afterwards, so other models of the process keep theirs.
- :func:`model_precision`: the precision a model computes in.
- :func:`as_float32`: the same model computing in float32 (a copy with the same weights if
  any layer computes in half precision): relevance is always computed in float32.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras

logger = logging.getLogger(__name__)

#: Precision names, as ``kvlrp train --precision`` takes them.
PRECISIONS = ("float32", "bfloat16", "float16")
#: Precision -> the Keras dtype policy a model is built under.
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
#: Half-precision compute dtypes (the precision they mean).
_HALF = {"bfloat16": "bfloat16", "float16": "float16"}


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a one-line ValueError."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {PRECISIONS}")
    return precision


@contextmanager
def precision_scope(precision: str) -> Iterator[None]:
    """Build the layers created in the block under the policy of ``precision``, then restore
    the previous global policy (also after an error)."""
    policy = POLICIES[check_precision(precision)]
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def model_precision(model: keras.Model) -> str:
    """``"bfloat16"`` or ``"float16"`` if any layer (nested ones included) computes in it,
    else ``"float32"``."""
    for layer in model._flatten_layers(include_self=True, recursive=True):
        half = _HALF.get(str(layer.dtype_policy.compute_dtype))
        if half:
            return half
    return "float32"


def as_float32(model: keras.Model) -> keras.Model:
    """``model`` if every layer computes in float32, else a float32 copy with its weights.

    The copy is rebuilt from the model's config with every half-precision dtype policy
    (``mixed_bfloat16``, ``mixed_float16``, ``bfloat16``, ``float16``) replaced by float32,
    and gets the model's weights (a mixed-precision model keeps float32 weights, so they are
    the same numbers). It is not compiled.

    Raises
    ------
    ValueError
        The model cannot be rebuilt from its config (a subclassed model without one).
    """
    precision = model_precision(model)
    if precision == "float32":
        return model
    config = keras.saving.serialize_keras_object(model)
    try:
        with precision_scope("float32"):
            copy = keras.saving.deserialize_keras_object(_float32_policies(config))
    except Exception as err:  # Keras raises TypeError, ValueError, NotImplementedError ...
        raise ValueError(
            f"cannot rebuild model {model.name!r} (computing in {precision}) in float32 from "
            f"its config ({type(err).__name__}: {err}); explain a float32 copy of it"
        ) from err
    copy.set_weights(model.get_weights())
    logger.info("model %r computes in %s: using a float32 copy with the same weights",
                model.name, precision)
    return copy


def _float32_policies(config: Any) -> Any:
    """``config`` with every half-precision ``DTypePolicy`` replaced by float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            name = config.get("config", {}).get("name")
            if name in ("mixed_bfloat16", "mixed_float16", "bfloat16", "float16"):
                return {**config, "config": {**config["config"], "name": "float32"}}
            return config
        return {key: _float32_policies(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_float32_policies(value) for value in config]
    return config
