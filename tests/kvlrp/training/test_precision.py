"""``kvlrp train --precision``: which precision a machine gets, bfloat16 training through the
pipeline (the saved model computes in float32, the policy does not leak, kvlrp.json records
it), float16 refused on a CPU in one line, resume only with the same precision, and loss
scaling in the training loop."""

from __future__ import annotations

import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from cli_helpers import main, one_line

import kvlrp.training.precision as precision_module
from kvlrp.models import load_model
from kvlrp.models.precision import model_precision, precision_scope
from kvlrp.training import TrainConfig, TrainingSetupError, train
from kvlrp.training.loop import run_epochs
from kvlrp.training.precision import resolve_precision

#: A tiny c3d_small run on the synthetic shards (kvlrp train options).
TINY_ARGS = ["--model", "c3d_small", "--clip-len", "4", "--size", "16", "--batch-size", "4",
             "--steps-per-epoch", "2", "--widths", "4", "8", "--dense-units", "8",
             "--val-clips", "1", "--no-progress"]
TINY = {"model": "c3d_small", "clip_len": 4, "size": 16, "batch_size": 4, "steps_per_epoch": 2,
        "widths": (4, 8), "dense_units": 8, "val_clips": 1, "progress": False}


def _native_bf16() -> bool:
    return resolve_precision("bfloat16").used == "bfloat16"


def test_precision_of_this_machine(monkeypatch):
    assert resolve_precision("float32").used == "float32"
    monkeypatch.setattr(precision_module, "_gpu_capabilities", lambda: [])
    with pytest.raises(TrainingSetupError, match="float16 needs a GPU and none is visible"):
        resolve_precision("float16")
    monkeypatch.setattr("kvlrp.infra.tfsetup.cpu_flags", lambda: frozenset({"avx2", "fma"}))
    emulated = resolve_precision("bfloat16")
    assert (emulated.used, emulated.policy) == ("float32", "float32")
    assert "no bfloat16 instructions" in emulated.note and "\n" not in emulated.note
    monkeypatch.setattr("kvlrp.infra.tfsetup.cpu_flags", lambda: frozenset({"avx512_bf16"}))
    monkeypatch.setattr("kvlrp.infra.tfsetup.onednn_enabled", lambda: True)
    native = resolve_precision("bfloat16")
    assert (native.used, native.policy, native.note) == ("bfloat16", "mixed_bfloat16", None)
    monkeypatch.setattr("kvlrp.infra.tfsetup.onednn_enabled", lambda: False)
    assert "oneDNN CPU kernels are off" in resolve_precision("bfloat16").note
    monkeypatch.setattr(precision_module, "_gpu_capabilities", lambda: [(7, 5)])
    assert "compute capability 7.5 < 8.0" in resolve_precision("bfloat16").note
    assert resolve_precision("float16").used == "float16"
    with pytest.raises(TrainingSetupError, match="unknown precision 'half'"):
        TrainConfig("shards", "out", precision="half")


def test_float16_on_a_cpu_is_refused_in_one_line(synthetic_shards, tmp_path, capsys):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible: float16 is allowed")
    out = tmp_path / "m"
    code = main(["train", "--data", str(synthetic_shards), "--out", str(out), *TINY_ARGS,
                 "--epochs", "1", "--precision", "float16"])
    assert code == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("kvlrp train: precision float16 needs a GPU")
    assert not out.exists()  # refused before anything was written


def test_bfloat16_trains_a_few_steps_and_saves_a_float32_model(synthetic_shards, tmp_path,
                                                              capsys):
    out = tmp_path / "m"
    code = main(["train", "--data", str(synthetic_shards), "--out", str(out), *TINY_ARGS,
                 "--epochs", "2", "--precision", "bfloat16"])
    assert code == 0
    stdout = capsys.readouterr().out
    used = "bfloat16" if _native_bf16() else "float32"
    assert f"precision: {used}" in stdout
    assert keras.config.dtype_policy().name == "float32"  # the policy did not leak
    stored = json.loads((out / "kvlrp.json").read_text())
    assert stored["extra"]["precision"] == used
    assert stored["extra"]["config"]["precision"] == "bfloat16"
    history = stored["extra"]["last_epoch"]
    assert history["epoch"] == 2 and np.isfinite(history["loss"])
    model, _ = load_model(out)
    plain = keras.saving.load_model(out / "model.keras")
    for loaded in (model, plain):  # float32 with kvlrp and with Keras alone
        assert model_precision(loaded) == "float32"
        assert {str(layer.compute_dtype) for layer in loaded.layers} == {"float32"}
    checkpoint = keras.saving.load_model(next((out / "checkpoints").glob("epoch*.keras")))
    assert model_precision(checkpoint) == used  # the checkpoint resumes in mixed precision
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the optimizer's state travels with the weights
        compiled, _ = load_model(out, compile=True)
    assert int(compiled.optimizer.iterations.numpy()) == 4  # 2 epochs of 2 steps
    for a, b in zip(compiled.optimizer.variables[2:], checkpoint.optimizer.variables[2:]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_resume_needs_the_same_precision(synthetic_shards, tmp_path):
    out = tmp_path / "m"
    train(synthetic_shards, out, epochs=1, **TINY)
    with pytest.raises(TrainingSetupError, match="precision: 'float32' -> 'bfloat16'"):
        train(synthetic_shards, out, epochs=2, precision="bfloat16", **TINY)
    state_path = out / "checkpoints" / "state.json"
    state = json.loads(state_path.read_text())
    del state["settings"]["precision"]  # a run started before the option existed: float32
    state_path.write_text(json.dumps(state))
    result = train(synthetic_shards, out, epochs=2, **TINY)
    assert result.initial_epoch == 1 and list(result.history["epoch"]) == [1, 2]


def test_loss_scaling_under_mixed_float16_gives_unscaled_updates():
    """The loop scales the loss for a ``LossScaleOptimizer`` (Keras wraps the optimizer under
    ``mixed_float16``): one SGD step moves the weights as in float32, not 2**15 times less."""
    x = np.random.default_rng(0).uniform(-1, 1, (8, 6)).astype("float32")
    y = np.arange(8) % 3
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat()
    updates = {}
    for precision in ("float32", "float16"):
        keras.utils.set_random_seed(0)
        with precision_scope(precision):
            model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"),
                                      keras.layers.Dense(3, activation="softmax",
                                                         dtype="float32")])
        model.compile(optimizer=keras.optimizers.SGD(0.5),
                      loss="sparse_categorical_crossentropy")
        before = model.get_weights()[0].copy()
        run_epochs(model, data, tf.distribute.get_strategy(), epochs=1, initial_epoch=0,
                   steps_per_epoch=1, global_batch_size=8, verbose=0)
        updates[precision] = model.get_weights()[0] - before
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.abs(updates["float32"]).max() > 1e-3
    np.testing.assert_allclose(updates["float16"], updates["float32"], rtol=0.05, atol=1e-3)
