"""Save and load a model folder: ``model.keras`` + ``kvlrp.json`` (:class:`ModelInfo`).

Loading uses Keras safe mode: a file whose layers need arbitrary Python code (a ``Lambda``)
is refused with :class:`UnsafeModelError` unless ``allow_unsafe=True`` is passed. Custom
layers and models come from ``custom_objects`` (see :mod:`kvlrp.models.custom_objects`); a
subclassed model is replaced by its functional twin (:func:`analyzers.as_functional`: the
same layers and weights), which the rest of kvlrp can inspect, clone and explain.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keras

import analyzers
from kvlrp.infra import fs
from kvlrp.infra.atomic import atomic_write, write_json
from kvlrp.models.info import ModelInfo

#: File names inside a model folder.
MODEL_FILENAME = "model.keras"
INFO_FILENAME = "kvlrp.json"


class ModelLoadError(ValueError):
    """A model folder is missing, incomplete or unreadable."""


class UnsafeModelError(ModelLoadError):
    """The model file needs arbitrary code to load and ``allow_unsafe`` was not given."""


def save_model(model: keras.Model, model_dir: str | os.PathLike, info: ModelInfo) -> Path:
    """Write ``model.keras`` and ``kvlrp.json`` into ``model_dir`` (each atomically).

    Parameters
    ----------
    model
        The Keras model; its output width must equal ``len(info.classes)``.
    model_dir
        Folder to write (created if needed).
    info
        Classes and clip settings.

    Returns
    -------
    Path
        ``model_dir``.
    """
    model_dir = fs.path(model_dir)  # local, or any tf.io.gfile URL
    units = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else None
    if units is not None and units != info.num_classes:
        raise ValueError(
            f"save_model: the model has {units} outputs but ModelInfo lists "
            f"{info.num_classes} classes {info.classes}"
        )
    model_dir.mkdir(parents=True, exist_ok=True)
    # (a URL: saved locally, then uploaded and renamed; see kvlrp.infra.atomic)
    atomic_write(model_dir / MODEL_FILENAME, model.save, suffix=".keras")
    write_json(info.to_dict(), model_dir / INFO_FILENAME)
    return model_dir


def read_info(model_dir: str | os.PathLike) -> ModelInfo:
    """Read ``kvlrp.json`` of a model folder (or of the folder of a ``.keras`` file)."""
    model_dir = _model_dir(model_dir)
    path = model_dir / INFO_FILENAME
    if not path.is_file():
        raise ModelLoadError(
            f"{path} not found: a kvlrp model folder holds {MODEL_FILENAME} and {INFO_FILENAME} "
            "(written by `kvlrp train` or kvlrp.models.save_model)"
        )
    try:
        return ModelInfo.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as err:
        raise ModelLoadError(f"{path} is not a valid kvlrp.json: {err}") from err


def load_model(
    model_dir: str | os.PathLike, allow_unsafe: bool = False, compile: bool = False,
    custom_objects: dict[str, Any] | None = None,
) -> tuple[keras.Model, ModelInfo]:
    """Load a model folder written by :func:`save_model`.

    Parameters
    ----------
    model_dir
        The folder (or its ``model.keras`` file).
    allow_unsafe
        Allow layers that run arbitrary Python code on load (``Lambda``). Only for files
        you trust.
    compile
        Restore the training configuration (optimizer, loss) too.
    custom_objects
        Custom layers and models by name (:func:`kvlrp.models.custom_objects.load_custom_objects`).

    Returns
    -------
    tuple
        ``(model, info)``.
    """
    model_dir = _model_dir(model_dir)
    path = model_dir / MODEL_FILENAME
    if not path.is_file():
        raise ModelLoadError(
            f"{path} not found: a kvlrp model folder holds {MODEL_FILENAME} and {INFO_FILENAME}"
        )
    info = read_info(model_dir)
    model = load_keras_file(path, allow_unsafe=allow_unsafe, compile=compile,
                            custom_objects=custom_objects)
    units = model.outputs[0].shape[-1]
    if units != info.num_classes:
        raise ModelLoadError(
            f"{path} has {units} outputs but {INFO_FILENAME} lists {info.num_classes} classes"
        )
    return model, info


def load_keras_file(path: str | os.PathLike, allow_unsafe: bool = False,
                    compile: bool = False, custom_objects: dict[str, Any] | None = None
                    ) -> keras.Model:
    """Load one ``.keras`` file in Keras safe mode, each failure a :class:`ModelLoadError`.

    A subclassed model comes back as its functional twin (the same layers and weights), or
    is refused in one line saying how to make it functional.

    Parameters
    ----------
    path
        The ``.keras`` file.
    allow_unsafe
        Allow layers that run arbitrary Python code on load (``Lambda``).
    compile
        Restore the training configuration too.
    custom_objects
        Custom layers and models by name (CLI: ``--custom-objects FILE_OR_MODULE``).
    """
    path = fs.path(path)  # local, or any tf.io.gfile URL
    if not path.is_file():
        raise ModelLoadError(f"model file {path} not found")
    try:
        with fs.local_copy(path) as local:  # Keras reads local files (a URL is copied)
            model = keras.saving.load_model(local, compile=compile, safe_mode=not allow_unsafe,
                                            custom_objects=custom_objects)
    except ValueError as err:
        if not allow_unsafe and ("safe_mode" in str(err) or "arbitrary code" in str(err)):
            raise UnsafeModelError(
                f"{path} contains code that Keras safe mode refuses to load "
                f"({str(err).split('.')[0]}). Load it only if you trust its source: "
                "pass allow_unsafe=True (CLI: --allow-unsafe)."
            ) from err
        raise ModelLoadError(f"could not load {path}: {err}") from err
    except TypeError as err:
        first = str(err).split(". ")[0]  # Keras appends the whole config
        raise ModelLoadError(
            f"could not load {path}: {first}. Name the Python file or module that defines it "
            "with --custom-objects FILE_OR_MODULE (in Python: custom_objects="
            "kvlrp.models.custom_objects.load_custom_objects(FILE_OR_MODULE))"
        ) from err
    try:
        return analyzers.as_functional(model)
    except ValueError as err:
        raise ModelLoadError(f"{path}: {err}") from err


def _model_dir(model_dir: str | os.PathLike) -> Path:
    path = fs.path(model_dir)
    return path.parent if path.suffix == ".keras" else path
