"""tf.distribute: MirroredStrategy over two logical CPUs, and two MultiWorkerMirroredStrategy
workers on 127.0.0.1, each in fresh subprocesses (device setup must precede TF start-up)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

#: Runs train() in a fresh interpreter; argv[1] is a JSON dict of settings.
WORKER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import tensorflow as tf

    args = json.loads(sys.argv[1])
    if args["logical_cpus"] > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args["logical_cpus"])
    from kvlrp.training import train

    result = train(args["shards"], args["out"], strategy=args["strategy"], clip_len=4, size=16,
                   epochs=2, steps_per_epoch=2, batch_size=4, seed=0, progress=False,
                   restore_best=False,  # compare the weights every worker trained to
                   widths=(4, 8), dense_units=8, batch_norm=True)
    weights = [v.value for v in result.model.weights]  # incl. BatchNorm moving statistics
    replicas_agree = all(
        np.array_equal(c.numpy(), w.values[0].numpy()) for w in weights
        for c in getattr(w, "values", [w]))
    np.savez(args["weights"], *[w.numpy() for w in weights])
    print("RESULT " + json.dumps({"replicas": result.info.extra["replicas"],
                                  "replicas_agree": bool(replicas_agree),
                                  "copies": min(len(getattr(w, "values", [w])) for w in weights),
                                  "epochs": result.history["epoch"].tolist()}))
    """
)
TIMEOUT = 150


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout[-2000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_mirrored_strategy_on_two_logical_cpus(synthetic_shards, tmp_path):
    args = {"shards": str(synthetic_shards), "out": str(tmp_path / "m"), "strategy": "mirrored",
            "logical_cpus": 2, "weights": str(tmp_path / "w.npz")}
    proc = subprocess.run([sys.executable, "-c", WORKER, json.dumps(args)], env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = _result(proc.stdout)
    assert result["replicas"] == 2
    assert result["copies"] == 2  # every variable is mirrored on both devices ...
    assert result["replicas_agree"]  # ... and both copies (BatchNorm statistics too) agree
    assert result["epochs"] == [1, 2]
    assert (tmp_path / "m" / "model.keras").is_file()
    history = pd.read_csv(tmp_path / "m" / "history.csv")
    assert np.isfinite(history[["loss", "val_loss"]].to_numpy()).all()


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_together_to_identical_weights(synthetic_shards, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    procs = []
    for index in range(2):
        args = {"shards": str(synthetic_shards), "out": str(tmp_path / "model"),
                "strategy": "multiworker", "logical_cpus": 1,
                "weights": str(tmp_path / f"w{index}.npz")}
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(args)], env=_env(TF_CONFIG=tf_config),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=TIMEOUT))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    results = [_result(out) for out, _ in outputs]
    assert [r["replicas"] for r in results] == [2, 2]  # one replica per worker, in sync
    w0, w1 = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    assert len(w0.files) == len(w1.files) > 0
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])
    # only the chief (worker 0) wrote the model folder
    assert (tmp_path / "model" / "model.keras").is_file()
    assert list(pd.read_csv(tmp_path / "model" / "history.csv")["epoch"]) == [1, 2]


def test_multiworker_without_tf_config_is_a_clear_error(monkeypatch):
    from kvlrp.training import resolve_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        resolve_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid"):
        resolve_strategy("multiworker")
    with pytest.raises(ValueError, match="unknown strategy 'tpu'"):
        resolve_strategy("tpu")
