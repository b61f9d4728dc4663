"""An analyzer's settings: what :func:`analyzers.create_analyzer` was given, and their file
form (iNNvestigate's ``save`` / ``load`` and the ``_npz`` forms).

The settings are the analyzer's registry name, its options and ``neuron_selection_mode``
(:class:`Settings`); an analyzer gets them when it is built, and loading calls
:func:`analyzers.create_analyzer` again, on the given model or on the saved one. The
in-memory state (``Analyzer.save()``) holds the model object itself; :func:`write_npz`
writes a JSON text of the settings, array options as arrays, and the model's JSON and
weights, with no pickle (so :func:`read_npz` never runs stored code). Options that are
objects (rules, composites, canonizers) can be saved in memory but not to a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

#: iNNvestigate's ``neuron_selection_mode`` values.
NEURON_SELECTION_MODES = ("max_activation", "index", "all")

_FORMAT = "analyzers-settings-1"


@dataclass(frozen=True)
class Settings:
    """What :func:`analyzers.create_analyzer` was given for one analyzer.

    Parameters
    ----------
    name
        The registry name.
    options
        The keyword options.
    neuron_selection_mode
        One of :data:`NEURON_SELECTION_MODES`.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    neuron_selection_mode: str = "max_activation"


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


def write_npz(fname: Any, name: str, state: dict[str, Any]) -> None:
    """Write ``Analyzer.save()``'s ``(name, state)`` to the npz file ``fname``: the settings,
    and the model's JSON and weights where Keras can serialize the model."""
    arrays: dict[str, np.ndarray] = {}
    kwargs = {k: _encode(k, v, arrays) for k, v in state["kwargs"].items()}
    header = {"format": _FORMAT, "name": name, "kwargs": kwargs,
              "neuron_selection_mode": state["neuron_selection_mode"]}
    model = state["model"]
    try:
        arrays["model_json"] = np.array(model.to_json())
        for i, w in enumerate(model.get_weights()):
            arrays[f"model_weight/{i}"] = np.asarray(w)
    except (TypeError, ValueError, NotImplementedError):  # e.g. a subclassed layer
        arrays.pop("model_json", None)
    arrays["settings"] = np.array(json.dumps(header))
    np.savez(fname, **arrays)


def read_npz(fname: Any, model: Any = None) -> tuple[str, dict[str, Any]]:
    """``(name, state)`` as ``Analyzer.save()`` gives it, from a :func:`write_npz` file; the
    state's model is ``model`` if given, else the one rebuilt from the stored JSON and
    weights."""
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
            model = keras.models.model_from_json(str(data["model_json"]))
            n = sum(k.startswith("model_weight/") for k in data.files)
            model.set_weights([data[f"model_weight/{i}"] for i in range(n)])
    return header["name"], {"kwargs": kwargs,
                            "neuron_selection_mode": header["neuron_selection_mode"],
                            "model": model}


__all__ = ["NEURON_SELECTION_MODES", "Settings", "read_npz", "write_npz"]
