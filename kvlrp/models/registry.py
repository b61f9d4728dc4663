"""Build a model by architecture name (the name saved in ``kvlrp.json``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from kvlrp.models.builders.c3d import c3d, c3d_small
from kvlrp.models.builders.cnn_gru import cnn_gru_small
from kvlrp.models.builders.i3d import i3d, i3d_small
from kvlrp.models.builders.resnet3d import r2plus1d, r2plus1d_small, r3d, r3d_small
from kvlrp.models.builders.timesformer import timesformer, timesformer_small
from kvlrp.models.builders.vivit import vivit, vivit_small
from kvlrp.models.builders.x3d import x3d, x3d_small

#: Architecture name -> builder ``f(num_classes, **kwargs) -> keras.Model``.
ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "c3d": c3d, "c3d_small": c3d_small,
    "r3d": r3d, "r3d_small": r3d_small,
    "r2plus1d": r2plus1d, "r2plus1d_small": r2plus1d_small,
    "i3d": i3d, "i3d_small": i3d_small,
    "x3d": x3d, "x3d_small": x3d_small,
    "vivit": vivit, "vivit_small": vivit_small,
    "timesformer": timesformer, "timesformer_small": timesformer_small,
    "cnn_gru_small": cnn_gru_small,
}


def build_model(name: str, num_classes: int, **kwargs: Any) -> keras.Model:
    """Build architecture ``name`` (one of :data:`ARCHITECTURES`) for ``num_classes`` classes.

    Parameters
    ----------
    name
        A key of :data:`ARCHITECTURES` (``c3d``, ``r3d``, ``r2plus1d``, ``i3d``, ``x3d``,
        ``vivit``, ``timesformer``, each also as ``NAME_small``; ``cnn_gru_small``).
    num_classes
        Number of output classes.
    **kwargs
        Passed to the builder: ``input_shape`` for a full-size one, ``frames`` and ``size``
        (and e.g. ``widths``) for a ``_small`` one.

    Returns
    -------
    keras.Model
        The uncompiled model.
    """
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; available: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name](num_classes, **kwargs)
