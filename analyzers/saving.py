"""Save and load an analyzer's settings (iNNvestigate's ``save`` / ``load`` and the
``_npz`` forms).

The settings are the analyzer's registry name, its options and ``neuron_selection_mode``;
loading calls :func:`analyzers.create_analyzer` again, on the given model or on the saved
one. ``save()`` keeps everything in memory (the model object included); ``save_npz()``
writes a JSON text of the settings, array options as arrays, and the model's JSON and
weights, with no pickle (so ``load_npz`` never runs stored code). Options that are objects
(rules, composites, canonizers) can be saved in memory but not to a file.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

_FORMAT = "analyzers-settings-1"


def save(analyzer: Any) -> tuple[str, dict[str, Any]]:
    """``(name, state)`` of an analyzer made by :func:`analyzers.create_analyzer`."""
    if analyzer.settings is None:
        raise ValueError(f"{type(analyzer).__name__} was not made by "
                         "analyzers.create_analyzer, so its settings are unknown; create it "
                         "with create_analyzer(name, model, ...) to save it")
    name, kwargs = analyzer.settings
    return name, {"kwargs": dict(kwargs),
                  "neuron_selection_mode": analyzer.neuron_selection_mode,
                  "model": analyzer.model}


def load(name: str, state: dict[str, Any], model: Any = None) -> Any:
    """The analyzer ``name`` rebuilt from ``state`` (on ``model`` if given)."""
    from analyzers.registry import create_analyzer

    if not isinstance(state, dict) or "kwargs" not in state:
        raise ValueError("state must be the dict returned by Analyzer.save() (with "
                         f"'kwargs' and 'neuron_selection_mode'); got {type(state).__name__}")
    model = state.get("model") if model is None else model
    if model is None:
        raise ValueError("the state holds no model: pass model=<the Keras model>")
    return create_analyzer(name, model,
                           neuron_selection_mode=state.get("neuron_selection_mode",
                                                           "max_activation"),
                           **state["kwargs"])


def _encode(key: str, value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON-able form of an option (arrays go to ``arrays``)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        items = [_encode(f"{key}/{i}", v, arrays) for i, v in enumerate(value)]
        return {"tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, np.ndarray):
        arrays[f"option/{key}"] = value
        return {"array": f"option/{key}"}
    raise ValueError(f"option {key}={value!r} is an object ({type(value).__name__}) and "
                     "cannot be written to a file; use save() (in memory) or pass a plain "
                     "value (number, string, tuple, array)")


def _decode(value: Any, data: Any) -> Any:
    if isinstance(value, dict) and "array" in value:
        return np.asarray(data[value["array"]])
    if isinstance(value, dict) and "tuple" in value:
        return tuple(_decode(v, data) for v in value["tuple"])
    if isinstance(value, list):
        return [_decode(v, data) for v in value]
    return value


def save_npz(analyzer: Any, fname: Any) -> None:
    """Write the settings, and the model's JSON and weights where Keras can serialize the
    model, to the npz file ``fname``."""
    name, state = save(analyzer)
    arrays: dict[str, np.ndarray] = {}
    kwargs = {k: _encode(k, v, arrays) for k, v in state["kwargs"].items()}
    header = {"format": _FORMAT, "name": name, "kwargs": kwargs,
              "neuron_selection_mode": state["neuron_selection_mode"]}
    model = analyzer.model
    try:
        arrays["model_json"] = np.array(model.to_json())
        for i, w in enumerate(model.get_weights()):
            arrays[f"model_weight/{i}"] = np.asarray(w)
    except (TypeError, ValueError, NotImplementedError):  # e.g. a subclassed layer
        arrays.pop("model_json", None)
    arrays["settings"] = np.array(json.dumps(header))
    np.savez(fname, **arrays)


def load_npz(fname: Any, model: Any = None) -> Any:
    """The analyzer saved by :func:`save_npz`, on ``model`` (default: the stored model)."""
    with np.load(fname, allow_pickle=False) as data:
        if "settings" not in data.files:
            raise ValueError(f"{fname} is not a file written by Analyzer.save_npz() (no "
                             "'settings' entry)")
        header = json.loads(str(data["settings"]))
        if header.get("format") != _FORMAT:
            raise ValueError(f"{fname}: unknown settings format {header.get('format')!r} "
                             f"(expected {_FORMAT!r})")
        kwargs = {k: _decode(v, data) for k, v in header["kwargs"].items()}
        if model is None:
            if "model_json" not in data.files:
                raise ValueError(f"{fname} holds no model (it could not be serialized): pass "
                                 "model=<the Keras model>")
            import keras

            model = keras.models.model_from_json(str(data["model_json"]))
            n = sum(k.startswith("model_weight/") for k in data.files)
            model.set_weights([data[f"model_weight/{i}"] for i in range(n)])
    state = {"kwargs": kwargs, "neuron_selection_mode": header["neuron_selection_mode"]}
    return load(header["name"], state, model)


__all__ = ["load", "load_npz", "save", "save_npz"]
