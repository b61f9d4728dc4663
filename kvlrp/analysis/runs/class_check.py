"""Refuse to evaluate a model on shards whose classes differ from the model's (names or order):
the shards' ``label_index`` is read as the model's output index, so any difference would make
accuracies and explanations silently wrong."""

from __future__ import annotations

import os
from typing import Any


def check_classes(model: Any, info: Any, shard_dir: str | os.PathLike) -> list[str]:
    """Check that the model's classes (``info.classes``, and its output width) are exactly the
    shard folder's ``classes.json``, in the same order.

    Returns
    -------
    list of str
        The shared class names.

    Raises
    ------
    ValueError
        One line naming both class lists (or the output width that does not match).
    """
    from kvlrp.data.shards.folder import read_classes

    model_classes = [str(c) for c in info.classes]
    shard_classes = [str(c) for c in read_classes(shard_dir)]
    if model_classes != shard_classes:
        same_set = sorted(model_classes) == sorted(shard_classes)
        raise ValueError(
            f"the model's classes {model_classes} differ from the classes of {shard_dir} "
            f"{shard_classes}{' (same names, other order)' if same_set else ''}; evaluate the "
            "model on shards prepared with its classes"
        )
    width = _output_width(model)
    if width is not None and width != len(model_classes):
        raise ValueError(
            f"the model has {width} outputs but its kvlrp.json lists {len(model_classes)} "
            f"classes {model_classes}; the model folder is inconsistent"
        )
    return model_classes


def _output_width(model: Any) -> int | None:
    try:
        shape = model.output_shape
    except (AttributeError, ValueError):
        return None
    if isinstance(shape, list):  # several outputs: not a plain classifier, leave it
        return None
    return int(shape[-1]) if shape and shape[-1] is not None else None
