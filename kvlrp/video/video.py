"""The decoded-video value object."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Video:
    """A decoded video.

    Attributes
    ----------
    frames
        uint8 array ``[T, H, W, 3]`` (RGB; grayscale sources are expanded to three channels).
    fps
        Frame rate in frames per second (for a frame folder: the rate the caller gave, else 25).
    path
        Where it was read from.
    declared_frames
        Frame count the container declares (exact count or duration x rate), ``None`` if unknown.
    """

    frames: np.ndarray
    fps: float
    path: str
    declared_frames: int | None = None

    @property
    def n_frames(self) -> int:
        """Number of decoded frames ``T``."""
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """Frame size ``(height, width)``."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])
