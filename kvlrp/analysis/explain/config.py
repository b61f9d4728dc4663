"""``ExplainConfig``: every option of one ``kvlrp explain`` run
(:func:`kvlrp.analysis.explain.run.run_explain`), checked once when it is built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvlrp.analysis.explain.frames import TARGETS, Analyzer, AnalyzerFactory, check_analyzer_name
from kvlrp.analysis.measures.flipping import FILLS
from kvlrp.analysis.measures.temporal import DEFAULT_SIGMA
from kvlrp.analysis.runs.config_checks import (
    check_choice,
    check_count,
    check_devices,
    check_int,
    check_sigma,
    check_steps,
    check_worker,
)
from kvlrp.analysis.runs.partition import Worker
from kvlrp.data.clips.spec import DEFAULT_CROPS, check_crops
from kvlrp.infra.checks import check_positive, check_positive_or_all

DEFAULT_ANALYZER = "deep_taylor.bounded"


@dataclass(frozen=True)
class ExplainConfig:
    """Options of one explain run; bad values raise on construction (ValueError, TypeError
    for an analyzer of the wrong kind), before any work.

    Attributes
    ----------
    analyzer
        An ``analyzers`` name, a factory ``model -> analyzer`` or an analyzer object (an object
        cannot be rebuilt for re-initialised models, so it gets no prior).
    steps
        Step sizes (None: the model's training step).
    split
        Split of the shard folder to explain.
    clips_per_video
        Evaluation clips per video (int or ``'all'``).
    prior_seeds
        Re-initialised copies of the architecture averaged into the position prior (0: none).
    target
        ``predicted`` or ``label``: which class each clip's explanation is for.
    n_heatmaps
        Heatmap clips per step.
    flip_videos
        Videos (one clip each, classes round-robin) used for frame flipping and heatmaps.
    flip_fill
        What replaces a flipped frame (:data:`kvlrp.analysis.measures.flipping.FILLS`).
    batch_size
        Clips per analyzer call.
    n_boot, seed
        Bootstrap resamples and seed (``seed`` also offsets the prior seeds).
    progress
        Show a progress bar (on a terminal).
    crops
        1 (centre crop) or 3 (three crops along the longer side; each crop is a clip of its
        own in the tables, ``clip_index`` counting clips x crops per video).
    temporal_sigma
        Selective relevance threshold (:mod:`kvlrp.analysis.measures.temporal`) for the
        ``temporal_*``
        columns and the heatmaps' temporal row; None: not computed.
    worker
        One of several workers (:mod:`kvlrp.analysis.runs.partition`): explain only its part of the
        videos and write ``partial/`` plus ``worker.json`` (no final tables); ``kvlrp merge``
        combines the workers' folders into the tables of one run. None: the only worker.
    devices
        Split every batch over these devices (``--strategy mirrored``); None: one device.
    """

    analyzer: str | Analyzer | AnalyzerFactory = DEFAULT_ANALYZER
    steps: tuple[int, ...] | None = None
    split: str = "test"
    clips_per_video: int | str = 4
    prior_seeds: int = 3
    target: str = "predicted"
    n_heatmaps: int = 3
    flip_videos: int = 24
    flip_fill: str = "mean"
    batch_size: int = 8
    n_boot: int = 1000
    seed: int = 0
    progress: bool = True
    crops: int = DEFAULT_CROPS
    temporal_sigma: float | None = DEFAULT_SIGMA
    worker: Worker = field(default_factory=Worker)
    devices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # Normalised values are set through object.__setattr__ (the dataclass is frozen).
        set_ = object.__setattr__
        if not (isinstance(self.analyzer, str) or hasattr(self.analyzer, "analyze")
                or callable(self.analyzer)):
            raise TypeError(
                f"analyzer must be an analyzers name, an object with analyze(x, "
                f"neuron_selection), or a factory model -> analyzer; got "
                f"{type(self.analyzer).__name__}")
        if isinstance(self.analyzer, str):
            check_analyzer_name(self.analyzer)
        # no steps (None or empty): the training step, known once the model is
        set_(self, "steps", check_steps(self.steps) if self.steps else None)
        if not isinstance(self.split, str) or not self.split:
            raise ValueError(f"split must be the name of a split, got {self.split!r}")
        set_(self, "clips_per_video",
             check_positive_or_all("clips_per_video", self.clips_per_video))
        set_(self, "batch_size", check_positive("batch_size", self.batch_size))
        for name in ("prior_seeds", "n_heatmaps", "flip_videos"):
            check_count(name, getattr(self, name))
        if self.target not in TARGETS:
            raise ValueError(f"target must be 'predicted' or 'label', got {self.target!r}")
        check_choice("flip_fill", self.flip_fill, FILLS)
        set_(self, "n_boot", check_positive("n_boot", self.n_boot))
        set_(self, "seed", check_int("seed", self.seed))
        check_crops(self.crops)
        set_(self, "temporal_sigma", check_sigma("temporal_sigma", self.temporal_sigma))
        set_(self, "worker", check_worker(self.worker))
        set_(self, "devices", check_devices(self.devices))

    @property
    def analyzer_name(self) -> str:
        """The analyzer's name in the tables (a custom one is known by its type or function
        name only)."""
        if isinstance(self.analyzer, str):
            return self.analyzer
        if hasattr(self.analyzer, "analyze"):
            return type(self.analyzer).__name__
        return getattr(self.analyzer, "__name__", "custom")

    def as_dict(self) -> dict[str, Any]:
        """The options as JSON values (the analyzer by :attr:`analyzer_name`, the worker as
        ``[num_workers, index]``), as saved in ``summary.json``."""
        return {"analyzer": self.analyzer_name,
                "steps": None if self.steps is None else list(self.steps),
                "split": self.split, "clips_per_video": self.clips_per_video,
                "prior_seeds": self.prior_seeds, "target": self.target,
                "n_heatmaps": self.n_heatmaps, "flip_videos": self.flip_videos,
                "flip_fill": self.flip_fill, "batch_size": self.batch_size,
                "n_boot": self.n_boot, "seed": self.seed, "progress": self.progress,
                "crops": self.crops, "temporal_sigma": self.temporal_sigma,
                "worker": [self.worker.num_workers, self.worker.index],
                "devices": None if self.devices is None else list(self.devices)}
