"""``kvlrp train --precision``: which precision a machine gets (also in a fresh process with
TensorFlow's oneDNN kernels off and on), bfloat16 training through the pipeline (the saved
model computes in float32, the policy does not leak, kvlrp.json records it, the trained model
explains in float32), float16 refused on a CPU in one line, resume only with the same
precision, and loss scaling in the training loop."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from cli_helpers import main, one_line
from repo_paths import REPO_ROOT

import kvlrp.training.precision as precision_module
from kvlrp.analysis.explain.run import run_explain
from kvlrp.infra.tfsetup import ONEDNN_VAR, cpu_flags
from kvlrp.models import build_model, load_model
from kvlrp.models.precision import model_precision, precision_scope
from kvlrp.training import TrainConfig, TrainingSetupError, train
from kvlrp.training.loop import run_epochs
from kvlrp.training.precision import BF16_CPU_FLAGS, Precision, resolve_precision

#: The module of ``train`` (``kvlrp.training.train`` is the function on the package).
train_module = importlib.import_module("kvlrp.training.train")
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



def _fresh_process(args: list[str], onednn: str) -> subprocess.CompletedProcess:
    """``python ARGS`` from the repository root in a fresh process (TensorFlow loads anew)
    with ``TF_ENABLE_ONEDNN_OPTS=onednn`` and no GPU."""
    env = {**os.environ, ONEDNN_VAR: onednn, "CUDA_VISIBLE_DEVICES": "-1",
           "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


#: The one line ``kvlrp train`` logs when bfloat16 falls back to float32 starts so.
FALLBACK = "precision bfloat16 requested, training in float32: "


@pytest.mark.parametrize("onednn", ["0", "1"])
def test_bfloat16_needs_onednn_and_bf16_instructions_in_a_fresh_process(onednn):
    """The kernel set is fixed when TensorFlow loads, so each setting gets its own process:
    with oneDNN off bfloat16 falls back to float32 saying so in one line; with it on it is
    used where the CPU has bfloat16 instructions (else the line names the CPU)."""
    code = ("import json; from kvlrp.infra.tfsetup import onednn_enabled; "
            "from kvlrp.training.precision import resolve_precision; "
            "p = resolve_precision('bfloat16'); "
            "print(json.dumps([onednn_enabled(), p.used, p.note]))")
    done = _fresh_process(["-c", code], onednn)
    assert done.returncode == 0, done.stderr
    enabled, used, note = json.loads(done.stdout.strip().splitlines()[-1])
    if onednn == "0":
        assert enabled is False
    has_bf16 = bool(BF16_CPU_FLAGS & cpu_flags())
    if has_bf16 and enabled:
        assert (used, note) == ("bfloat16", None)
        return
    assert used == "float32"
    assert note.startswith(FALLBACK) and "\n" not in note
    if not has_bf16:
        assert "has no bfloat16 instructions" in note
    else:
        assert f"oneDNN CPU kernels are off ({ONEDNN_VAR}=0)" in note


def test_cli_trains_bfloat16_in_float32_without_onednn(synthetic_shards, tmp_path):
    """``kvlrp train --precision bfloat16`` with oneDNN off: one line why on stderr, training
    in float32, ``kvlrp.json`` records both the request and what ran (and the kernel set)."""
    out = tmp_path / "m"
    done = _fresh_process(["-m", "kvlrp", "train", "--data", str(synthetic_shards), "--out",
                           str(out), *TINY_ARGS, "--epochs", "1", "--precision", "bfloat16"],
                          onednn="0")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if FALLBACK in line]
    assert len(lines) == 1 and lines[0].startswith(f"kvlrp: {FALLBACK}"), done.stderr
    assert "Traceback" not in done.stderr
    assert "precision: float32" in done.stdout.splitlines()
    extra = json.loads((out / "kvlrp.json").read_text())["extra"]
    assert (extra["precision"], extra["config"]["precision"]) == ("float32", "bfloat16")
    assert extra["provenance"]["kernel_set"] == "oneDNN off"


def test_bfloat16_training_explains_in_float32(synthetic_shards, tmp_path, monkeypatch):
    """A tiny mixed_bfloat16 training through the tf.data pipeline (forced, whatever the
    kernel set: the Eigen kernels compute bfloat16 too, only slower), then explain: the mixed
    checkpoint runs through its float32 copy and gives the relevance of the same weights in a
    model built in float32 (same float32 operations: equal to float32 round-off)."""
    monkeypatch.setattr(train_module, "resolve_precision",
                        lambda requested: Precision(requested, "bfloat16"))
    result = train(synthetic_shards, tmp_path / "m", epochs=1, precision="bfloat16", **TINY)
    assert result.info.extra["precision"] == "bfloat16"
    assert np.isfinite(result.history["loss"]).all()
    assert model_precision(result.model) == "float32"
    assert keras.config.dtype_policy().name == "float32"
    mixed = keras.saving.load_model(next((tmp_path / "m" / "checkpoints").glob("epoch*.keras")))
    assert model_precision(mixed) == "bfloat16"
    for a, b in zip(mixed.get_weights(), result.model.get_weights()):  # one epoch: same weights
        np.testing.assert_array_equal(a, b)
    reference = build_model("c3d_small", 4, frames=4, size=16, widths=(4, 8), dense_units=8)
    reference.set_weights(mixed.get_weights())
    options = {"steps": [1, 2], "clips_per_video": 2, "prior_seeds": 0, "n_heatmaps": 0,
               "flip_videos": 0, "n_boot": 20, "progress": False}
    tables = {}
    for name, model in (("mixed", mixed), ("reference", reference)):
        summary = run_explain(model, result.info, synthetic_shards, tmp_path / name, **options)
        assert summary["provenance"]["kernel_set"].startswith("oneDNN")
        tables[name] = pd.read_csv(tmp_path / name / "frame_relevance.csv")
    got, want = tables["mixed"], tables["reference"]
    assert len(got) == len(want) > 0 and np.isfinite(got["relevance"]).all()
    assert (got["predicted"] == want["predicted"]).all()
    scale = np.abs(want["relevance"]).max()
    np.testing.assert_allclose(got["relevance"], want["relevance"], rtol=1e-5,
                               atol=1e-6 * scale)
    np.testing.assert_allclose(got.groupby(["video_id", "clip_index", "step"])["share"].sum(),
                               1.0, atol=1e-5)

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
