"""``train``: fit a C3D-family model on random clips from a shard folder, with validation,
per-epoch checkpoints, ``history.csv``, resume after interruption and seeded reproducibility.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import pandas as pd
import tensorflow as tf

from kvlrp.data.shards.folder import shard_fingerprint
from kvlrp.infra import fs
from kvlrp.infra.compat import disable_op_determinism, op_determinism_enabled
from kvlrp.infra.provenance import provenance
from kvlrp.infra.resume import UnreadableStateError, compare
from kvlrp.infra.safe_paths import check_out_dir
from kvlrp.models import ModelInfo, build_model, save_model
from kvlrp.models.info import clip_settings
from kvlrp.training.checks import ShardSummary, TrainingSetupError, check_shards
from kvlrp.training.config import RESUME_KEYS, TrainConfig
from kvlrp.training.evaluation import evaluate_clips, make_predict
from kvlrp.training.loop import run_epochs
from kvlrp.training.run_state import EpochEnd, RunState, restore_rng_states
from kvlrp.training.strategy import is_chief, resolve_strategy

logger = logging.getLogger(__name__)

__all__ = ["RESUME_KEYS", "TrainConfig", "TrainResult", "epoch_seed", "op_determinism", "train"]


@dataclass
class TrainResult:
    """What :func:`train` produced.

    Attributes
    ----------
    model
        The trained Keras model (weights of the best validation epoch if ``restore_best``,
        else of the last epoch).
    info
        Its :class:`~kvlrp.models.ModelInfo` (as saved in ``kvlrp.json``).
    history
        One row per epoch: ``epoch``, ``loss``, ``accuracy`` (training clips), ``val_loss``,
        ``val_clip_accuracy``, ``val_video_accuracy`` (if there is a validation split),
        ``clips_per_second`` (training throughput, see :data:`kvlrp.training.loop.THROUGHPUT`),
        ``train_seconds``, ``epoch_seconds``.
    model_dir
        Folder holding ``model.keras``, ``kvlrp.json``, ``history.csv`` and ``checkpoints/``.
    initial_epoch
        Epochs already done when this call started (> 0 when it resumed a run).
    """

    model: keras.Model
    info: ModelInfo
    history: pd.DataFrame
    model_dir: Path | fs.GPath
    initial_epoch: int = 0


def train(
    shard_dir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    config: TrainConfig | None = None,
    *,
    progress: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    **options: Any,
) -> TrainResult:
    """Train a model on random clips of the shards in ``shard_dir``; write it to ``out_dir``.

    Parameters
    ----------
    shard_dir, out_dir
        Shard folder to train on; model folder to write (or resume).
    config
        All settings as one :class:`TrainConfig` (its ``shard_dir`` and ``out_dir`` among
        them); then give neither ``shard_dir``, ``out_dir`` nor any option.
    progress
        Show Keras' progress bar (one line per epoch when output is not a terminal).
    callbacks
        Extra Keras callbacks (run after validation and checkpointing).
    **options
        The settings by keyword, as :meth:`TrainConfig.from_keywords` takes them: the fields
        of :class:`TrainConfig` (``model``, ``epochs``, ``seed``, ...), the clip settings
        ``clip_len``, ``step``, ``size``, ``normalization``, ``short_policy``, and any other
        name as an architecture builder argument (``widths``, ``dense_units``, ...).

    Returns
    -------
    TrainResult
        Its ``info.extra`` holds the run's ``config`` (:meth:`TrainConfig.to_dict`) and its
        training throughput ``clips_per_second`` (see :data:`kvlrp.training.loop.THROUGHPUT`;
        over the epochs this call ran, ``None`` if none), and its ``provenance``
        (:func:`kvlrp.infra.provenance.provenance`: the shards, software and command).

    Raises
    ------
    TrainingSetupError
        Settings or data that cannot be trained on (before anything is computed).
    """
    config = _config(shard_dir, out_dir, config, options)
    with op_determinism(config.determinism):
        plan = _plan(config)
        net, epoch_end = _compute(plan, callbacks, progress)
        return _summarise(plan, net, epoch_end)


def _config(shard_dir: str | os.PathLike | None, out_dir: str | os.PathLike | None,
            config: TrainConfig | None, options: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` of :func:`train`'s arguments (its ``config``, or one built from
    the folders and options); refuses settings given both ways."""
    if config is None:
        if shard_dir is None or out_dir is None:
            raise TypeError("train() needs shard_dir and out_dir, or config=TrainConfig(...)")
        return TrainConfig.from_keywords(shard_dir, out_dir, **options)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    given = [name for name, value in (("shard_dir", shard_dir), ("out_dir", out_dir))
             if value is not None] + sorted(options)
    if given:
        raise TypeError(
            f"train(config=...) takes its settings from the config, but {given} were given "
            "too; use dataclasses.replace(config, ...) instead"
        )
    return config


@dataclass(frozen=True)
class _Plan:
    """What :func:`_plan` decided: the data, the strategy and whether to resume."""

    config: TrainConfig
    shards: ShardSummary
    strategy: tf.distribute.Strategy
    chief: bool
    run_state: RunState
    settings: dict[str, Any]
    state: dict[str, Any] | None

    @property
    def initial_epoch(self) -> int:
        return int(self.state["epoch"]) if self.state is not None else 0

    @property
    def steps_per_epoch(self) -> int:
        config = self.config
        return config.steps_per_epoch or max(1, math.ceil(self.shards.n_train / config.batch_size))


def _plan(config: TrainConfig) -> _Plan:
    """Check the output folder and the shards, seed, resolve the strategy, decide to resume."""
    try:
        check_out_dir(config.out_dir)
    except ValueError as err:
        raise TrainingSetupError(str(err)) from None
    shards = check_shards(config.shard_dir, config.clip.clip_len, config.clip.step,
                          config.val_split)
    if not shards.n_val:
        warnings.warn(
            f"no videos in the {config.val_split!r} split of {config.shard_dir}: training "
            "without validation (the last epoch's weights are kept)", stacklevel=3,
        )
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
    try:
        strategy = resolve_strategy(config.strategy)
    except ValueError as err:
        raise TrainingSetupError(str(err)) from err
    chief = is_chief(strategy)
    settings = config.resume_settings(shards.classes)
    run_state = RunState(config.out_dir)
    state = _resume_state(run_state, settings, config.resume, chief)
    return _Plan(config, shards, strategy, chief, run_state, settings, state)


def _compute(
    plan: _Plan, callbacks: Sequence[keras.callbacks.Callback], progress: bool
) -> tuple[keras.Model, EpochEnd]:
    """Build (or load the checkpoint of a resumed run) and train the model."""
    config = plan.config
    net = _model(plan)
    epoch_end = EpochEnd(
        plan.run_state if plan.chief else None, plan.run_state.history(plan.initial_epoch),
        plan.settings, _validator(plan, net),
        best=plan.state.get("best") if plan.state is not None else None,
    )
    if plan.initial_epoch < config.epochs:
        run_epochs(
            net, _train_data(config), plan.strategy, epochs=config.epochs,
            initial_epoch=plan.initial_epoch, steps_per_epoch=plan.steps_per_epoch,
            global_batch_size=config.batch_size, callbacks=[epoch_end, *callbacks],
            verbose=(1 if sys.stdout.isatty() else 2) if progress else 0,
        )
    return net, epoch_end


def _summarise(plan: _Plan, net: keras.Model, epoch_end: EpochEnd) -> TrainResult:
    """Restore the best epoch's weights (if asked), describe the run and save the model."""
    config = plan.config
    history = pd.DataFrame(epoch_end.rows)
    best = epoch_end.best
    restored = bool(config.restore_best and best and plan.chief
                    and plan.run_state.best_weights_path.is_file())
    if restored:
        with fs.local_copy(plan.run_state.best_weights_path) as weights:
            net.load_weights(weights)
    info = ModelInfo(
        architecture=config.model, classes=plan.shards.classes, **clip_settings(config.clip),
        seed=config.seed, model_kwargs=plan.settings["model_kwargs"],
        extra={
            "epochs": len(history), "batch_size": config.batch_size,
            "learning_rate": config.learning_rate, "steps_per_epoch": plan.steps_per_epoch,
            "n_train_videos": plan.shards.n_train, "n_val_videos": plan.shards.n_val,
            "n_short_train_videos": plan.shards.n_short_train,
            "strategy": type(plan.strategy).__name__,
            "replicas": plan.strategy.num_replicas_in_sync,
            "last_epoch": _last_row(history),
            "best_epoch": best["epoch"] if best else None,
            "weights_from_epoch": best["epoch"] if restored else len(history),
            "clips_per_second": _clips_per_second(history, plan.initial_epoch),
            "config": config.to_dict(),
            # the shards and software it was trained with (no model file: none was read)
            "provenance": provenance(shards_path=config.shard_dir,
                                     shards_fingerprint=shard_fingerprint(config.shard_dir)),
        },
    )
    if plan.chief:
        save_model(net, config.out_dir, info)
    return TrainResult(net, info, history, fs.path(config.out_dir), plan.initial_epoch)


def _model(plan: _Plan) -> keras.Model:
    """The checkpoint of the run being resumed, or a fresh compiled model."""
    config = plan.config
    with plan.strategy.scope():
        if plan.state is None:
            return _compiled_model(config.model, len(plan.shards.classes), config.learning_rate,
                                   config.builder_kwargs())
        with fs.local_copy(plan.run_state.checkpoint_path(plan.state)) as checkpoint:
            net = keras.saving.load_model(checkpoint, compile=True)
        restore_rng_states(net, plan.state.get("rng_states"))
        return net


def _train_data(config: TrainConfig) -> Callable[[int], tf.data.Dataset]:
    """``epoch -> dataset`` of random training clips (seeded by :func:`epoch_seed`)."""
    from kvlrp.data.clips.pipeline import train_dataset

    def train_data(epoch: int) -> tf.data.Dataset:
        data = train_dataset(config.shard_dir, config.clip, config.batch_size, split="train",
                             seed=epoch_seed(config.seed, epoch))
        return data.with_options(_shard_by_data())

    return train_data


def _clips_per_second(history: pd.DataFrame, initial_epoch: int) -> float | None:
    """Training clips per second over the epochs run after ``initial_epoch`` (every epoch
    trains the same number of clips, so: their harmonic mean), or None if none ran."""
    if "clips_per_second" not in history:
        return None
    rates = history.loc[history["epoch"] > initial_epoch, "clips_per_second"]
    return float(len(rates) / (1.0 / rates).sum()) if len(rates) else None


def epoch_seed(seed: int | None, epoch: int) -> int | None:
    """The data seed of epoch ``epoch`` (0-based) of a run seeded ``seed``: a function of the
    two only, so a resumed run draws the same clips as an uninterrupted one."""
    if seed is None:
        return None
    digest = hashlib.sha256(f"kvlrp-train-data:{int(seed)}:{int(epoch)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _compiled_model(
    architecture: str, num_classes: int, learning_rate: float, model_kwargs: dict[str, Any]
) -> keras.Model:
    """A fresh model compiled with Adam, clip cross-entropy and clip accuracy."""
    try:
        net = build_model(architecture, num_classes, **model_kwargs)
    except (ValueError, TypeError) as err:  # bad architecture arguments
        raise TrainingSetupError(str(err)) from err
    net.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return net


def _validator(
    plan: _Plan, net: keras.Model
) -> Callable[[keras.Model], dict[str, float]] | None:
    """``validate(model) -> scores`` on the validation split with one compiled predict
    function; None without validation videos, or on workers other than the chief."""
    from kvlrp.data.clips.pipeline import eval_dataset

    config = plan.config
    if not plan.shards.n_val or not plan.chief:  # other workers only train
        return None
    val_data = eval_dataset(config.shard_dir, config.clip, split=config.val_split,
                            n_clips=config.val_clips, batch_size=max(config.batch_size, 16))
    predict = make_predict(net)

    def validate(model: keras.Model) -> dict[str, float]:
        return evaluate_clips(model, val_data, predict)

    return validate


@contextmanager
def op_determinism(enabled: bool) -> Iterator[None]:
    """Run the block with TensorFlow op determinism on (if ``enabled``), then restore it.

    ``tf.config.experimental.enable_op_determinism`` is process-wide and TensorFlow exports
    no switch back, so the previous state is restored through :mod:`kvlrp.infra.compat` where TF
    allows it (TF >= 2.12); otherwise determinism stays on after training.
    """
    previous = op_determinism_enabled()
    if enabled:
        tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if enabled and not previous:
            disable_op_determinism()


def _shard_by_data() -> tf.data.Options:
    """Options that shard a (generated, not file-backed) dataset by element across workers."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def _resume_state(
    run_state: RunState, settings: dict[str, Any], resume: bool, chief: bool
) -> dict[str, Any] | None:
    """The state to resume from, after checking its settings (:func:`kvlrp.infra.resume.compare`
    on :data:`RESUME_KEYS`); clears it if not resuming."""
    unreadable = None
    try:
        state = run_state.load()
    except UnreadableStateError as err:  # not resumable; never silently started over
        state, unreadable = None, err
    if state is None and unreadable is None:
        return None
    if not resume:
        if chief:
            shutil.rmtree(run_state.checkpoint_dir, ignore_errors=True)
            run_state.history_path.unlink(missing_ok=True)
        return None
    if unreadable is not None:
        raise TrainingSetupError(
            f"{unreadable}; start over with resume=False / --no-resume"
        ) from unreadable
    decision = compare(state, settings, RESUME_KEYS)
    if not decision.reuse:
        raise TrainingSetupError(
            f"{run_state.out_dir} holds a run with other settings ({decision.describe()}); "
            "use another output folder, or resume=False / --no-resume to start over"
        )
    if not run_state.checkpoint_path(state).is_file():
        raise TrainingSetupError(
            f"{run_state.state_path} names {state['checkpoint']}, which is missing; "
            "start over with resume=False / --no-resume"
        )
    logger.info("resuming %s after epoch %s (%s)", run_state.out_dir, state.get("epoch"),
                decision.reason)
    return state


def _last_row(history: pd.DataFrame) -> dict[str, Any]:
    """The last epoch's scores (``epoch`` as int), for ``ModelInfo.extra``."""
    if history.empty:
        return {}
    row = {k: float(v) for k, v in history.iloc[-1].items()}
    row["epoch"] = int(row["epoch"])
    return row
