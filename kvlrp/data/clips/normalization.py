"""Input normalisations video models are trained with, and the z^B bounds each one implies.

Every normalisation maps a uint8 pixel ``p`` (0..255) of channel ``c`` (RGB order) to
``(p - mean[c]) / std[c]``, with ``mean`` and ``std`` in pixel units. The smallest and largest
values a channel can take, ``(0 - mean) / std`` and ``(255 - mean) / std``, are the bounds
``low``/``high`` that deep Taylor's z^B rule (``deep_taylor.bounded``) needs at the input layer.

=========== ================================================ ==================================
name        mapping                                          used by
=========== ================================================ ==================================
symmetric   ``p / 127.5 - 1`` ([-1, 1])                      kvlrp's own models
unit        ``p / 255`` ([0, 1])                             many Keras models
imagenet    ``(p / 255 - (0.485, 0.456, 0.406)) /            torchvision / timm backbones
            (0.229, 0.224, 0.225)``
kinetics    ``(p / 255 - 0.45) / 0.225``                     PyTorchVideo (X3D, SlowFast, ...)
c3d         ``p - (102, 98, 90)`` (RGB)                      C3D Sports-1M ports
raw         ``p`` (0..255)                                   models with their own rescaling
=========== ================================================ ==================================

``c3d``: the original C3D subtracts a per-pixel mean volume of Sports-1M; Keras/PyTorch ports
use its per-channel average, RGB ``(102, 98, 90)`` (``(90, 98, 102)`` in BGR order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Normalization:
    """A per-channel affine pixel normalisation ``(p - mean) / std`` (pixel units, RGB).

    Attributes
    ----------
    name
        Its name on the command line (``--normalization NAME``).
    mean, std
        Three values each, in pixel units (0..255).
    description
        One line for help texts.
    """

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    description: str = ""

    @property
    def scale(self) -> np.ndarray:
        """Multiplier per channel, ``1 / std`` (float64)."""
        return 1.0 / np.asarray(self.std, dtype=np.float64)

    @property
    def offset(self) -> np.ndarray:
        """Offset per channel, ``-mean / std`` (float64)."""
        return -np.asarray(self.mean, dtype=np.float64) / np.asarray(self.std, dtype=np.float64)

    @property
    def low(self) -> np.ndarray:
        """Smallest value per channel (pixel 0): the z^B lower bound, shape ``(3,)``."""
        return (0.0 - np.asarray(self.mean, np.float64)) / np.asarray(self.std, np.float64)

    @property
    def high(self) -> np.ndarray:
        """Largest value per channel (pixel 255): the z^B upper bound, shape ``(3,)``."""
        return (255.0 - np.asarray(self.mean, np.float64)) / np.asarray(self.std, np.float64)

    @property
    def bounds(self) -> tuple[float, float] | tuple[tuple[float, ...], tuple[float, ...]]:
        """``(low, high)``: two floats when every channel has the same range, else two
        3-tuples (one value per channel)."""
        low, high = self.low, self.high
        if np.all(low == low[0]) and np.all(high == high[0]):
            return float(low[0]), float(high[0])
        return tuple(float(v) for v in low), tuple(float(v) for v in high)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """Normalise pixel values 0..255 ``[..., 3]`` (numpy, float32 result)."""
        x = np.asarray(pixels, dtype=np.float32)
        return (x * self.scale.astype(np.float32) + self.offset.astype(np.float32))

    def invert(self, x: np.ndarray) -> np.ndarray:
        """Pixel values (float, 0..255 for in-range input) of normalised ``x`` ``[..., 3]``."""
        return (np.asarray(x, dtype=np.float64) - self.offset) / self.scale


def _per_unit(name: str, mean: float | tuple, std: float | tuple, description: str
              ) -> Normalization:
    """A normalisation given in unit scale (pixel / 255), as torchvision writes them."""
    mean3 = np.broadcast_to(np.asarray(mean, dtype=np.float64), (3,)) * 255.0
    std3 = np.broadcast_to(np.asarray(std, dtype=np.float64), (3,)) * 255.0
    return Normalization(name, tuple(float(v) for v in mean3), tuple(float(v) for v in std3),
                         description)


#: Every normalisation by name.
NORMALIZATIONS: dict[str, Normalization] = {n.name: n for n in (
    Normalization("symmetric", (127.5,) * 3, (127.5,) * 3, "p / 127.5 - 1, range [-1, 1]"),
    Normalization("unit", (0.0,) * 3, (255.0,) * 3, "p / 255, range [0, 1]"),
    _per_unit("imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
              "ImageNet mean/std (torchvision, timm)"),
    _per_unit("kinetics", 0.45, 0.225, "(p / 255 - 0.45) / 0.225 (PyTorchVideo)"),
    Normalization("c3d", (102.0, 98.0, 90.0), (1.0,) * 3,
                  "p minus the Sports-1M mean, RGB (102, 98, 90) (C3D ports)"),
    Normalization("raw", (0.0,) * 3, (1.0,) * 3, "p as it is, range [0, 255]"),
)}

#: ``(low, high)`` of each normalisation (floats, or one value per channel).
NORMALIZATION_BOUNDS = {name: n.bounds for name, n in NORMALIZATIONS.items()}


def get_normalization(name: str) -> Normalization:
    """The :class:`Normalization` called ``name``; a clear error listing the known ones."""
    try:
        return NORMALIZATIONS[name]
    except (KeyError, TypeError):
        choices = ", ".join(f"{n} ({v.description})" for n, v in NORMALIZATIONS.items())
        raise ValueError(f"unknown normalization {name!r}; choose one of: {choices}") from None
