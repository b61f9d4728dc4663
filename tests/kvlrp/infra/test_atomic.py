"""Atomic report writes: complete new file or the old one, with ordinary permissions."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest

from kvlrp.infra.atomic import atomic_write, write_csv, write_json


def test_csv_round_trip_and_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_csv(pd.DataFrame({"step": [1, 2], "acc": [0.5, 0.75]}), tmp_path / "t.csv")
    finally:
        os.umask(old)
    assert pd.read_csv(path)["acc"].tolist() == [0.5, 0.75]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "report.csv"
    path.write_text("old\n")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]


def test_json_converts_numpy_values(tmp_path):
    path = write_json({"best": np.int64(2), "shares": np.array([0.25, 0.75])}, tmp_path / "s.json")
    assert json.loads(path.read_text()) == {"best": 2, "shares": [0.25, 0.75]}
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json({"bad": object()}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_suffix_names_the_temporary_file_for_writers_that_check_it(tmp_path):
    import keras

    seen = []

    def write(tmp):
        seen.append(tmp)
        assert tmp.parent == tmp_path and tmp.is_file()  # beside the destination, empty
        tmp.write_text("new")

    path = atomic_write(tmp_path / "model.keras", write, suffix=".keras")
    assert seen[0].name.endswith(".tmp.keras") and seen[0].name != "model.keras"
    assert path.read_text() == "new" and not seen[0].exists()
    # Keras refuses a .weights.h5 save to another name: the suffix lets it write in place
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    weights = atomic_write(tmp_path / "best.weights.h5", model.save_weights,
                           suffix=".weights.h5")
    model.load_weights(weights)
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        atomic_write(tmp_path / "other.weights.h5", model.save_weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.weights.h5", "model.keras"]


def test_a_sigkill_mid_write_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    """A SIGKILL runs no clean-up, so the temporary file stays (as a GIF's did in heatmaps/);
    remove_stray_temporaries, called where a run starts, deletes it and nothing else."""
    import signal
    import subprocess
    import sys

    from repo_paths import REPO_ROOT

    from kvlrp.infra.atomic import TEMPORARY, remove_stray_temporaries

    folder = tmp_path / "heatmaps"
    folder.mkdir()
    (folder / "step1_v_clip0.png").write_text("a finished file")
    (folder / ".hidden_note").write_text("not ours")
    code = ("import time\nfrom kvlrp.infra.atomic import atomic_write\n"
            "def write(tmp):\n    tmp.write_bytes(b'GIF89a half')\n    print('writing', "
            "flush=True)\n    time.sleep(600)\n"
            f"atomic_write({str(folder / 'step1_v_clip0.gif')!r}, write)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    stray = [p for p in folder.iterdir() if p.name.startswith(".step1_v_clip0.gif.")]
    assert len(stray) == 1 and TEMPORARY.match(stray[0].name), list(folder.iterdir())
    assert remove_stray_temporaries(tmp_path) == stray
    assert sorted(p.name for p in folder.iterdir()) == [".hidden_note", "step1_v_clip0.png"]
    assert remove_stray_temporaries(tmp_path / "missing") == []
