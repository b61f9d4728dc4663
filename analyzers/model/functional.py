"""A subclassed Keras model as a functional one, so that it can be explained layer by layer.

:func:`as_functional` runs the model's ``call`` once on a symbolic input of the shape the
model was built with: every layer the call uses is recorded as a node of a new functional
model, which shares the layers (and so the weights) of the original. This is sound where the
call is a fixed composition of Keras layers (what the relevance engine explains anyway); a
call that branches on values, uses TensorFlow ops on the symbolic tensor or keeps state is
refused with a one-line message saying how to make the model functional. The traced model
is checked against the original on one random input.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras
import numpy as np

from analyzers.compat import build_input_shape, is_functional
from analyzers.model.precision import computing_in_reduced_precision, float32_compute

#: What to do with a subclassed model that cannot be traced.
HOW = "rebuild it as keras.Model(inputs, outputs) from its layers (the functional API)"


def is_traced(model: Any) -> bool:
    """Whether ``model`` is a Sequential or functional model (a graph of layer calls)."""
    return isinstance(model, keras.Sequential) or is_functional(model)


def as_functional(model: Any) -> Any:
    """``model`` itself if it is Sequential or functional, else its functional twin.

    Parameters
    ----------
    model
        A Keras model; a subclassed one must be built (called once, or loaded from a file).

    Returns
    -------
    keras.Model
        A model computing the same function with the same layers and weights.

    Raises
    ------
    ValueError
        A subclassed model that is not built, takes several inputs, or whose ``call``
        cannot be traced into layers (one line, saying how to make it functional).
    """
    if not isinstance(model, keras.Model) or is_traced(model):
        return model
    name = f"model '{model.name}' ({type(model).__name__}) is subclassed"
    shape = build_input_shape(model)
    if shape is None:
        raise ValueError(f"{name} without a known input shape (not called yet, several "
                         f"inputs, or a call() Keras cannot trace); {HOW}")
    inputs = keras.Input(shape[1:])
    try:
        takes_training = "training" in inspect.signature(model.call).parameters
        outputs = model.call(inputs, training=False) if takes_training else model.call(inputs)
        twin = keras.Model(inputs, outputs, name=model.name)
    except Exception as err:  # any failure of the trace means: not a composition of layers
        reason = str(err).strip().splitlines()[0][:60] if str(err).strip() else \
            type(err).__name__
        raise ValueError(f"{name} and its call() cannot be traced into layers ({reason}); "
                         f"{HOW}") from err
    _check_same(model, twin, shape, name)
    return twin


def _check_same(model: Any, twin: Any, shape: tuple[Any, ...], name: str) -> None:
    """Refuse a twin that does not compute what the model computes (on one random input)."""
    if any(d is None for d in shape[1:]):
        return  # an open dimension: no input to try
    x = np.random.default_rng(0).uniform(-1, 1, (1,) + tuple(shape[1:])).astype("float32")
    with float32_compute(computing_in_reduced_precision(model)):
        want = np.asarray(model(x, training=False))
        got = np.asarray(twin(x, training=False))
    if want.shape != got.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-5):
        raise ValueError(f"{name} and its call() traced on a symbolic input computes "
                         f"something else than the model (state or value-dependent code?); "
                         f"{HOW}")


__all__ = ["as_functional", "is_traced"]
