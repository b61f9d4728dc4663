"""A training run's folder: per-epoch checkpoints, ``history.csv`` and resume state.

Layout of ``out_dir``::

    history.csv                 one row per finished epoch (written atomically)
    checkpoints/epoch_0003.keras  model + optimizer after the last finished epoch
    checkpoints/best.weights.h5 weights of the epoch with the lowest validation loss so far
    checkpoints/state.json      {"epoch": 3, "checkpoint": "epoch_0003.keras", "best": ...,
                                 "settings": ...}

Each epoch writes the checkpoint, then the history, then ``state.json``; a run interrupted
at any point resumes from the epoch ``state.json`` names, with the history cut to match.
A new best epoch's weights go to ``pending_best_epoch_NNNN.weights.h5`` first and replace
``best.weights.h5`` only after ``state.json`` names that epoch as the best; on loading, a
pending file is completed if ``state.json`` names its epoch and dropped otherwise (a lost
epoch), so ``best.weights.h5`` always holds the best epoch ``state.json`` names.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import pandas as pd

from kvlrp.infra import fs, resume
from kvlrp.infra.atomic import atomic_write, write_csv, write_json

HISTORY_FILENAME = "history.csv"
CHECKPOINT_DIRNAME = "checkpoints"
STATE_FILENAME = "state.json"
BEST_WEIGHTS_FILENAME = "best.weights.h5"
PENDING_BEST_PREFIX = "pending_best_epoch_"


class RunState:
    """Reads and writes the resume state of the run in ``out_dir``."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = fs.path(out_dir)  # local, or any tf.io.gfile URL
        self.checkpoint_dir = self.out_dir / CHECKPOINT_DIRNAME
        self.state_path = self.checkpoint_dir / STATE_FILENAME
        self.history_path = self.out_dir / HISTORY_FILENAME
        self.best_weights_path = self.checkpoint_dir / BEST_WEIGHTS_FILENAME

    def load(self) -> dict[str, Any] | None:
        """The saved state (``epoch``, ``checkpoint``, ``settings``), or None for a fresh run.

        Raises
        ------
        kvlrp.infra.resume.UnreadableStateError
            ``state.json`` exists but cannot be read (the message names it).
        """
        state = resume.read(self.state_path)
        self._settle_best(state)
        return state

    def _pending_best_path(self, epoch: int) -> Path:
        return self.checkpoint_dir / f"{PENDING_BEST_PREFIX}{epoch:04d}.weights.h5"

    def _settle_best(self, state: dict[str, Any] | None) -> None:
        """Finish or drop best-weights files of an interrupted :meth:`save_epoch`."""
        best = (state or {}).get("best") or {}
        for pending in sorted(self.checkpoint_dir.glob(f"{PENDING_BEST_PREFIX}*.weights.h5")):
            epoch = int(pending.name[len(PENDING_BEST_PREFIX):].split(".")[0])
            if state is not None and best.get("epoch") == epoch == state.get("epoch"):
                fs.replace(pending, self.best_weights_path)  # state.json named it: complete
            else:
                pending.unlink(missing_ok=True)  # written for an epoch that was lost
        if state is not None:  # checkpoints the state does not name: an older or a lost epoch
            for old in self.checkpoint_dir.glob("epoch_*.keras"):
                if old.name != state.get("checkpoint"):
                    old.unlink(missing_ok=True)

    def checkpoint_path(self, state: dict[str, Any]) -> Path:
        """Path of the checkpoint a state names."""
        return self.checkpoint_dir / state["checkpoint"]

    def history(self, up_to_epoch: int) -> list[dict[str, Any]]:
        """History rows of epochs ``1..up_to_epoch`` (later rows belong to a lost epoch)."""
        if up_to_epoch <= 0 or not self.history_path.is_file():
            return []
        table = fs.read_csv(self.history_path)
        return table[table["epoch"] <= up_to_epoch].to_dict("records")

    def save_epoch(
        self,
        model: keras.Model,
        epoch: int,
        rows: list[dict[str, Any]],
        settings: dict[str, Any],
        best: dict[str, Any] | None = None,
    ) -> None:
        """Record finished epoch ``epoch`` (1-based): checkpoint, history, then state.

        ``best`` (``{"epoch", "val_loss"}``) names the best epoch so far; if it is this epoch,
        its weights are saved to a pending file first and become ``best.weights.h5`` once
        ``state.json`` names the epoch (a kill at any point leaves a consistent folder).
        """
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        pending = None
        if best is not None and best["epoch"] == epoch:
            pending = self._pending_best_path(epoch)
            atomic_write(pending, model.save_weights, suffix=".weights.h5")
        name = f"epoch_{epoch:04d}.keras"
        atomic_write(self.checkpoint_dir / name, model.save, suffix=".keras")
        write_csv(pd.DataFrame(rows), self.history_path)
        # (kvlrp.infra.resume's layout, written through this module's write_json)
        write_json(resume.document(settings, epoch=epoch, checkpoint=name, best=best,
                                   rng_states=rng_states(model)), self.state_path)
        if pending is not None:
            fs.replace(pending, self.best_weights_path)
        for old in self.checkpoint_dir.glob("epoch_*.keras"):
            if old.name != name:
                old.unlink(missing_ok=True)


class _Validation(keras.callbacks.Callback):
    """Times the epoch's training and adds the validation scores to its logs (for
    :class:`EpochEnd`, which saves them after the callbacks in between)."""

    def __init__(self, end: EpochEnd) -> None:
        super().__init__()
        self.end = end

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.end._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        self.end._train_seconds = time.perf_counter() - self.end._start
        if self.end.validate is not None:
            scores = self.end.validate(self.end.model)
            for key in ("loss", "clip_accuracy", "video_accuracy"):
                logs[f"val_{key}"] = scores[key]


def _seed_generator_states(model: keras.Model) -> list:
    return [v for v in model.non_trainable_variables
            if v.path.rsplit("/", 1)[-1] == "seed_generator_state"]


def rng_states(model: keras.Model) -> list[list[int]]:
    """The states of the model's random seed generators (dropout masks), in layer order.

    Keras does not save them with the model, so a resumed run restores them from
    ``state.json`` (:func:`restore_rng_states`) to draw the same masks as an uninterrupted run.
    """
    return [[int(x) for x in keras.ops.convert_to_numpy(v.value).ravel()]
            for v in _seed_generator_states(model)]


def restore_rng_states(model: keras.Model, states: list[list[int]] | None) -> None:
    """Set the seed generators of ``model`` to ``states`` (from :func:`rng_states`)."""
    variables = _seed_generator_states(model)
    if not states or len(states) != len(variables):
        return
    for variable, value in zip(variables, states):
        variable.assign(keras.ops.convert_to_tensor(value, dtype=variable.dtype))


class EpochEnd(keras.callbacks.Callback):
    """Saves each finished epoch: its logs (and wall times) as a history row, the checkpoint
    and the resume state. Its :attr:`validation` callback adds the validation scores to the
    logs first; callbacks run between the two add theirs to the same row.

    Parameters
    ----------
    run_state
        Where to write (``None`` on workers that write nothing).
    rows
        History rows of earlier epochs (a resumed run's); new rows are appended.
    settings
        Run settings stored in ``state.json`` (checked when resuming).
    validate
        ``validate(model) -> dict`` of validation scores, or None for no validation.
    best
        Best epoch so far (``{"epoch", "val_loss"}``) of a resumed run.
    """

    def __init__(
        self,
        run_state: RunState | None,
        rows: list[dict[str, Any]],
        settings: dict[str, Any],
        validate: Callable[[keras.Model], dict[str, float]] | None,
        best: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.best = best
        self.run_state = run_state
        self.rows = list(rows)
        self.settings = settings
        self.validate = validate
        self._start = time.perf_counter()
        self._train_seconds = 0.0
        #: The first callback of an epoch's end: validation scores into the logs.
        self.validation = _Validation(self)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in logs.items()})
        row["train_seconds"] = self._train_seconds
        row["epoch_seconds"] = time.perf_counter() - self._start
        self.rows.append(row)
        if "val_loss" in logs and (self.best is None or logs["val_loss"] < self.best["val_loss"]):
            self.best = {"epoch": epoch + 1, "val_loss": float(logs["val_loss"])}
        if self.run_state is not None:
            self.run_state.save_epoch(self.model, epoch + 1, self.rows, self.settings, self.best)
