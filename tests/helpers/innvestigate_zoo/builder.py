"""Build a zoo :class:`~spec.ModelSpec` with whichever Keras namespace is passed in.

Keras 2 (``tf.keras`` in TF 2.14) and Keras 3 share the layer class names and constructor
arguments the zoo uses, so one builder serves both; ``build_keras2.py`` and ``build_keras3.py``
pick the namespace and check its version.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

try:  # imported as part of the ``innvestigate_zoo`` package (tests, benchmarks)
    from . import spec as zoo_spec
except ImportError:  # run as a script from this folder
    import spec as zoo_spec  # type: ignore[no-redef]


def _make_layer(keras: ModuleType, layer: zoo_spec.LayerSpec) -> Any:
    if layer.kind == "TimeDistributed":
        if layer.wrapped is None:
            raise ValueError(f"TimeDistributed layer {layer.name!r} needs a wrapped layer")
        inner = _make_layer(keras, layer.wrapped)
        return keras.layers.TimeDistributed(inner, name=layer.name)
    try:
        cls = getattr(keras.layers, layer.kind)
    except AttributeError:
        raise ValueError(f"layer {layer.name!r}: keras.layers has no {layer.kind!r}") from None
    return cls(name=layer.name, **dict(layer.config))


def build_model(
    keras: ModuleType,
    model_spec: str | zoo_spec.ModelSpec,
    weights: Mapping[str, list[np.ndarray]] | None = None,
) -> Any:
    """Build ``model_spec`` as a functional ``keras.Model`` and set its weights.

    Parameters
    ----------
    keras : module
        ``tf.keras`` (Keras 2) or ``keras`` (Keras 3).
    model_spec : str or ModelSpec
        Zoo model (name or spec).
    weights : mapping of layer name to list of arrays, optional
        Weights in Keras order (``spec.make_weights`` or ``spec.unflatten_weights`` of an npz);
        by default ``spec.make_weights(model_spec)``. Must cover every layer that has weights.

    Returns
    -------
    keras.Model
    """
    model_spec = zoo_spec.get_spec(model_spec)
    if weights is None:
        weights = zoo_spec.make_weights(model_spec)
    inputs = keras.layers.Input(shape=model_spec.input_shape, name="input")
    tensors = {"input": inputs}
    previous = "input"
    for layer_spec in model_spec.layers:
        sources = [tensors[name] for name in (layer_spec.inputs or (previous,))]
        layer = _make_layer(keras, layer_spec)
        tensors[layer_spec.name] = layer(sources if len(sources) > 1 else sources[0])
        previous = layer_spec.name
    model = keras.Model(inputs, tensors[previous], name=model_spec.name)
    set_weights(model, weights)
    return model


def set_weights(model: Any, weights: Mapping[str, list[np.ndarray]]) -> None:
    """Set every weighted layer of ``model`` from ``weights``; clear errors on any mismatch."""
    weighted = [layer.name for layer in model.layers if layer.weights]
    missing = sorted(set(weighted) - set(weights))
    extra = sorted(set(weights) - set(weighted))
    if missing or extra:
        raise ValueError(
            f"weights for model {model.name!r} do not match its layers: missing {missing}, "
            f"unknown {extra} (expected exactly {weighted})"
        )
    for name in weighted:
        layer = model.get_layer(name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        given = [tuple(np.shape(w)) for w in weights[name]]
        if expected != given:
            raise ValueError(f"layer {name!r}: weight shapes {given} given, {expected} expected")
        layer.set_weights([np.asarray(w, dtype=np.float32) for w in weights[name]])
