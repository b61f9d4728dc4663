"""Bring your own model: a Keras video classifier not trained by kvlrp, made ready for
``explain`` / ``strides``.

:func:`wrap_model` pairs a Keras model with a :class:`~kvlrp.models.ModelInfo`: its classes (in
output order), the clip length and crop size read from its input shape, and the input
normalisation it expects. kvlrp puts that normalisation in front of the model (the evaluation
pipeline maps pixels 0..255 with it, see :mod:`kvlrp.data.clips.normalization`) and gives
``deep_taylor.bounded`` the z^B bounds that normalisation implies, one per channel.

:func:`load_any_model` loads either a kvlrp model folder (``model.keras`` + ``kvlrp.json``) or a
bare ``.keras`` file plus the flags that describe it; :func:`check_against_shards` compares a
model with a shard folder before any work, each conflict a one-line error naming both sides.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import analyzers
from kvlrp.data.clips.normalization import NORMALIZATIONS, get_normalization
from kvlrp.models.info import ModelInfo
from kvlrp.models.saving import INFO_FILENAME, ModelLoadError, load_keras_file, load_model

__all__ = ["MULTI_LABEL_ACTIVATIONS", "ModelMismatchError", "check_against_shards",
           "check_class_scores", "input_geometry", "load_any_model",
           "match_shard_classes", "read_classes_file", "select_outputs", "wrap_model"]


class ModelMismatchError(ValueError):
    """A model and the data or settings given for it disagree."""


def input_geometry(model: Any) -> tuple[int | None, int | None, int | None, int | None]:
    """``(frames, height, width, channels)`` of a video model's single input (``None``: open).

    Raises
    ------
    ModelMismatchError
        Several inputs or outputs, or an input that is not ``[batch, frames, H, W, C]``.
    """
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ModelMismatchError(
            f"model {model.name!r} is not built (no inputs); build it on an input of shape "
            "[batch, frames, height, width, 3] or load a functional/Sequential model")
    if len(inputs) != 1 or len(model.outputs) != 1:
        raise ModelMismatchError(
            f"model {model.name!r} has {len(inputs)} inputs and {len(model.outputs)} outputs; "
            "kvlrp explains models with one video input and one class-score output")
    shape = tuple(inputs[0].shape)
    if len(shape) != 5:
        raise ModelMismatchError(
            f"model {model.name!r} takes input of shape {shape}; a video model takes "
            "[batch, frames, height, width, channels] (channels_last)")
    return tuple(None if d is None else int(d) for d in shape[1:])  # type: ignore[return-value]


def read_classes_file(path: str | os.PathLike) -> list[str]:
    """Class names from a file: a JSON list, or one name per line (``classInd.txt``-style
    ``<index> <name>`` lines also work: the index is dropped). Blank lines are ignored."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"classes file {path} not found")
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"classes file {path} looks like JSON but is not: {err}") from None
        return [str(n) for n in names]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    split = [line.split(maxsplit=1) for line in lines]
    if split and all(len(p) == 2 and p[0].isdigit() for p in split):
        return [p[1].strip() for p in split]
    return lines


def wrap_model(
    model: Any,
    classes: list[str],
    normalization: str,
    clip_len: int | None = None,
    size: int | None = None,
    step: int = 1,
    short_policy: str = "loop",
) -> tuple[Any, ModelInfo]:
    """A user's Keras video model and the :class:`ModelInfo` kvlrp needs to run it.

    Parameters
    ----------
    model
        A built Keras model: one input ``[batch, frames, S, S, 3]``, one output
        ``[batch, len(classes)]`` (logits or softmax).
    classes
        Class names in output order.
    normalization
        The input normalisation the model was trained with (a key of
        :data:`kvlrp.data.clips.normalization.NORMALIZATIONS`: ``symmetric``, ``unit``,
        ``imagenet``,
        ``kinetics``, ``c3d``, ``raw``).
    clip_len, size
        Needed only where the model's input shape leaves them open (``None`` frames or
        height/width); where the shape fixes them, a different value is an error.
    step
        The step size the model was trained at (the reference step of ``strides``/``explain``).
    short_policy
        What clips running past a video's end do (``loop``, ``repeat_last``, ``skip``).

    Returns
    -------
    tuple
        ``(model, info)``; the model itself is unchanged (a subclassed model is replaced by
        its functional twin, :func:`analyzers.as_functional`: the same layers and weights).

    Raises
    ------
    ModelMismatchError
        Input/output shapes that disagree with ``classes``, ``clip_len`` or ``size``, or open
        dimensions without a value.
    """
    norm = get_normalization(normalization).name
    try:
        model = analyzers.as_functional(model)
    except ValueError as err:
        raise ModelMismatchError(str(err)) from err
    frames, height, width, channels = input_geometry(model)
    name = model.name
    if channels not in (None, 3):
        raise ModelMismatchError(
            f"model {name!r} takes {channels} input channels; kvlrp feeds RGB clips (3)")
    if height is not None and width is not None and height != width:
        raise ModelMismatchError(
            f"model {name!r} takes {height}x{width} frames; kvlrp crops square frames "
            "(height = width)")
    fixed = height if height is not None else width
    clip_len = _resolve("clip length", "frames", frames, clip_len, "--clip-len", name)
    size = _resolve("crop size", "height/width", fixed, size, "--size", name)
    out_shape = tuple(model.outputs[0].shape)
    check_class_scores(model)
    classes = [str(c) for c in classes]
    if len(out_shape) != 2:
        raise ModelMismatchError(
            f"model {name!r} outputs shape {out_shape}; kvlrp needs class scores "
            f"[batch, classes]")
    if out_shape[-1] != len(classes):
        shown = classes if len(classes) <= 12 else classes[:12] + ["..."]
        raise ModelMismatchError(
            f"model {name!r} has {out_shape[-1]} outputs but {len(classes)} classes were "
            f"given ({', '.join(shown)}); pass the model's own class list (--classes-file)")
    info = ModelInfo(architecture="custom", classes=classes, clip_len=clip_len, step=step,
                     size=size, normalization=norm, short_policy=short_policy,
                     extra={"model_name": name})
    return model, info


#: Output activations of independent per-class scores (multi-label), not one class per clip.
MULTI_LABEL_ACTIVATIONS = ("sigmoid", "hard_sigmoid")


def check_class_scores(model: Any) -> None:
    """Refuse a model whose last layer is a sigmoid: kvlrp explains and evaluates single-label
    classifiers, whose output is logits or a softmax over the classes.

    Raises
    ------
    ModelMismatchError
        Naming the layer and what to give the model instead.
    """
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", None)
    if activation in MULTI_LABEL_ACTIVATIONS:
        raise ModelMismatchError(
            f"model {model.name!r} ends in a {activation} (layer {last.name!r}): independent "
            "per-class scores of a multi-label model; kvlrp explains and evaluates "
            "single-label classifiers, so give the model a softmax or linear (logits) output")


def _resolve(what: str, dims: str, fixed: int | None, given: int | None, flag: str,
             name: str) -> int:
    if fixed is None and given is None:
        raise ModelMismatchError(
            f"model {name!r} leaves its input {dims} open (None); give the {what} with {flag}")
    if fixed is not None and given is not None and int(given) != fixed:
        raise ModelMismatchError(
            f"{flag} {given} disagrees with model {name!r}, whose input {dims} is {fixed}")
    return int(fixed if fixed is not None else given)


def load_any_model(
    path: str | os.PathLike,
    *,
    classes: list[str] | None = None,
    classes_file: str | os.PathLike | None = None,
    normalization: str | None = None,
    clip_len: int | None = None,
    size: int | None = None,
    step: int | None = None,
    shard_dir: str | os.PathLike | None = None,
    allow_unsafe: bool = False,
    custom_objects: dict[str, Any] | None = None,
) -> tuple[Any, ModelInfo]:
    """Load a kvlrp model folder, or a bare ``.keras`` file described by the other arguments.

    A folder (or a ``model.keras`` with ``kvlrp.json`` beside it) is a kvlrp model folder: its
    ``kvlrp.json`` holds classes and clip settings, and the other arguments may only repeat
    them. Any other ``.keras`` file is the user's own model: ``normalization`` is required;
    classes come from ``classes`` or ``classes_file``, else the shard folder's class list;
    clip length and crop size from the model's input shape (``clip_len``/``size`` where open);
    ``step`` (default 1) is its training step. ``custom_objects``: custom layers and models
    by name (:func:`kvlrp.models.custom_objects.load_custom_objects`).

    Raises
    ------
    ModelLoadError, ModelMismatchError, FileNotFoundError, ValueError
        Each with a one-line message naming what is wrong and what would be right.
    """
    path = Path(path)
    if classes is not None and classes_file is not None:
        raise ValueError("give the classes either as --classes or as --classes-file, not both")
    if classes_file is not None:
        classes = read_classes_file(classes_file)
    if classes is not None:
        _check_unique(classes, "--classes" if classes_file is None
                      else f"--classes-file {classes_file}")
    if path.is_dir() or (path.name == "model.keras" and (path.parent / INFO_FILENAME).is_file()):
        model, info = load_model(path, allow_unsafe=allow_unsafe, custom_objects=custom_objects)
        _same_as_folder(path, info, classes=classes, normalization=normalization,
                        clip_len=clip_len, size=size, step=step)
        return model, info
    if not path.exists():
        raise FileNotFoundError(
            f"model {path} not found: pass a kvlrp model folder (model.keras + {INFO_FILENAME}) "
            "or your own Keras .keras file")
    if path.suffix != ".keras":
        raise ModelLoadError(
            f"{path} is not a .keras file; Keras 3 saves models with model.save('NAME.keras') "
            "(an old .h5 or SavedModel can be loaded in Keras and saved again as .keras)")
    if normalization is None:
        raise ValueError(
            f"{path} has no {INFO_FILENAME} beside it, so kvlrp does not know the input "
            f"normalisation the model expects: pass --normalization, one of "
            f"{', '.join(NORMALIZATIONS)}")
    if classes is None:
        if shard_dir is None:
            raise ValueError(f"{path}: give the model's classes (--classes or --classes-file)")
        from kvlrp.data.shards.folder import read_classes

        classes = read_classes(shard_dir)
    model = load_keras_file(path, allow_unsafe=allow_unsafe, custom_objects=custom_objects)
    return wrap_model(model, classes, normalization, clip_len=clip_len, size=size,
                      step=1 if step is None else step)


def _check_unique(classes: list[str], source: str) -> None:
    """Refuse a class list that names a class twice, naming where it came from."""
    twice = next((c for i, c in enumerate(classes) if c in classes[:i]), None)
    if twice is not None:
        raise ValueError(f"{source} names the class {twice!r} twice; class names must be unique "
                         "(one per model output, in output order)")


def _same_as_folder(path: Path, info: ModelInfo, **given: Any) -> None:
    """Refuse flags that contradict a kvlrp model folder's ``kvlrp.json``."""
    for key, value in given.items():
        if value is None:
            continue
        saved = info.classes if key == "classes" else getattr(info, key)
        if (list(map(str, value)) if key == "classes" else value) != saved:
            raise ModelMismatchError(
                f"{key} {value!r} disagrees with {path}'s {INFO_FILENAME} ({saved!r}); a kvlrp "
                f"model folder keeps its own settings (drop the flag)")


def check_against_shards(info: ModelInfo, shard_dir: str | os.PathLike,
                         split: str | None = None) -> None:
    """Refuse a model whose classes disagree with a shard folder's, before any work.

    The shards' label indices are positions in their ``classes.json`` (the sorted labels), so
    the model's output ``i`` must be that list's class ``i``: same names, same order.

    Raises
    ------
    ModelMismatchError
        Naming the classes the model lacks, those the data lacks, or the first position
        where the orders differ.
    """
    from kvlrp.data.shards.folder import read_classes

    data = [str(c) for c in read_classes(shard_dir)]
    model = list(info.classes)
    if model == data:
        return
    missing = [c for c in data if c not in model]
    extra = [c for c in model if c not in data]
    where = f"the shards in {shard_dir} ({len(data)} classes)"
    if missing:
        raise ModelMismatchError(
            f"the model's {len(model)} classes lack {_few(missing)} of {where}; pass the "
            "model's class list (--classes-file) or prepare shards of its classes only")
    if extra:
        raise ModelMismatchError(
            f"the model has classes {_few(extra)} that {where} do not; kvlrp scores output i "
            f"as the data's class i, so prepare shards that hold all {len(model)} classes")
    pos = next(i for i, (a, b) in enumerate(zip(model, data)) if a != b)
    raise ModelMismatchError(
        f"the model's classes are in another order than {where}: output {pos} is "
        f"{model[pos]!r} but the data's class {pos} is {data[pos]!r}; the shards list classes "
        f"sorted, so the model's outputs must be sorted by class name too")


def _few(names: list[str], n: int = 6) -> str:
    return ", ".join(names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


def select_outputs(model: Any, model_classes: list[str], classes: list[str]) -> Any:
    """A model scoring only ``classes`` (a subset of ``model_classes``, in any order).

    The original's logits (its last layer without its softmax) feed a fixed, bias-free
    ``Dense`` whose 0/1 kernel picks the wanted outputs in the wanted order (a linear layer
    every analyzer handles; its initializer is that kernel, so a re-initialised copy for the
    position prior selects the same outputs); a softmax over the selection follows when the
    original ended in one, i.e. probabilities renormalised over ``classes``.

    Raises
    ------
    ModelMismatchError
        A class not among ``model_classes``, or a model whose logits cannot be reached.
    """
    import keras
    import numpy as np

    missing = [c for c in classes if c not in model_classes]
    if missing:
        raise ModelMismatchError(f"classes {_few(missing)} are not among the model's outputs")
    kernel = np.zeros((len(model_classes), len(classes)), dtype=np.float32)
    for j, name in enumerate(classes):
        kernel[model_classes.index(name), j] = 1.0
    logits, softmax = _logits(model)
    select = keras.layers.Dense(len(classes), use_bias=False, trainable=False,
                                kernel_initializer=keras.initializers.Constant(kernel),
                                name="kvlrp_select_classes")
    out = select(logits)
    if softmax:
        out = keras.layers.Activation("softmax", name="kvlrp_select_softmax")(out)
    wrapped = keras.Model(model.inputs[0], out, name=f"{model.name}_selected")
    select.set_weights([kernel])
    return wrapped


def _logits(model: Any) -> tuple[Any, bool]:
    """``(logits tensor, whether the model ends in a softmax)`` of a functional model."""
    import keras

    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    is_softmax = isinstance(last, keras.layers.Softmax) or (
        isinstance(last, keras.layers.Activation)
        and getattr(activation, "__name__", "") == "softmax")
    if is_softmax:
        return last.input, True
    if getattr(activation, "__name__", "") == "softmax":  # Dense(..., activation="softmax")
        config = {**last.get_config(), "activation": "linear", "name": f"{last.name}_logits"}
        head = type(last).from_config(config)
        logits = head(last.input)
        head.set_weights(last.get_weights())
        return logits, True
    return model.outputs[0], False


def match_shard_classes(model: Any, info: ModelInfo, shard_dir: str | os.PathLike
                        ) -> tuple[Any, ModelInfo, str | None]:
    """Make a model's outputs line up with a shard folder's classes.

    Equal lists: the model as it is. The shards' classes a subset of the model's (or the same
    in another order): :func:`select_outputs` scores exactly the shards' classes, in their
    order, and a note says so. Otherwise :func:`check_against_shards`'s error.

    Returns
    -------
    (model, info, note or None)
    """
    import dataclasses

    from kvlrp.data.shards.folder import read_classes

    data = [str(c) for c in read_classes(shard_dir)]
    model_classes = list(info.classes)
    if model_classes == data or any(c not in model_classes for c in data):
        check_against_shards(info, shard_dir)  # equal: passes; a class missing: its error
        return model, info, None
    wrapped = select_outputs(model, model_classes, data)
    new_info = dataclasses.replace(info, classes=data, extra={
        **info.extra, "selected_from": model_classes})
    note = (f"scoring {len(data)} of the model's {len(model_classes)} outputs, those of the "
            f"shards' classes, in the shards' order (probabilities renormalised over them)")
    return wrapped, new_info, note
