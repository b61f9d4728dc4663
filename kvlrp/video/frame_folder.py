"""Read a folder of numbered JPEG/PNG frames as a video."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from kvlrp.video.errors import VideoReadError

#: Image suffixes a frame folder may hold (case-insensitive).
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")

_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def numbered_frames(folder: Path) -> list[Path]:
    """The image files of ``folder`` sorted by the last number in their names.

    Raises
    ------
    VideoReadError
        If the folder has no image files, or an image name carries no number.
    """
    images = [p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file()]
    if not images:
        raise VideoReadError(
            folder, f"folder holds no frame images (expected numbered {', '.join(FRAME_SUFFIXES)})"
        )
    keyed = []
    for image in images:
        match = _NUMBER.search(image.stem)
        if match is None:
            raise VideoReadError(
                folder, f"frame image '{image.name}' has no frame number in its name"
            )
        keyed.append((int(match.group(1)), image.name, image))
    return [image for _, _, image in sorted(keyed)]


def read_frame_folder(folder: Path) -> np.ndarray:
    """Decode the numbered frames of ``folder`` into uint8 ``[T, H, W, 3]`` RGB.

    Raises
    ------
    VideoReadError
        No frames, an undecodable image, or frames of different sizes.
    """
    from PIL import Image, UnidentifiedImageError

    frames = []
    for image_path in numbered_frames(folder):
        try:
            with Image.open(image_path) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except (UnidentifiedImageError, OSError) as err:
            reason = f"frame '{image_path.name}' is not a readable image: {err}"
            raise VideoReadError(folder, reason) from err
    sizes = {frame.shape for frame in frames}
    if len(sizes) > 1:
        raise VideoReadError(folder, f"frames differ in size: {sorted(sizes)}")
    return np.stack(frames)
