"""The inputs of ``kvlrp prepare``, checked once for both runners (local and Beam).

:class:`ShardOptions` (how frames are stored) refuses a bad value when it is made, and
:func:`checked_manifest` reads a manifest and refuses one that reads outside its folder or
lists one video in two splits; :mod:`kvlrp.data.shards.folder` and
:mod:`kvlrp.data.shards.beam_prepare`
take their inputs through both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from kvlrp.data.manifests.leakage import check_leakage
from kvlrp.data.manifests.manifest import Manifest, read_manifest
from kvlrp.data.manifests.path_policy import check_inside_root
from kvlrp.data.shards.decode_worker import ENCODINGS

#: Bumped when the example layout changes.
SHARD_FORMAT = 1

#: Upper bounds of the size options (a 2160-pixel short side is 4K video).
MAX_SHORT_SIDE = 2160
MAX_VIDEOS_PER_SHARD = 100_000


@dataclass(frozen=True)
class ShardOptions:
    """How frames are stored (a re-run must use the same options); checked when made.

    Raises
    ------
    ValueError
        A value out of range, naming the option and what it may be.
    """

    encoding: str = "jpeg"
    jpeg_quality: int = 95
    short_side: int | None = None
    allow_truncated: bool = False
    videos_per_shard: int = 32
    format: int = SHARD_FORMAT
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown frame encoding {self.encoding!r}; choose one of "
                             f"{ENCODINGS}")
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"jpeg_quality must be in 1..95, got {self.jpeg_quality}")
        if self.short_side is not None and not 1 <= self.short_side <= MAX_SHORT_SIDE:
            raise ValueError(f"short_side must be in 1..{MAX_SHORT_SIDE} or None, "
                             f"got {self.short_side}")
        if not 1 <= self.videos_per_shard <= MAX_VIDEOS_PER_SHARD:
            raise ValueError(f"videos_per_shard must be in 1..{MAX_VIDEOS_PER_SHARD}, "
                             f"got {self.videos_per_shard}")
        if self.fps is not None:
            from kvlrp.video.resample import as_fraction

            try:
                as_fraction(self.fps)  # refuses 0, negative or NaN rates
            except ValueError as err:
                raise ValueError(f"fps: {err} (or None: keep each file's frames)") from err
            object.__setattr__(self, "fps", float(self.fps))


def checked_manifest(manifest: str | os.PathLike | Manifest,
                     allow_outside_root: bool = False) -> Manifest:
    """``manifest`` read (a CSV path) and checked before anything is decoded or written.

    Raises
    ------
    ValueError
        A file outside the manifest's folder (unless ``allow_outside_root``), or one video in
        two splits (:func:`~kvlrp.data.manifests.leakage.check_leakage`).
    """
    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest)
    if not allow_outside_root:
        check_inside_root(manifest)
    check_leakage(manifest.table)
    return manifest
