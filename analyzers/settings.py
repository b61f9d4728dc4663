"""An analyzer's settings: what :func:`analyzers.create_analyzer` was given, and their file
form (iNNvestigate's ``save`` / ``load`` and the ``_npz`` forms).

The settings are the analyzer's registry name, its options, ``neuron_selection_mode`` and
``compat`` (:class:`Settings`); an analyzer gets them when it is built, and loading calls
:func:`analyzers.create_analyzer` again, on the given model or on the saved one. The
in-memory state (``Analyzer.save()``) holds the model object itself; :func:`write_npz`
writes a JSON text of the settings, array options as arrays, and the model's JSON and
weights, with no pickle (so :func:`read_npz` never runs stored code). Options that are
objects (rules, composites, canonizers) can be saved in memory but not to a file.

``compat="innvestigate"`` gives iNNvestigate 2.1.2's numbers instead of the conserving
defaults. Each of its choices lives where ours does, and the analyzer reads ``compat``
there:

* max pooling at tied maxima: TensorFlow 2.14's gradient (3D: every input within 1e-5 of
  the maximum gets the window's full gradient; 1D/2D: the first maximum, as ours; global:
  an even split), in every analyzer (:class:`~analyzers.canonizers.TensorFlowTies`,
  :func:`~analyzers.ops.pooling.ties.swap_max_pooling`);
* deconvnet and guided backprop start from the explained logit's value, not 1; integrated
  gradients averages the gradients at ``k = 0..steps-1``, not ``1..steps``
  (:mod:`analyzers.gradients`);
* LRP (:func:`~analyzers.composites.innvestigate_lrp_composite`): ``lrp.z_plus_fast`` is
  ``x w+`` literally (:class:`~analyzers.rules.ZPlusFastRule`); alpha-beta puts the whole
  bias in both denominators and does not conserve at degenerate neurons; ``Add`` by the z
  rule under ``lrp.z_plus`` too; ``ReLU`` layers (not ``Activation``), ``Average``,
  normalisations, gates and ``TimeDistributed`` by their gradient; BatchNormalization
  unfolded, as iNNvestigate's surrogate (:class:`~analyzers.canonizers.InnvestigateBatchNorm`;
  the sequential presets' alpha-beta X rule there);
* deep Taylor (:func:`~analyzers.composites.innvestigate_deep_taylor_composite`): z+ (z^B
  first) at kernel layers, every other layer by its gradient.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

#: iNNvestigate's ``neuron_selection_mode`` values.
NEURON_SELECTION_MODES = ("max_activation", "index", "all")

#: The ``compat`` value of iNNvestigate 2.1.2's conventions (see the module docstring).
INNVESTIGATE = "innvestigate"

#: ``compat`` values besides ``None`` (the conserving default).
COMPAT = (INNVESTIGATE,)

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
    compat
        ``None`` (the default conventions) or one of :data:`COMPAT`.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    neuron_selection_mode: str = "max_activation"
    compat: str | None = None


def is_innvestigate(settings: Settings | None) -> bool:
    """Whether ``settings`` ask for ``compat="innvestigate"`` (``None``: no)."""
    return settings is not None and settings.compat == INNVESTIGATE


def check_compat(compat: Any) -> str | None:
    """``compat`` if it is ``None`` or one of :data:`COMPAT`, else ``ValueError``."""
    if compat is None or (isinstance(compat, str) and compat in COMPAT):
        return compat
    raise ValueError(f"compat must be None (the default, conserving conventions) or one of "
                     f"{', '.join(map(repr, COMPAT))}; got {compat!r}")


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
              "neuron_selection_mode": state["neuron_selection_mode"],
              "compat": state.get("compat")}
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
                            "compat": header.get("compat"), "model": model}


__all__ = ["COMPAT", "INNVESTIGATE", "NEURON_SELECTION_MODES", "Settings", "check_compat",
           "is_innvestigate", "read_npz", "write_npz"]
