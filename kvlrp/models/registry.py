"""Build a model by architecture name (the name saved in ``kvlrp.json``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from kvlrp.models.c3d import c3d, c3d_small

#: Architecture name -> builder ``f(num_classes, **kwargs) -> keras.Model``.
ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {"c3d": c3d, "c3d_small": c3d_small}


def build_model(name: str, num_classes: int, **kwargs: Any) -> keras.Model:
    """Build architecture ``name`` (one of :data:`ARCHITECTURES`) for ``num_classes`` classes.

    Parameters
    ----------
    name
        ``"c3d"`` or ``"c3d_small"``.
    num_classes
        Number of output classes.
    **kwargs
        Passed to the builder (e.g. ``frames``, ``size``, ``widths`` for ``c3d_small``).

    Returns
    -------
    keras.Model
        The uncompiled model.
    """
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; available: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name](num_classes, **kwargs)
