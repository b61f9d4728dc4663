"""explain / strides split over workers (``--num-workers N --worker-index I``) and merged with
``kvlrp merge``: the same tables as one run on one machine; batches split over two logical CPU
devices (``--strategy mirrored``)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from repo_paths import REPO_ROOT

from kvlrp.analysis.explain.run import run_explain
from kvlrp.analysis.runs.merge import merge_runs
from kvlrp.analysis.runs.partition import Worker, assign_videos, resolve_worker
from kvlrp.analysis.strides.run import run_strides
from kvlrp.cli import main as kvlrp_main

REPO = REPO_ROOT


def _index(n_videos: int, per_shard: int) -> pd.DataFrame:
    return pd.DataFrame({"video_id": [f"v{i:02d}" for i in range(n_videos)],
                         "shard": [f"test-{i // per_shard:05d}.tfrecord"
                                   for i in range(n_videos)]})


@pytest.mark.parametrize("per_shard", [1, 3, 100])
def test_assign_videos_is_a_partition(per_shard):
    index = _index(10, per_shard)
    parts = [assign_videos(index, Worker(3, i), pinned={"v07", "v08"}) for i in range(3)]
    flat = [v for p in parts for v in p]
    assert sorted(flat) == list(index["video_id"])  # every video exactly once
    assert {"v07", "v08"} <= set(parts[0])
    for p in parts:
        assert p == sorted(p)  # index order kept
    if per_shard == 3:  # >= 3 shards: whole shards per worker (pinned videos aside)
        shard_of = dict(zip(index["video_id"], index["shard"], strict=True))
        rest = [{shard_of[v] for v in p if v not in {"v07", "v08"}} for p in parts]
        assert not (rest[0] & rest[1]) and not (rest[1] & rest[2])


def test_resolve_worker_from_options_and_tf_config():
    assert resolve_worker(3, 2) == Worker(3, 2)
    assert resolve_worker(environ={}) == Worker(1, 0)
    cfg = {"cluster": {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]},
           "task": {"type": "worker", "index": 1}}
    assert resolve_worker(environ={"TF_CONFIG": json.dumps(cfg)}) == Worker(3, 2)
    cfg["task"] = {"type": "chief", "index": 0}
    assert resolve_worker(environ={"TF_CONFIG": json.dumps(cfg)}) == Worker(3, 0)
    with pytest.raises(ValueError, match="--worker-index must be in 0..1"):
        resolve_worker(2, 2)
    with pytest.raises(ValueError, match="together"):
        resolve_worker(2, None)
    with pytest.raises(ValueError, match="TF_CONFIG is not valid"):
        resolve_worker(environ={"TF_CONFIG": "{not json"})


def _csvs(folder: Path) -> dict[str, pd.DataFrame]:
    return {p.name: pd.read_csv(p, keep_default_na=False) for p in sorted(folder.glob("*.csv"))}


def _assert_same_tables(single: Path, merged: Path) -> None:
    a, b = _csvs(single), _csvs(merged)
    assert sorted(a) == sorted(b) and a
    for name in a:
        # Rows, keys and text columns equal; numbers to float32 rounding (a worker's batches
        # hold other clips than one run's, and kernels may round per batch).
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=False, rtol=1e-5,
                                      atol=1e-7, obj=name)


def _summary(folder: Path) -> dict:
    s = json.loads((folder / "summary.json").read_text())
    s.pop("files")
    s.pop("provenance")  # where and when each was made (tested in test_report_provenance.py)
    s["heatmaps"] = [Path(p).name for p in s.get("heatmaps", [])]
    return s


def test_explain_on_two_workers_merges_to_the_single_run(small_model, synthetic_shards,
                                                         tmp_path):
    model, info = small_model
    kw = dict(steps=[2, 1], split="test", clips_per_video=1, prior_seeds=1, n_heatmaps=1,
              flip_videos=2, n_boot=50, progress=False)
    run_explain(model, info, synthetic_shards, tmp_path / "single", **kw)
    done = []
    for i in range(2):
        out = run_explain(model, info, synthetic_shards, tmp_path / f"w{i}",
                          worker=Worker(2, i), **kw)
        assert out["kind"] == "explain-worker"
        assert not (tmp_path / f"w{i}" / "frame_relevance.csv").exists()
        done.append(set(json.loads((tmp_path / f"w{i}" / "worker.json").read_text())["videos"]))
    assert done[0] and done[1] and not done[0] & done[1]
    merge_runs([tmp_path / "w1", tmp_path / "w0"], tmp_path / "merged")
    _assert_same_tables(tmp_path / "single", tmp_path / "merged")
    assert _summary(tmp_path / "single").keys() == _summary(tmp_path / "merged").keys()
    a, b = _summary(tmp_path / "single"), _summary(tmp_path / "merged")
    assert a["n_clips"] == b["n_clips"] and a["heatmaps"] == b["heatmaps"]
    # throughput of the merged run: the workers' clips and analyzer times added up
    assert [(t["step"], t["n_clips"]) for t in b["throughput"]] == \
        [(t["step"], t["n_clips"]) for t in a["throughput"]]
    assert all(t["clips_per_second"] > 0 for t in b["throughput"])
    assert a["config"] == b["config"] and "worker" not in b["config"]
    np.testing.assert_allclose([x["border_score"] for x in a["border"]],
                               [x["border_score"] for x in b["border"]], rtol=1e-5)
    for name in a["heatmaps"]:
        assert (tmp_path / "merged" / "heatmaps" / name).is_file()


def test_strides_on_two_workers_merges_to_identical_csvs(small_model, synthetic_shards,
                                                         tmp_path):
    model, info = small_model
    kw = dict(steps=[1, 3], split="test", clips_per_video=2, n_boot=50, progress=False,
              select_on="val")
    run_strides(model, info, synthetic_shards, tmp_path / "single", **kw)
    for i in range(2):
        run_strides(model, info, synthetic_shards, tmp_path / f"w{i}", worker=Worker(2, i),
                    **kw)
    merge_runs([tmp_path / "w0", tmp_path / "w1"], tmp_path / "merged")
    names = sorted(p.name for p in (tmp_path / "single").glob("*.csv"))
    assert "stride_accuracy_val.csv" in names
    for name in names:  # each video's clips are batched alone: byte-identical
        assert (tmp_path / "single" / name).read_bytes() == \
            (tmp_path / "merged" / name).read_bytes(), name
    assert _summary(tmp_path / "single") == _summary(tmp_path / "merged")


def test_merge_refuses_an_incomplete_set_of_workers(small_model, synthetic_shards, tmp_path,
                                                    capsys):
    model, info = small_model
    run_strides(model, info, synthetic_shards, tmp_path / "w0", steps=[1], split="test",
                clips_per_video=1, n_boot=10, progress=False, control=False,
                worker=Worker(2, 0))
    code = kvlrp_main(["merge", str(tmp_path / "w0"), "--out", str(tmp_path / "m")])
    assert code == 2
    assert "missing worker index(es) [1]" in capsys.readouterr().err
    code = kvlrp_main(["merge", str(tmp_path), "--out", str(tmp_path / "m")])
    assert code == 2
    assert "worker.json not found" in capsys.readouterr().err


def test_mirrored_splits_batches_over_two_logical_cpus(synthetic_shards, tmp_path):
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np, pandas as pd, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras, analyzers
        from kvlrp.analysis.runs.devices import SplitAnalyzer, SplitModel, strategy_devices
        from kvlrp.analysis.strides.run import run_strides
        from kvlrp.models import ModelInfo, c3d_small
        keras.utils.set_random_seed(0)
        model = c3d_small(4, frames=6, size=16, widths=(4, 8), dense_units=8)
        info = ModelInfo(architecture="c3d_small", classes=["drift_down", "drift_sideways",
                         "drift_up", "still"], clip_len=6, step=1, size=16)
        devices = strategy_devices("mirrored")
        x = np.random.default_rng(0).uniform(-1, 1, (5, 6, 16, 16, 3)).astype("float32")
        split_model = SplitModel(model, devices)
        a = analyzers.create_analyzer("deep_taylor.bounded", model, low=-1.0, high=1.0)
        sel = np.array([0, 1, 2, 3, 0])
        r1 = a.analyze(x, neuron_selection=sel)
        r2 = SplitAnalyzer(a, devices).analyze(x, neuron_selection=sel)
        kw = dict(steps=[1, 2], split="test", clips_per_video=2, n_boot=20, progress=False,
                  control=False)
        run_strides(model, info, {str(synthetic_shards)!r}, {str(tmp_path / "one")!r}, **kw)
        run_strides(model, info, {str(synthetic_shards)!r}, {str(tmp_path / "two")!r},
                    devices=devices, **kw)
        t1 = pd.read_csv({str(tmp_path / "one" / "clip_predictions.csv")!r})
        t2 = pd.read_csv({str(tmp_path / "two" / "clip_predictions.csv")!r})
        json.dump({{"devices": devices,
                   "used": sorted(split_model.used) if split_model(x) is not None else [],
                   "pred": float(np.abs(np.asarray(model(x)) - split_model(x)).max()),
                   "rel": float(np.abs(r1 - r2).max() / np.abs(r1).max()),
                   "same_rows": t1.drop(columns=[c for c in t1 if c.startswith("prob_")])
                       .equals(t2.drop(columns=[c for c in t2 if c.startswith("prob_")])),
                   "prob": float((t1.filter(like="prob_") - t2.filter(like="prob_"))
                                 .abs().max().max())}}, sys.stdout)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=REPO, env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(res["devices"]) == 2
    assert len(res["used"]) == 2, res  # both devices computed a part of the batch
    assert res["pred"] < 1e-5 and res["rel"] < 1e-5 and res["prob"] < 1e-5
    assert res["same_rows"]


def test_cli_workers_then_merge(small_model, synthetic_shards, tmp_path, capsys, monkeypatch):
    from kvlrp.models import save_model

    model, info = small_model
    save_model(model, tmp_path / "model", info)
    common = ["strides", "--model", str(tmp_path / "model"), "--data", str(synthetic_shards),
              "--steps", "1", "2", "--clips-per-video", "1", "--no-control", "--no-progress",
              "--select-on", "test"]
    assert kvlrp_main([*common, "--out", str(tmp_path / "one")]) == 0
    assert kvlrp_main([*common, "--out", str(tmp_path / "w0"), "--num-workers", "2",
                       "--worker-index", "0"]) == 0
    assert "worker 0 of 2" in capsys.readouterr().out
    cfg = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cfg))  # worker 1 from TF_CONFIG
    assert kvlrp_main([*common, "--out", str(tmp_path / "w1")]) == 0
    assert "worker 1 of 2" in capsys.readouterr().out
    assert kvlrp_main(["merge", str(tmp_path / "w0"), str(tmp_path / "w1"), "--out",
                       str(tmp_path / "merged")]) == 0
    assert "best step" in capsys.readouterr().out
    for name in ("stride_accuracy.csv", "video_predictions.csv", "clip_predictions.csv"):
        assert (tmp_path / "one" / name).read_bytes() == \
            (tmp_path / "merged" / name).read_bytes()


def test_a_worker_without_videos_writes_an_empty_part_and_resumes(small_model,
                                                                  synthetic_shards, tmp_path):
    model, info = small_model
    kw = dict(steps=[1], split="test", clips_per_video=1, n_boot=10, progress=False,
              control=False, select_on="test", worker=Worker(5, 4))  # 4 test videos
    for _ in range(2):  # the second run resumes from the (empty) partial tables
        out = run_strides(model, info, synthetic_shards, tmp_path / "w4", **kw)
        assert out["kind"] == "strides-worker" and out["n_videos"] == 0
