"""Custom layers and models for loading a ``.keras`` file: the one loader of
``--custom-objects FILE_OR_MODULE``.

A Python file (``my_layers.py``) or an importable module name (``mypackage.layers``) is
imported; importing it runs its ``keras.saving.register_keras_serializable`` decorators,
and every Keras layer or model class it defines is also handed to Keras by name (so classes
without the decorator load too). A module may instead define ``CUSTOM_OBJECTS``, a dict
``name -> object``, which is then used as it is (Keras's ``custom_objects``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import keras

__all__ = ["load_custom_objects"]


def load_custom_objects(source: str | None) -> dict[str, Any]:
    """Import ``source`` (a ``.py`` file or a module name) and return its custom objects.

    Parameters
    ----------
    source
        A path to a Python file, or a module name importable from the current environment
        (``None``: nothing to load).

    Returns
    -------
    dict
        ``name -> object`` for ``keras.saving.load_model(..., custom_objects=...)``: the
        module's ``CUSTOM_OBJECTS`` if it defines one, else every Keras layer or model class
        defined in it, under its class name and its registered name.

    Raises
    ------
    ValueError
        The file does not exist, or importing it fails (one line: which and why).
    """
    if source is None:
        return {}
    module = _import(str(source))
    given = getattr(module, "CUSTOM_OBJECTS", None)
    if given is not None:
        if not isinstance(given, dict):
            raise ValueError(f"CUSTOM_OBJECTS in {source} must be a dict name -> object, got "
                             f"{type(given).__name__}")
        return dict(given)
    found: dict[str, Any] = {}
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, keras.layers.Layer)
                and value.__module__ == module.__name__):
            found[value.__name__] = value
            found[keras.saving.get_registered_name(value)] = value
    return found


def _import(source: str) -> ModuleType:
    looks_like_file = source.endswith(".py") or "/" in source or "\\" in source
    path = Path(source).expanduser().resolve()
    if looks_like_file and not path.is_file():
        raise ValueError(f"custom objects file {source} not found (give a .py file or an "
                         "importable module name)")
    try:
        if not looks_like_file:
            return importlib.import_module(source)
        name = f"kvlrp_custom_objects_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module  # (classes defined in it refer to their module)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module
    except Exception as err:  # any error of the user's code: say which file, one line
        detail = " ".join(str(err).split())[:160] or type(err).__name__
        raise ValueError(f"could not import custom objects from {source}: "
                         f"{type(err).__name__}: {detail}") from err
