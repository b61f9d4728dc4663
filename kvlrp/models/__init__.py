"""C3D-family video classifiers (Keras 3) and saving them with their clip settings.

- :func:`c3d`: C3D of Tran et al. (2015), 16x112x112 clips.
- :func:`c3d_small`: the same shape family, parameterised to train in minutes on a CPU.
- :func:`build_model`: either of them by name (the names :data:`ARCHITECTURES` lists).
- :class:`ModelInfo`, :func:`save_model`, :func:`load_model`: a model folder holds
  ``model.keras`` and ``kvlrp.json`` (classes and clip settings), loaded in Keras safe mode.
"""

from kvlrp.models.c3d import c3d, c3d_small
from kvlrp.models.info import ModelInfo
from kvlrp.models.registry import ARCHITECTURES, build_model
from kvlrp.models.saving import (
    INFO_FILENAME,
    MODEL_FILENAME,
    ModelLoadError,
    UnsafeModelError,
    load_model,
    save_model,
)

__all__ = [
    "ARCHITECTURES",
    "INFO_FILENAME",
    "MODEL_FILENAME",
    "ModelInfo",
    "ModelLoadError",
    "UnsafeModelError",
    "build_model",
    "c3d",
    "c3d_small",
    "load_model",
    "save_model",
]
