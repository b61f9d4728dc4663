"""The CLI's choice of TensorFlow CPU kernels (oneDNN on x86 unless the user chose) and
``kvlrp info``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from repo_paths import REPO_ROOT

from kvlrp.infra.tfsetup import ONEDNN_VAR, cpu_model, is_x86, onednn_setting, prefer_onednn

ROOT = REPO_ROOT
NOTE = "using TensorFlow's oneDNN CPU kernels"


def _run(args: list[str], onednn: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != ONEDNN_VAR}
    if onednn is not None:
        env[ONEDNN_VAR] = onednn
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["CUDA_VISIBLE_DEVICES"] = "-1"
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)


def _info(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def test_prefer_onednn_sets_only_an_unset_variable_on_x86():
    env: dict[str, str] = {}
    message = prefer_onednn(env, machine="x86_64")
    assert env[ONEDNN_VAR] == "1" and NOTE in message
    for user_choice in ("0", "1", ""):
        env = {ONEDNN_VAR: user_choice}
        assert prefer_onednn(env, machine="x86_64") is None
        assert env == {ONEDNN_VAR: user_choice}
    for machine in ("aarch64", "arm64", "ppc64le"):
        env = {}
        assert prefer_onednn(env, machine=machine) is None and env == {}
    assert is_x86("AMD64") and not is_x86("aarch64")
    assert onednn_setting({}) == "unset"
    assert onednn_setting({ONEDNN_VAR: "0"}) == "off"
    assert onednn_setting({ONEDNN_VAR: "1"}) == "on"


def test_cli_modules_do_not_import_tensorflow():
    code = ("import sys, kvlrp.cli; kvlrp.cli.build_parser(); "
            "print('tensorflow' in sys.modules)")
    proc = _run(["-c", code], onednn=None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


@pytest.mark.skipif(not is_x86(), reason="TensorFlow's oneDNN kernels exist on x86 only")
def test_cli_turns_onednn_on_when_unset_and_says_so():
    proc = _run(["-m", "kvlrp", "info"], onednn=None)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if NOTE in line]
    assert len(notes) == 1, proc.stderr
    info = _info(proc.stdout)
    assert info["onednn"].startswith("on "), info
    assert "set by kvlrp" in info["onednn"]


def test_cli_keeps_the_users_choice_and_info_reports_it():
    proc = _run(["-m", "kvlrp", "info"], onednn="0")
    assert proc.returncode == 0, proc.stderr
    assert NOTE not in proc.stderr
    info = _info(proc.stdout)
    assert info["onednn"].startswith("off "), info
    assert "set by the user" in info["onednn"]
    import keras
    import tensorflow as tf

    assert info["tensorflow"] == tf.__version__
    assert info["keras"] == keras.__version__
    assert info["cpu"] == cpu_model() and info["cpu"]
    assert "CPU" in info["devices"]
    assert info["threads"].startswith("intra-op")
    assert info["cpu cores"].split()[0] == str(os.cpu_count())


def test_too_late_once_tensorflow_is_loaded(monkeypatch):
    import tensorflow  # noqa: F401

    monkeypatch.delenv(ONEDNN_VAR, raising=False)
    assert prefer_onednn(machine="x86_64") is None
    assert ONEDNN_VAR not in os.environ
