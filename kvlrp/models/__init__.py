"""Video classifiers (Keras 3, channels_last clips) and saving them with their clip settings.

- :func:`c3d`: C3D of Tran et al. (2015), 16x112x112 clips.
- :func:`c3d_small`: the same shape family, parameterised to train in minutes on a CPU.
- :func:`r3d`, :func:`r2plus1d`: R3D-18 and R(2+1)D-18 (torchvision's layouts).
- :func:`i3d`: Inception-v1 inflated (Carreira & Zisserman 2017).
- :func:`x3d`: X3D-XS (PyTorchVideo's layout; channelwise convolutions, SE gates, swish).
- :func:`vivit`: ViViT-B factorised encoder (Arnab et al. 2021; tubelet embedding, a spatial
  then a temporal transformer).
- :func:`timesformer`: TimeSformer-Base (Bertasius et al. 2021; divided space-time attention).
- ``NAME_small``: each of them narrower and shallower, to train on a CPU.
- :func:`cnn_gru_small`: a per-frame 2D CNN (``TimeDistributed``) and a GRU.
- :func:`build_model`: any of them by name (the names :data:`ARCHITECTURES` lists).
- :class:`ModelInfo`, :func:`save_model`, :func:`load_model`: a model folder holds
  ``model.keras`` and ``kvlrp.json`` (classes and clip settings), loaded in Keras safe mode.
- :func:`wrap_model`, :func:`load_any_model`: your own Keras video model with its classes and
  input normalisation (see :mod:`kvlrp.models.wrap`).
"""

from kvlrp.models.builders.c3d import c3d, c3d_small
from kvlrp.models.builders.cnn_gru import cnn_gru_small
from kvlrp.models.builders.i3d import i3d, i3d_small
from kvlrp.models.builders.resnet3d import r2plus1d, r2plus1d_small, r3d, r3d_small
from kvlrp.models.builders.timesformer import timesformer, timesformer_small
from kvlrp.models.builders.vivit import vivit, vivit_small
from kvlrp.models.builders.x3d import x3d, x3d_small
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
from kvlrp.models.wrap import (
    ModelMismatchError,
    check_against_shards,
    load_any_model,
    read_classes_file,
    wrap_model,
)

__all__ = [
    "ARCHITECTURES",
    "INFO_FILENAME",
    "MODEL_FILENAME",
    "ModelInfo",
    "ModelLoadError",
    "ModelMismatchError",
    "UnsafeModelError",
    "build_model",
    "check_against_shards",
    "c3d",
    "c3d_small",
    "cnn_gru_small",
    "i3d",
    "i3d_small",
    "load_any_model",
    "load_model",
    "r2plus1d",
    "r2plus1d_small",
    "r3d",
    "r3d_small",
    "read_classes_file",
    "save_model",
    "timesformer",
    "timesformer_small",
    "vivit",
    "vivit_small",
    "wrap_model",
    "x3d",
    "x3d_small",
]
