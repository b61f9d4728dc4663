"""Remote filesystems through tf.io.gfile, tested on TensorFlow's in-memory ``ram://``:
atomic writes, a manifest and its videos read from there (PyAV decoding file objects), shards,
a model folder and the explain / strides / report outputs written there."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest
import tensorflow as tf

from kvlrp.infra import fs
from kvlrp.infra.atomic import atomic_write, write_csv, write_json


@pytest.fixture()
def ram() -> fs.GPath:
    root = fs.path(f"ram://kvlrp-test-{uuid.uuid4().hex}")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _upload(local: Path, remote: fs.GPath) -> None:
    for p in sorted(local.rglob("*")):
        if p.is_file():
            dest = remote / p.relative_to(local).as_posix()
            dest.parent.mkdir(parents=True, exist_ok=True)
            tf.io.gfile.copy(str(p), str(dest), overwrite=True)


def test_gpath_operations(ram):
    p = ram / "a" / "b.csv"
    assert str(p) == f"{ram}/a/b.csv" and p.name == "b.csv" and p.suffix == ".csv"
    assert p.parent == ram / "a" and p.with_suffix(".json").name == "b.json"
    assert fs.path(str(p)) == p and fs.is_url(p) and not fs.is_url("/tmp/x")
    assert isinstance(fs.path("relative/x.csv"), Path)
    assert not p.exists()
    p.parent.mkdir(parents=True)
    p.write_text("x,y\n1,2\n")
    assert p.is_file() and not p.is_dir() and (ram / "a").is_dir()
    assert fs.read_csv(p).to_dict("records") == [{"x": 1, "y": 2}]
    assert [q.name for q in (ram / "a").glob("*.csv")] == ["b.csv"]
    p.unlink()
    assert not p.exists()
    p.unlink(missing_ok=True)


def test_atomic_write_on_ram_replaces_whole_files_and_leaves_no_temporaries(ram):
    target = ram / "reports" / "table.csv"
    assert write_csv(pd.DataFrame({"a": [1, 2]}), target) == target
    write_csv(pd.DataFrame({"a": [3]}), target)
    assert fs.read_csv(target)["a"].tolist() == [3]

    def broken(tmp: Path) -> None:
        tmp.write_text("half a fi")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert fs.read_csv(target)["a"].tolist() == [3]  # the old file, whole
    write_json({"k": [1, 2]}, ram / "reports" / "s.json")
    assert json.loads((ram / "reports" / "s.json").read_text()) == {"k": [1, 2]}
    assert sorted(tf.io.gfile.listdir(str(ram / "reports"))) == ["s.json", "table.csv"]


def test_prepare_explain_strides_report_on_ram(synthetic_manifest, synthetic_shards,
                                               small_model, ram):
    from kvlrp.analysis.explain.run import run_explain
    from kvlrp.analysis.report.markdown import build_report
    from kvlrp.analysis.strides.run import run_strides
    from kvlrp.data.shards.folder import prepare_shards, read_index
    from kvlrp.models import load_model, save_model

    _upload(synthetic_manifest.parent / "videos", ram / "data" / "videos")
    manifest = pd.read_csv(synthetic_manifest, dtype=str)
    (ram / "data" / "videos" / "broken.mp4").write_bytes(b"\x00\x01not a video" * 40)
    manifest.loc[len(manifest)] = ["videos/broken.mp4", "still", "train", "broken"]
    (ram / "data" / "manifest.csv").write_text(manifest.to_csv(index=False))

    result = prepare_shards(ram / "data" / "manifest.csv", ram / "shards", workers=0,
                            progress=False)
    assert result.n_videos == len(manifest) - 1
    skipped = fs.read_csv(ram / "shards" / "skipped.csv")
    assert skipped["path"].tolist() == [f"{ram}/data/videos/broken.mp4"]
    remote, local = read_index(ram / "shards"), read_index(synthetic_shards)
    cols = ["video_id", "label", "label_index", "split", "n_frames", "height", "width"]
    pd.testing.assert_frame_equal(remote[cols], local[cols])
    assert [p.name for p in (ram / "shards").glob("*.tfrecord")] == \
        sorted(p.name for p in Path(synthetic_shards).glob("*.tfrecord"))

    from kvlrp.training.train import train

    trained = train(str(ram / "shards"), str(ram / "trained"), epochs=2, steps_per_epoch=1,
                    clip_len=4, size=16, batch_size=4, widths=(4, 8), dense_units=8,
                    val_clips=1, progress=False)
    assert len(trained.history) == 2
    assert (ram / "trained" / "model.keras").is_file()
    assert (ram / "trained" / "checkpoints" / "state.json").is_file()
    again = train(str(ram / "shards"), str(ram / "trained"), epochs=3, steps_per_epoch=1,
                  clip_len=4, size=16, batch_size=4, widths=(4, 8), dense_units=8,
                  val_clips=1, progress=False)  # resumes from the checkpoint on ram://
    assert again.initial_epoch == 2 and list(again.history["epoch"]) == [1, 2, 3]

    model, info = small_model
    save_model(model, ram / "model", info)
    model2, info2 = load_model(str(ram / "model"))
    assert info2 == info
    kw = dict(split="test", clips_per_video=1, n_boot=20, progress=False)
    s = run_strides(model2, info2, str(ram / "shards"), str(ram / "runs" / "strides"),
                    steps=[1, 2], control=False, **kw)
    local_s = run_strides(model, info, synthetic_shards, Path(str(synthetic_shards)).parent
                          / f"strides-{ram.name}", steps=[1, 2], control=False, **kw)
    assert [r["video_accuracy"] for r in s["table"]] == \
        [r["video_accuracy"] for r in local_s["table"]]
    run_explain(model2, info2, str(ram / "shards"), str(ram / "runs" / "explain"), steps=[1],
                prior_seeds=1, n_heatmaps=1, flip_videos=2, **kw)
    assert (ram / "runs" / "explain" / "frame_relevance.csv").is_file()
    assert list((ram / "runs" / "explain" / "heatmaps").glob("*.gif"))
    report = build_report(str(ram / "runs"))
    assert report == ram / "runs" / "report.md"
    assert "# kvlrp report" in report.read_text()
    assert list((ram / "runs" / "plots").glob("*.png"))
    leftovers = [p for p in tf.io.gfile.glob(f"{ram}/**/.*.tmp")]
    assert not leftovers
