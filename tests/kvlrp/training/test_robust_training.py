"""Issue 16, training: a resumed run is bit-identical to an uninterrupted one (per-epoch data
seeds independent of where a run started), and a kill at any point of an epoch's save leaves a
folder whose ``best.weights.h5`` is the best epoch ``state.json`` names."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from kvlrp.training import train
from kvlrp.training.run_state import RunState

#: the robustness set (bad input, damaged files, kills, resumes): ``pytest -m robust``
pytestmark = pytest.mark.robust

TINY = {"clip_len": 4, "size": 16, "batch_size": 4, "widths": (4, 8), "dense_units": 16,
        "progress": False, "seed": 5, "steps_per_epoch": 2}
SCORES = ["epoch", "loss", "accuracy", "val_loss", "val_clip_accuracy", "val_video_accuracy"]


class _InterruptAfter(keras.callbacks.Callback):
    """Ctrl-C once ``epoch`` epochs are saved (as the next one starts: callbacks run before an
    epoch is saved, so one raising at an epoch's end loses that epoch)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_epoch_seeds_do_not_depend_on_the_start():
    from kvlrp.training.train import epoch_seed

    seeds = [epoch_seed(5, e) for e in range(6)]
    assert len(set(seeds)) == 6 and seeds == [epoch_seed(5, e) for e in range(6)]
    assert epoch_seed(6, 0) != seeds[0] and epoch_seed(None, 3) is None
    assert all(0 <= s < 2**31 for s in seeds)


def test_resumed_training_is_identical_to_an_uninterrupted_run(synthetic_shards, tmp_path):
    whole = train(synthetic_shards, tmp_path / "whole", epochs=4, **TINY)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        train(synthetic_shards, out, epochs=4, callbacks=[_InterruptAfter(2)], **TINY)
    resumed = train(synthetic_shards, out, epochs=4, **TINY)
    assert resumed.initial_epoch == 2
    pd.testing.assert_frame_equal(resumed.history[SCORES], whole.history[SCORES])
    for w0, w1 in zip(resumed.model.get_weights(), whole.model.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    assert resumed.info.extra["best_epoch"] == whole.info.extra["best_epoch"]


def _tiny_model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def test_a_kill_before_the_state_is_written_keeps_the_named_best_weights(tmp_path,
                                                                         monkeypatch):
    from kvlrp.training import run_state as module

    state = RunState(tmp_path)
    first, second = _tiny_model(1), _tiny_model(2)
    rows = [{"epoch": 1, "val_loss": 0.5}]
    state.save_epoch(first, 1, rows, {"s": 1}, best={"epoch": 1, "val_loss": 0.5})
    real = module.write_json

    def killed_at_state(obj, path):  # the process dies just before state.json is replaced
        if path == state.state_path:
            raise KeyboardInterrupt
        return real(obj, path)

    monkeypatch.setattr(module, "write_json", killed_at_state)
    with pytest.raises(KeyboardInterrupt):
        state.save_epoch(second, 2, [*rows, {"epoch": 2, "val_loss": 0.1}], {"s": 1},
                         best={"epoch": 2, "val_loss": 0.1})
    monkeypatch.setattr(module, "write_json", real)
    loaded = RunState(tmp_path).load()  # what a resumed run sees
    assert loaded["epoch"] == 1 and loaded["best"]["epoch"] == 1
    probe = _tiny_model(3)
    probe.load_weights(state.best_weights_path)
    for w0, w1 in zip(probe.get_weights(), first.get_weights()):
        np.testing.assert_array_equal(w0, w1)  # epoch 1's weights, not the lost epoch 2's
    assert not list(state.checkpoint_dir.glob("pending_*"))


def test_a_kill_after_the_state_is_written_completes_the_best_weights(tmp_path, monkeypatch):
    import os

    from kvlrp.training import run_state as module

    state = RunState(tmp_path)
    first, second = _tiny_model(1), _tiny_model(2)
    state.save_epoch(first, 1, [{"epoch": 1}], {"s": 1}, best={"epoch": 1, "val_loss": 0.5})
    real = os.replace

    def killed_at_rename(src, dst):  # dies after state.json, before the best file is renamed
        if str(dst) == str(state.best_weights_path):
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(module.os, "replace", killed_at_rename)
    with pytest.raises(KeyboardInterrupt):
        state.save_epoch(second, 2, [{"epoch": 1}, {"epoch": 2}], {"s": 1},
                         best={"epoch": 2, "val_loss": 0.1})
    monkeypatch.setattr(module.os, "replace", real)
    assert json.loads(state.state_path.read_text())["best"]["epoch"] == 2
    RunState(tmp_path).load()
    probe = _tiny_model(3)
    probe.load_weights(state.best_weights_path)
    for w0, w1 in zip(probe.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(w0, w1)  # the best epoch state.json names
    assert sorted(p.name for p in state.checkpoint_dir.iterdir()) == [
        "best.weights.h5", "epoch_0002.keras", "state.json"]  # epoch 1's checkpoint dropped
