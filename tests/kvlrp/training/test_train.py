"""train(): real training through the tf.data pipeline on the shared synthetic shards."""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pandas as pd
import pytest

from kvlrp.models import load_model
from kvlrp.training import TrainingSetupError, evaluate_clips, train

#: A tiny c3d_small: 4-frame 16x16 clips, two narrow blocks (trains in seconds on a CPU).
TINY = {"clip_len": 4, "size": 16, "batch_size": 4, "widths": (4, 8), "dense_units": 16,
        "progress": False}
SCORES = ["loss", "accuracy", "val_loss", "val_clip_accuracy", "val_video_accuracy"]


def _train_clip_loss(model, shards) -> float:
    from kvlrp.data.clips.pipeline import eval_dataset
    from kvlrp.data.clips.spec import ClipSpec

    spec = ClipSpec(clip_len=4, step=1, size=16)
    return evaluate_clips(model, eval_dataset(shards, spec, split="train", n_clips=4))["loss"]


def test_loss_falls_and_saved_model_reloads_identically(synthetic_shards, tmp_path):
    # no dropout, so that 36 steps measurably fit the 8 training videos
    settings = {**TINY, "dense_units": 32, "dropout": 0.0, "seed": 3, "learning_rate": 1e-2}
    result = train(synthetic_shards, tmp_path / "m", epochs=1, steps_per_epoch=1, **settings)
    before = _train_clip_loss(result.model, synthetic_shards)
    result = train(synthetic_shards, tmp_path / "m", epochs=6, steps_per_epoch=6, resume=False,
                   restore_best=False, **settings)
    after = _train_clip_loss(result.model, synthetic_shards)
    assert after < before - 0.2, (before, after)
    assert list(result.history["epoch"]) == [1, 2, 3, 4, 5, 6]
    assert set(SCORES) <= set(result.history.columns)
    assert np.isfinite(result.history[SCORES].to_numpy()).all()
    assert result.info.extra["weights_from_epoch"] == 6
    # the saved folder reloads to the same predictions, with the classes and clip settings
    model, info = load_model(tmp_path / "m")
    x = np.random.default_rng(0).uniform(-1, 1, (3, 4, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), result.model.predict(x, verbose=0))
    assert info.classes == ["drift_down", "drift_sideways", "drift_up", "still"]
    assert (info.clip_len, info.step, info.size, info.seed) == (4, 1, 16, 3)
    assert info.architecture == "c3d_small" and info.model_kwargs["widths"] == [4, 8]
    assert info.clip_spec().clip_len == 4
    on_disk = pd.read_csv(tmp_path / "m" / "history.csv")
    pd.testing.assert_frame_equal(on_disk, result.history, check_dtype=False)


class _InterruptAfter(keras.callbacks.Callback):
    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt


def test_resume_after_interruption_continues_at_next_epoch(synthetic_shards, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(synthetic_shards, out, epochs=4, steps_per_epoch=2, seed=5,
              callbacks=[_InterruptAfter(2)], **TINY)
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1, 2]
    assert not (out / "model.keras").exists()  # the final model is written only at the end
    seen = []

    class _Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch + 1)

    result = train(synthetic_shards, out, epochs=4, steps_per_epoch=2, seed=5,
                   callbacks=[_Record()], **TINY)
    assert result.initial_epoch == 2
    assert seen == [3, 4]
    assert list(result.history["epoch"]) == [1, 2, 3, 4]
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1, 2, 3, 4]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "best.weights.h5", "epoch_0004.keras", "state.json"]
    # the optimizer state came back with the checkpoint: 4 epochs x 2 steps
    last = keras.saving.load_model(out / "checkpoints" / "epoch_0004.keras")
    assert int(last.optimizer.iterations.numpy()) == 8
    # the returned and saved weights are those of the lowest validation loss (restore_best)
    best = int(result.history.loc[result.history["val_loss"].idxmin(), "epoch"])
    assert result.info.extra["weights_from_epoch"] == result.info.extra["best_epoch"] == best
    saved, _ = load_model(out)
    for w0, w1 in zip(saved.get_weights(), result.model.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    # other settings in the same folder are refused rather than mixed into the run
    with pytest.raises(TrainingSetupError, match="other settings.*step: 1 -> 2"):
        train(synthetic_shards, out, epochs=5, steps_per_epoch=2, seed=5, step=2,
              **{k: v for k, v in TINY.items()})


def test_same_seed_gives_same_history(synthetic_shards, tmp_path):
    from tensorflow.python.framework import config as tf_config

    determinism_before = tf_config.is_op_determinism_enabled()
    runs = [
        train(synthetic_shards, tmp_path / name, epochs=2, steps_per_epoch=2, seed=11, **TINY)
        for name in ("a", "b")
    ]
    pd.testing.assert_frame_equal(runs[0].history[SCORES], runs[1].history[SCORES])
    for w0, w1 in zip(runs[0].model.get_weights(), runs[1].model.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    other = train(synthetic_shards, tmp_path / "c", epochs=1, steps_per_epoch=1, seed=12, **TINY)
    assert not np.array_equal(other.model.get_weights()[0], runs[0].model.get_weights()[0])
    # op determinism was on for training only: the process-wide switch is back as it was
    assert tf_config.is_op_determinism_enabled() == determinism_before


def _copy_with_index(shards, dest, edit) -> object:
    shutil.copytree(shards, dest)
    index = pd.read_csv(dest / "index.csv")
    edit(index).to_csv(dest / "index.csv", index=False)
    return dest


def test_clear_errors_before_training(synthetic_shards, tmp_path):
    one_class = _copy_with_index(
        synthetic_shards, tmp_path / "one",
        lambda t: t[(t["split"] != "train") | (t["label"] == "still")])
    with pytest.raises(TrainingSetupError, match=r"only one class \(\['still'\]\)"):
        train(one_class, tmp_path / "m1", epochs=1, **TINY)
    no_train_drift = _copy_with_index(
        synthetic_shards, tmp_path / "val",
        lambda t: t[(t["split"] != "train") | (t["label"] != "drift_up")])
    with pytest.raises(TrainingSetupError, match=r"validation classes \['drift_up'\]"):
        train(no_train_drift, tmp_path / "m2", epochs=1, **TINY)
    longest = int(pd.read_csv(synthetic_shards / "index.csv").query("split == 'train'")
                  ["n_frames"].max())
    with pytest.raises(TrainingSetupError, match=f"longest has {longest} frames"):
        train(synthetic_shards, tmp_path / "m3", epochs=1, **{**TINY, "clip_len": 16}, step=4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingSetupError, match="no shards in .*kvlrp prepare"):
        train(tmp_path / "empty", tmp_path / "m4", epochs=1, **TINY)
    with pytest.raises(TrainingSetupError, match="frames=8 contradicts"):
        train(synthetic_shards, tmp_path / "m5", epochs=1, frames=8, **TINY)
    # nothing was written for any refused run
    assert not any((tmp_path / f"m{i}").exists() for i in range(1, 6))


def test_cli_train(synthetic_shards, tmp_path, capsys):
    from kvlrp.cli import main

    out = tmp_path / "cli_model"
    code = main(["train", "--data", str(synthetic_shards), "--out", str(out), "--clip-len", "6",
                 "--size", "16", "--epochs", "1", "--batch-size", "4", "--steps-per-epoch", "2",
                 "--widths", "4", "8", "--dense-units", "8", "--temporal-padding", "valid",
                 "--seed", "2", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out / "model.keras") in printed and "val_video_accuracy" in printed
    # issue 10: one line with the training throughput (its value is not checked: timing)
    throughput = [line for line in printed.splitlines() if line.startswith("training throughput")]
    assert len(throughput) == 1 and " clips/s over 1 epoch(s) on 1 replica(s)" in throughput[0]
    assert float(throughput[0].split(":")[1].split()[0]) > 0
    model, info = load_model(out)
    assert info.model_kwargs["temporal_padding"] == "valid"
    assert model.get_layer("conv1").padding == "valid"
    # bad input: one line naming the problem, exit code 2, no traceback
    code = main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and "Traceback" not in err
    code = main(["train", "--data", str(synthetic_shards), "--out", str(tmp_path / "x"),
                 "--clip-len", "6", "--size", "4"])
    assert code == 2 and "size=4 is too small" in capsys.readouterr().err


def test_no_validation_split_warns_and_keeps_last_epoch(synthetic_shards, tmp_path):
    no_val = _copy_with_index(synthetic_shards, tmp_path / "noval",
                              lambda t: t[t["split"] != "val"])
    with pytest.warns(UserWarning, match="no videos in the 'val' split"):
        result = train(no_val, tmp_path / "m", epochs=2, steps_per_epoch=1, seed=0, **TINY)
    assert "val_loss" not in result.history.columns
    assert result.info.extra["weights_from_epoch"] == 2 and result.info.extra["best_epoch"] is None
