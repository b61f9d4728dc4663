"""Quiet, honest output: a command prints its own lines and one device line, none of
TensorFlow's start-up notes, and explaining with several analyzers triggers no retracing."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
NOISE = ("absl::InitializeLog", "oneDNN custom operations", "cuda", "cuInit",
         "cpu_feature_guard", "retracing", "Traceback")


def test_analyzers_of_one_class_do_not_warn_about_retracing(caplog):
    from own_models import own_model

    import analyzers

    model = own_model(frames=4, size=8)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 4, 8, 8, 3)).astype(np.float32)
    made = []
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        # like explain: the model and its prior copies; TF warns at 5 traces in 5 calls
        for _ in range(5):
            a = analyzers.create_analyzer("deep_taylor.bounded", model, low=-1.0, high=1.0)
            a.analyze(x, neuron_selection=0)
            a.analyze(x[::-1].copy(), neuron_selection=np.array([1, 2]))  # same signature
            made.append(a)
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    assert [a._compiled.experimental_get_tracing_count() for a in made] == [1] * 5


def test_a_command_prints_its_own_output_and_one_device_line(synthetic_shards, tmp_path):
    """In a fresh process (TensorFlow's start-up notes come at import, below Python)."""
    from own_models import own_model

    own_model().save(tmp_path / "my.keras")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-m", "kvlrp", "strides", "--model", str(tmp_path / "my.keras"),
         "--normalization", "unit", "--data", str(synthetic_shards), "--out",
         str(tmp_path / "s"), "--clips-per-video", "1", "--steps", "1", "--no-control"],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("device: ") and sum(x.startswith("device:") for x in lines) == 1
    assert "best step" in proc.stdout
    for word in NOISE:
        assert word not in proc.stderr and word not in proc.stdout, (word, proc.stderr)
    notices = ("kvlrp: using TensorFlow's oneDNN",)  # the one-line kernel notice (issue 10)
    rest = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith(notices)]
    assert rest == []  # no progress bar either: stderr is not a terminal
