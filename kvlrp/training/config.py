"""``TrainConfig``: every setting of one training run, checked once, recorded in ``kvlrp.json``.

Built from ``kvlrp train``'s options (:func:`kvlrp.commands.train.train_config`), from
:func:`kvlrp.training.train`'s keywords (:meth:`TrainConfig.from_keywords`) or directly; the
clip settings live in one :class:`~kvlrp.data.clips.spec.ClipSpec`, from which the resume
settings and the saved :class:`~kvlrp.models.ModelInfo` are derived.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import TYPE_CHECKING, Any

from kvlrp.data.clips.spec import ClipSpec, check_trainable
from kvlrp.infra import fs
from kvlrp.infra.checks import check_positive_or_all, is_int
from kvlrp.models import ARCHITECTURES
from kvlrp.models.info import CLIP_FIELDS, clip_settings
from kvlrp.training.checks import TrainingSetupError
from kvlrp.training.strategy import STRATEGY_NAMES

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

#: Settings that must match for a run to resume from an earlier run's checkpoint (the keys
#: of :meth:`TrainConfig.resume_settings`).
RESUME_KEYS = (
    "architecture", "model_kwargs", "classes", *CLIP_FIELDS, "batch_size", "learning_rate",
    "seed",
)


@dataclass(frozen=True)
class TrainConfig:
    """The settings of one :func:`~kvlrp.training.train` run.

    Attributes
    ----------
    shard_dir
        Folder written by ``kvlrp prepare`` (``index.csv``, ``classes.json``, TFRecords).
    out_dir
        Model folder to write; if it holds an unfinished run with the same settings, training
        resumes after its last finished epoch (unless ``resume=False``).
    model
        Architecture name (a key of ``kvlrp.models.ARCHITECTURES``, e.g. ``c3d_small``,
        ``r2plus1d_small``, ``x3d``).
    clip
        Clip geometry and preprocessing (``clip_len``, ``step``, ``size``, ``normalization``,
        ``short_policy``: frames per clip, stride between a clip's frames, square crop size,
        pixel normalisation and the policy for videos shorter than a clip's span; ``crops``
        applies to validation).
    epochs
        Total epochs (a resumed run trains only the missing ones).
    batch_size
        Global batch size (split over replicas under a distribution strategy).
    steps_per_epoch
        Batches per epoch (default 40: with the other defaults, 40 epochs of 40 batches of
        16, ``c3d_small`` reaches its plateau on the demo's synthetic dataset in a few minutes
        on 2 CPU cores); ``None``: one random clip per training video.
    seed
        Seeds weights, dropout and clip sampling; with ``deterministic`` the same seed gives
        the same history on the same machine. ``None``: unseeded.
    learning_rate
        Adam learning rate.
    val_split, val_clips
        Split validated after every epoch and evaluation clips per video (int or ``"all"``).
    resume
        Continue an interrupted run in ``out_dir``; ``False`` starts over.
    restore_best
        Return and save the weights of the epoch with the lowest validation loss (validation
        scores of small sets are noisy); ``False``, or no validation split: the last epoch's.
    deterministic
        Run with TensorFlow op determinism (restored afterwards, see
        :func:`kvlrp.training.train.op_determinism`); ``None``: when ``seed`` is given.
    strategy
        ``None``/``"default"``, ``"mirrored"``, ``"multiworker"`` (cluster from ``TF_CONFIG``)
        or a ``tf.distribute.Strategy``.
    model_kwargs
        Architecture builder arguments (``widths``, ``dense_units``, ``batch_norm``,
        ``temporal_padding``, ...; read-only; the clip's shape is added by
        :meth:`builder_kwargs`).
    """

    shard_dir: str | os.PathLike
    out_dir: str | os.PathLike
    model: str = "c3d_small"
    clip: ClipSpec = ClipSpec()
    epochs: int = 40
    batch_size: int = 16
    steps_per_epoch: int | None = 40
    seed: int | None = 0
    learning_rate: float = 1e-3
    val_split: str = "val"
    val_clips: int | str = 4
    resume: bool = True
    restore_best: bool = True
    deterministic: bool | None = None
    strategy: str | tf.distribute.Strategy | None = None
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_kwargs", types.MappingProxyType(dict(self.model_kwargs)))
        _check_run(self)
        check_trainable(self.clip.clip_len, self.clip.step, self.clip.size,
                        error=TrainingSetupError)
        check_positive_or_all("val_clips", self.val_clips, error=TrainingSetupError)
        self.builder_kwargs()  # refuses model arguments that contradict the clip

    @classmethod
    def from_keywords(
        cls,
        shard_dir: str | os.PathLike,
        out_dir: str | os.PathLike,
        *,
        clip_len: int = 8,
        step: int = 1,
        size: int = 56,
        normalization: str = "symmetric",
        short_policy: str = "loop",
        **settings: Any,
    ) -> TrainConfig:
        """The config of :func:`~kvlrp.training.train`'s keywords (the clip settings apart,
        ``settings`` are fields; unknown names are builder arguments, ``model_kwargs``)."""
        check_trainable(clip_len, step, size, error=TrainingSetupError)
        try:
            clip = ClipSpec(clip_len=clip_len, step=step, size=size,
                            normalization=normalization, short_policy=short_policy)
        except ValueError as err:
            raise TrainingSetupError(str(err)) from None
        names = {f.name for f in dataclasses.fields(cls)} - {"clip", "model_kwargs"}
        given = {k: settings.pop(k) for k in list(settings) if k in names}
        return cls(shard_dir, out_dir, clip=clip, **given, model_kwargs=settings)

    @property
    def determinism(self) -> bool:
        """Whether the run uses TensorFlow op determinism (``deterministic``, default: seeded)."""
        return self.deterministic if self.deterministic is not None else self.seed is not None

    def builder_kwargs(self) -> dict[str, Any]:
        """``model_kwargs`` with the clip's shape (``frames``/``size`` or ``input_shape``)."""
        return _with_input_shape(self.model, self.clip.clip_len, self.clip.size,
                                 self.model_kwargs)

    def resume_settings(self, classes: list[str]) -> dict[str, Any]:
        """The settings a checkpoint must share to be resumed (``state.json``'s ``settings``)."""
        return {
            "architecture": self.model, "model_kwargs": _jsonable(self.builder_kwargs()),
            "classes": list(classes), **clip_settings(self.clip),
            "batch_size": self.batch_size, "learning_rate": self.learning_rate,
            "seed": self.seed,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as text, a strategy object by its class name)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        strategy = self.strategy
        data.update(
            shard_dir=str(self.shard_dir) if fs.is_url(self.shard_dir)
            else os.fspath(self.shard_dir),
            out_dir=str(self.out_dir) if fs.is_url(self.out_dir) else os.fspath(self.out_dir),
            clip=dataclasses.asdict(self.clip),
            strategy=strategy if strategy is None or isinstance(strategy, str)
            else type(strategy).__name__,
            model_kwargs=_jsonable(self.model_kwargs),
        )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict` (a strategy saved by class name is not rebuilt)."""
        data = dict(data)
        clip = ClipSpec(**data.pop("clip", {}))
        if data.get("strategy") not in (None, *STRATEGY_NAMES):
            data["strategy"] = None
        return cls(clip=clip, **data)


def _check_run(config: TrainConfig) -> None:
    """One-line errors for run settings that cannot work."""
    for name in ("epochs", "batch_size"):
        value = getattr(config, name)
        if not is_int(value) or value < 1:
            raise TrainingSetupError(f"{name} must be an int >= 1, got {value!r}")
    if config.steps_per_epoch is not None and (
            not is_int(config.steps_per_epoch) or config.steps_per_epoch < 1):
        raise TrainingSetupError(
            f"steps_per_epoch must be an int >= 1 or None, got {config.steps_per_epoch!r}")
    rate = config.learning_rate
    if isinstance(rate, bool) or not isinstance(rate, Real) or not (0 < rate < math.inf):
        raise TrainingSetupError(f"learning_rate must be a finite number > 0, got {rate!r}")
    if config.seed is not None and not is_int(config.seed):
        raise TrainingSetupError(f"seed must be an int or None, got {config.seed!r}")
    if config.model not in ARCHITECTURES:
        raise TrainingSetupError(
            f"unknown architecture {config.model!r}; available: {sorted(ARCHITECTURES)}")
    if isinstance(config.strategy, str) and config.strategy not in STRATEGY_NAMES:
        raise TrainingSetupError(
            f"unknown strategy {config.strategy!r}; use one of {STRATEGY_NAMES} or a "
            "tf.distribute.Strategy")


def _with_input_shape(
    architecture: str, clip_len: int, size: int, kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """Add the clip's shape to the builder's arguments; refuse contradicting ones."""
    kwargs = dict(kwargs)
    params = inspect.signature(ARCHITECTURES[architecture]).parameters
    if "frames" in params and "size" in params:  # the _small builders
        for key, value in (("frames", clip_len), ("size", size)):
            if kwargs.setdefault(key, value) != value:
                raise TrainingSetupError(
                    f"model argument {key}={kwargs[key]} contradicts the clip settings "
                    f"(clip_len={clip_len}, size={size}); set the clip settings instead"
                )
    elif "input_shape" in params:  # the full-size builders
        shape = (clip_len, size, size, 3)
        if tuple(kwargs.setdefault("input_shape", shape)) != shape:
            raise TrainingSetupError(
                f"model argument input_shape={kwargs['input_shape']} contradicts the clip "
                f"settings {shape}; set clip_len and size instead"
            )
    return kwargs


def _jsonable(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
