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


def _quiet_env() -> dict[str, str]:
    """The environment of a user who set nothing (no log level, GPUs not hidden)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES")}
    env.update(PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    return env


def test_import_analyzers_is_quiet_and_keeps_a_users_log_level():
    """As in a notebook: ``import analyzers`` shows none of TensorFlow's start-up notes."""
    code = "import os, analyzers; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_quiet_env(), timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2" and proc.stderr == ""
    env = {**_quiet_env(), "TF_CPP_MIN_LOG_LEVEL": "0"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0" and proc.stderr == ""


def test_info_shows_no_start_up_notes():
    proc = subprocess.run([sys.executable, "-m", "kvlrp", "info"], capture_output=True,
                          text=True, env=_quiet_env(), timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "tensorflow:" in proc.stdout
    notices = ("kvlrp: using TensorFlow's oneDNN",)
    assert [ln for ln in proc.stderr.splitlines() if not ln.startswith(notices)] == []


def test_start_up_filter_keeps_other_lines(capfd):
    from analyzers.compat import filtered_stderr

    with filtered_stderr():
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on.\nreal trouble\n")
    assert capfd.readouterr().err == "real trouble\n"


def test_progress_bars_only_on_a_terminal(tmp_path):
    """synth and prepare with stderr in a log file: no bars; the helper on a terminal: a bar."""
    import fcntl
    import pty
    import struct
    import termios

    log = tmp_path / "log.txt"
    env = {**_quiet_env(), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1"}
    with log.open("w") as stderr:
        for argv in (["synth", "--out", str(tmp_path / "d"), "--videos-per-class", "1",
                      "--size", "16", "--min-frames", "8", "--max-frames", "8"],
                     ["prepare", str(tmp_path / "d" / "manifest.csv"), "--out",
                      str(tmp_path / "s"), "--workers", "0"]):
            code = subprocess.call([sys.executable, "-m", "kvlrp", *argv], env=env,
                                   stdout=subprocess.DEVNULL, stderr=stderr, cwd=REPO,
                                   timeout=300)
            assert code == 0, log.read_text()
    assert "video/s" not in log.read_text() and "\r" not in log.read_text(), log.read_text()
    main_fd, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # 80 columns
    code = ("from kvlrp.infra.progress import progress_bar\n"
            "for _ in progress_bar(range(3), desc='counting', unit='thing'): pass")
    proc = subprocess.run([sys.executable, "-c", code], stderr=terminal, env=env, cwd=REPO,
                          timeout=60)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main_fd)
    shown = b"".join(chunks).decode()
    assert proc.returncode == 0 and "counting" in shown and "thing" in shown
