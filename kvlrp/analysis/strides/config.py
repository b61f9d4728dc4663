"""``StridesConfig``: every option of one ``kvlrp strides`` run
(:func:`kvlrp.analysis.strides.run.run_strides`), checked once when it is built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvlrp.analysis.runs.config_checks import (
    check_devices,
    check_int,
    check_steps,
    check_worker,
)
from kvlrp.analysis.runs.partition import Worker
from kvlrp.data.clips.spec import DEFAULT_CROPS, check_crops
from kvlrp.infra.checks import check_positive, check_positive_or_all


@dataclass(frozen=True)
class StridesConfig:
    """Options of one strides run; bad values raise a ValueError on construction, before
    any work.

    Attributes
    ----------
    steps
        Step sizes to evaluate (at least one).
    split
        The split reported.
    clips_per_video
        Evaluation clips per video (int or ``'all'``).
    control, control_seed
        Add the frame-shuffled control at the training step, its frames permuted with this
        seed.
    batch_size
        Clips per model call.
    n_boot, seed
        Bootstrap resamples and seed.
    progress
        Show a progress bar (on a terminal).
    select_on
        The split the step is chosen on (None: ``val`` when the shards have one and
        ``split`` is another, else ``split`` itself, which the summary marks as optimistic).
    crops
        1 (centre crop) or 3 (three crops along the longer side per clip); a video's
        probabilities are averaged over its clips x crops.
    equal_counts
        Keep repeated clip starts, so that every video is scored on ``clips_per_video`` clips
        at every step (otherwise short videos give fewer distinct clips at large steps).
    worker
        One of several workers (:mod:`kvlrp.analysis.runs.partition`): evaluate only its part of
        the videos of each split, keep the clip rows in ``partial/`` and write
        ``worker.json`` instead of the final tables (``kvlrp merge`` makes them). None: the
        only worker.
    devices
        Split every batch over these devices (``--strategy mirrored``); None: one device.
    """

    steps: tuple[int, ...] = (1, 2, 3, 4, 6, 8)
    split: str = "test"
    clips_per_video: int | str = 4
    control: bool = True
    control_seed: int = 0
    batch_size: int = 32
    n_boot: int = 1000
    seed: int = 0
    progress: bool = True
    select_on: str | None = None
    crops: int = DEFAULT_CROPS
    equal_counts: bool = False
    worker: Worker = field(default_factory=Worker)
    devices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # Normalised values are set through object.__setattr__ (the dataclass is frozen).
        set_ = object.__setattr__
        set_(self, "steps", check_steps(self.steps))
        if not isinstance(self.split, str) or not self.split:
            raise ValueError(f"split must be the name of a split, got {self.split!r}")
        if self.select_on is not None and (not isinstance(self.select_on, str)
                                           or not self.select_on):
            raise ValueError(f"select_on must be the name of a split or None, got "
                             f"{self.select_on!r}")
        set_(self, "clips_per_video",
             check_positive_or_all("clips_per_video", self.clips_per_video))
        set_(self, "batch_size", check_positive("batch_size", self.batch_size))
        set_(self, "n_boot", check_positive("n_boot", self.n_boot))
        set_(self, "seed", check_int("seed", self.seed))
        set_(self, "control_seed", check_int("control_seed", self.control_seed))
        check_crops(self.crops)
        set_(self, "control", bool(self.control))
        set_(self, "equal_counts", bool(self.equal_counts))
        set_(self, "worker", check_worker(self.worker))
        set_(self, "devices", check_devices(self.devices))

    def as_dict(self) -> dict[str, Any]:
        """The options as JSON values (the worker as ``[num_workers, index]``), as saved in
        ``summary.json``."""
        return {"steps": list(self.steps), "split": self.split,
                "clips_per_video": self.clips_per_video, "control": self.control,
                "control_seed": self.control_seed, "batch_size": self.batch_size,
                "n_boot": self.n_boot, "seed": self.seed, "progress": self.progress,
                "select_on": self.select_on, "crops": self.crops,
                "equal_counts": self.equal_counts,
                "worker": [self.worker.num_workers, self.worker.index],
                "devices": None if self.devices is None else list(self.devices)}
