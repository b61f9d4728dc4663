"""``train``: fit a C3D-family model on random clips from a shard folder, with validation,
per-epoch checkpoints, ``history.csv``, resume after interruption and seeded reproducibility.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import os
import shutil
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

import keras
import pandas as pd
import tensorflow as tf

from kvlrp import fs
from kvlrp.compat import disable_op_determinism, op_determinism_enabled
from kvlrp.models import ARCHITECTURES, ModelInfo, build_model, save_model
from kvlrp.resume import UnreadableStateError, compare
from kvlrp.safe_paths import check_out_dir
from kvlrp.training.checks import TrainingSetupError, check_shards
from kvlrp.training.evaluation import evaluate_clips, make_predict
from kvlrp.training.loop import run_epochs
from kvlrp.training.run_state import EpochEnd, RunState, restore_rng_states
from kvlrp.training.strategy import is_chief, resolve_strategy

logger = logging.getLogger(__name__)

#: Settings that must match for a run to resume from an earlier run's checkpoint.
RESUME_KEYS = (
    "architecture", "model_kwargs", "classes", "clip_len", "step", "size", "normalization",
    "short_policy", "batch_size", "learning_rate", "seed",
)


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
        ``train_seconds``, ``epoch_seconds``.
    model_dir
        Folder holding ``model.keras``, ``kvlrp.json``, ``history.csv`` and ``checkpoints/``.
    initial_epoch
        Epochs already done when this call started (> 0 when it resumed a run).
    """

    model: keras.Model
    info: ModelInfo
    history: pd.DataFrame
    model_dir: Path
    initial_epoch: int = 0


def train(
    shard_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    model: str = "c3d_small",
    clip_len: int = 8,
    step: int = 1,
    size: int = 56,
    epochs: int = 40,
    batch_size: int = 16,
    steps_per_epoch: int | None = 40,
    seed: int | None = 0,
    strategy: str | tf.distribute.Strategy | None = None,
    progress: bool = True,
    *,
    learning_rate: float = 1e-3,
    normalization: str = "symmetric",
    short_policy: str = "loop",
    val_split: str = "val",
    val_clips: int | str = 4,
    resume: bool = True,
    restore_best: bool = True,
    deterministic: bool | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    **model_kwargs: Any,
) -> TrainResult:
    """Train ``model`` on random clips of the shards in ``shard_dir``; write it to ``out_dir``.

    Parameters
    ----------
    shard_dir
        Folder written by ``kvlrp prepare`` (``index.csv``, ``classes.json``, TFRecords).
    out_dir
        Model folder to write; if it holds an unfinished run with the same settings, training
        resumes after its last finished epoch (unless ``resume=False``).
    model
        Architecture name (a key of ``kvlrp.models.ARCHITECTURES``, e.g. ``c3d_small``,
        ``r2plus1d_small``, ``x3d``).
    clip_len, step, size
        Frames per clip, stride between a clip's frames, square crop size.
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
    strategy
        ``None``/``"default"``, ``"mirrored"``, ``"multiworker"`` (cluster from ``TF_CONFIG``)
        or a ``tf.distribute.Strategy``.
    progress
        Show Keras' progress bar (one line per epoch when output is not a terminal).
    learning_rate
        Adam learning rate.
    normalization, short_policy
        Pixel normalisation and the policy for videos shorter than a clip's span.
    val_split, val_clips
        Split validated after every epoch and evaluation clips per video (int or ``"all"``).
    resume
        Continue an interrupted run in ``out_dir``; ``False`` starts over.
    restore_best
        Return and save the weights of the epoch with the lowest validation loss (validation
        scores of small sets are noisy); ``False``, or no validation split: the last epoch's.
    deterministic
        Run with TensorFlow op determinism (restored afterwards, see :func:`op_determinism`);
        default: when ``seed`` is given.
    callbacks
        Extra Keras callbacks (run after validation and checkpointing).
    **model_kwargs
        Passed to the architecture builder (``widths``, ``dense_units``, ``batch_norm``,
        ``temporal_padding``, ...).

    Returns
    -------
    TrainResult
    """
    from kvlrp.data.pipeline import ClipSpec, eval_dataset, train_dataset

    _check_arguments(epochs, batch_size, steps_per_epoch, learning_rate)
    _check_clip_arguments(clip_len, step, size, val_clips)
    try:
        check_out_dir(out_dir)
    except ValueError as err:
        raise TrainingSetupError(str(err)) from None
    summary = check_shards(shard_dir, clip_len, step, val_split)
    spec = ClipSpec(
        clip_len=clip_len, step=step, size=size, normalization=normalization,
        short_policy=short_policy,
    )
    if seed is not None:
        keras.utils.set_random_seed(seed)
    with op_determinism(deterministic if deterministic is not None else seed is not None):
        try:
            strategy = resolve_strategy(strategy)
        except ValueError as err:
            raise TrainingSetupError(str(err)) from err
        chief = is_chief(strategy)
        model_kwargs = _model_input_kwargs(model, clip_len, size, model_kwargs)
        settings = {
            "architecture": model, "model_kwargs": _jsonable(model_kwargs),
            "classes": summary.classes, "clip_len": clip_len, "step": step, "size": size,
            "normalization": normalization, "short_policy": short_policy,
            "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
        }
        run_state = RunState(out_dir)
        state = _resume_state(run_state, settings, resume, chief)

        with strategy.scope():
            if state is not None:
                with fs.local_copy(run_state.checkpoint_path(state)) as checkpoint:
                    net = keras.saving.load_model(checkpoint, compile=True)
                restore_rng_states(net, state.get("rng_states"))
            else:
                net = _compiled_model(model, len(summary.classes), learning_rate, model_kwargs)
        initial_epoch = int(state["epoch"]) if state is not None else 0

        if not summary.n_val:
            warnings.warn(
                f"no videos in the {val_split!r} split of {shard_dir}: training without "
                "validation (the last epoch's weights are kept)", stacklevel=2,
            )
        validate = None
        if summary.n_val and chief:  # other workers only train
            val_data = eval_dataset(shard_dir, spec, split=val_split, n_clips=val_clips,
                                    batch_size=max(batch_size, 16))
            validate = _validator(net, val_data)

        steps = steps_per_epoch or max(1, math.ceil(summary.n_train / batch_size))
        epoch_end = EpochEnd(
            run_state if chief else None, run_state.history(initial_epoch), settings, validate,
            best=state.get("best") if state is not None else None,
        )
        if initial_epoch < epochs:
            def train_data(epoch: int) -> tf.data.Dataset:
                data = train_dataset(shard_dir, spec, batch_size, split="train",
                                     seed=epoch_seed(seed, epoch))
                return data.with_options(_shard_by_data())

            verbose = (1 if sys.stdout.isatty() else 2) if progress else 0
            run_epochs(
                net, train_data, strategy, epochs=epochs, initial_epoch=initial_epoch,
                steps_per_epoch=steps, global_batch_size=batch_size,
                callbacks=[epoch_end, *callbacks], verbose=verbose,
            )
        history = pd.DataFrame(epoch_end.rows)
        best = epoch_end.best
        restored = bool(restore_best and best and chief and run_state.best_weights_path.is_file())
        if restored:
            with fs.local_copy(run_state.best_weights_path) as weights:
                net.load_weights(weights)
        info = ModelInfo(
            architecture=model, classes=summary.classes, clip_len=clip_len, step=step, size=size,
            normalization=normalization, short_policy=short_policy, seed=seed,
            model_kwargs=settings["model_kwargs"],
            extra={
                "epochs": len(history), "batch_size": batch_size, "learning_rate": learning_rate,
                "steps_per_epoch": steps,
                "n_train_videos": summary.n_train, "n_val_videos": summary.n_val,
                "n_short_train_videos": summary.n_short_train,
                "strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync,
                "last_epoch": _last_row(history),
                "best_epoch": best["epoch"] if best else None,
                "weights_from_epoch": best["epoch"] if restored else len(history),
            },
        )
        if chief:
            save_model(net, out_dir, info)
        return TrainResult(net, info, history, fs.path(out_dir), initial_epoch)


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


def _validator(net: keras.Model, val_data: tf.data.Dataset):
    """``validate(model) -> scores`` on ``val_data``, with one compiled predict function."""
    predict = make_predict(net)

    def validate(model: keras.Model) -> dict[str, float]:
        return evaluate_clips(model, val_data, predict)

    return validate


@contextmanager
def op_determinism(enabled: bool) -> Iterator[None]:
    """Run the block with TensorFlow op determinism on (if ``enabled``), then restore it.

    ``tf.config.experimental.enable_op_determinism`` is process-wide and TensorFlow exports
    no switch back, so the previous state is restored through :mod:`kvlrp.compat` where TF
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


def _check_arguments(
    epochs: int, batch_size: int, steps_per_epoch: int | None, learning_rate: float
) -> None:
    if int(epochs) < 1:
        raise TrainingSetupError(f"epochs must be >= 1, got {epochs}")
    if int(batch_size) < 1:
        raise TrainingSetupError(f"batch_size must be >= 1, got {batch_size}")
    if steps_per_epoch is not None and int(steps_per_epoch) < 1:
        raise TrainingSetupError(f"steps_per_epoch must be >= 1 or None, got {steps_per_epoch}")
    if not learning_rate > 0:
        raise TrainingSetupError(f"learning_rate must be > 0, got {learning_rate}")


#: Upper bounds of the clip settings (a 2160-pixel crop is a 4K frame).
MAX_CLIP_LEN = 1024
MAX_SIZE = 2160


def _check_clip_arguments(clip_len: Any, step: Any, size: Any, val_clips: Any) -> None:
    """One-line errors for clip settings that cannot work (before anything is computed)."""
    for name, value, high in (("clip_len", clip_len, MAX_CLIP_LEN), ("step", step, None),
                              ("size", size, MAX_SIZE)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1 or (
                high is not None and value > high):
            bound = f"in 1..{high}" if high else ">= 1"
            raise TrainingSetupError(f"{name} must be an int {bound}, got {value!r}")
    if val_clips != "all" and (isinstance(val_clips, bool)
                               or not isinstance(val_clips, Integral)
                               or val_clips < 1):
        raise TrainingSetupError(f"val_clips must be a positive int or 'all', got {val_clips!r}")


def _model_input_kwargs(
    architecture: str, clip_len: int, size: int, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Add the clip's shape to the builder's arguments; refuse contradicting ones."""
    kwargs = dict(kwargs)
    builder = ARCHITECTURES.get(architecture)
    params = inspect.signature(builder).parameters if builder is not None else {}
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


def _jsonable(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


def _resume_state(
    run_state: RunState, settings: dict[str, Any], resume: bool, chief: bool
) -> dict[str, Any] | None:
    """The state to resume from, after checking its settings (:func:`kvlrp.resume.compare`
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
