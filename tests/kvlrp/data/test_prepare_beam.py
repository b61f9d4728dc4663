"""``kvlrp prepare --runner beam`` (Apache Beam DirectRunner) against the local path: the same
shards, index and skipped list; a bad video is listed, never fatal. Needs the ``[beam]`` extra
(tox env ``beam``); skipped, saying so, where Apache Beam is not installed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("apache_beam", reason="needs the [beam] extra (tox -e beam)")

from kvlrp.cli import main as kvlrp_main  # noqa: E402
from kvlrp.data.shards.folder import prepare_shards, read_index  # noqa: E402


def _examples(shard_dir: Path) -> dict[str, dict]:
    """video_id -> every feature of its example, from all shard files of the folder."""
    import tensorflow as tf

    out = {}
    for f in sorted(shard_dir.glob("*.tfrecord")):
        for raw in tf.data.TFRecordDataset(str(f)).as_numpy_iterator():
            ex = tf.train.Example.FromString(raw)
            feats = {k: (list(v.bytes_list.value) or list(v.int64_list.value))
                     for k, v in ex.features.feature.items()}
            out[feats["video_id"][0].decode()] = feats
    return out


@pytest.fixture(scope="module")
def manifest_with_a_bad_video(synthetic_manifest, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("beam-data")
    shutil.copytree(synthetic_manifest.parent / "videos", root / "videos")
    (root / "videos" / "broken.mp4").write_bytes(b"\x00\x01 truncated garbage" * 50)
    table = pd.read_csv(synthetic_manifest, dtype=str)
    table.loc[len(table)] = ["videos/broken.mp4", "still", "train", "broken"]
    table.to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def test_beam_prepare_matches_the_local_path(manifest_with_a_bad_video, tmp_path, capsys):
    local = prepare_shards(manifest_with_a_bad_video, tmp_path / "local", videos_per_shard=3,
                           workers=0, progress=False)
    code = kvlrp_main(["prepare", str(manifest_with_a_bad_video), "--out",
                       str(tmp_path / "beam"), "--videos-per-shard", "3", "--runner", "beam",
                       "--beam-options=--runner=DirectRunner --direct_num_workers=1"])
    assert code == 0, capsys.readouterr().err
    assert "1 skipped" in capsys.readouterr().out
    pd.testing.assert_frame_equal(read_index(tmp_path / "beam"), read_index(tmp_path / "local"))
    skipped = pd.read_csv(tmp_path / "beam" / "skipped.csv")
    assert skipped["path"].str.endswith("broken.mp4").tolist() == [True]
    assert skipped.equals(pd.read_csv(tmp_path / "local" / "skipped.csv"))
    a, b = _examples(tmp_path / "local"), _examples(tmp_path / "beam")
    assert sorted(a) == sorted(b) and len(a) == local.n_videos
    for vid in a:
        assert a[vid] == b[vid], vid  # label, sizes and every encoded frame
    for name in ("classes.json", "dataset.json"):
        assert json.loads((tmp_path / "beam" / name).read_text()) == \
            json.loads((tmp_path / "local" / name).read_text())
    # The local path reuses every shard Beam wrote (same plan, same progress file) ...
    again = prepare_shards(manifest_with_a_bad_video, tmp_path / "beam", videos_per_shard=3,
                           workers=0, progress=False)
    planned = json.loads((tmp_path / "local" / "progress.json").read_text())["shards"]
    assert again.n_reused_shards == len(planned) > 1
    # ... and the tf.data pipelines read the Beam shards.
    from kvlrp.data.clips.pipeline import eval_dataset
    from kvlrp.data.clips.spec import ClipSpec

    batch = next(iter(eval_dataset(tmp_path / "beam", ClipSpec(clip_len=4, size=16),
                                   split="test", n_clips=1, batch_size=2)))
    assert tuple(batch["clip"].shape) == (2, 4, 16, 16, 3)


def test_beam_prepare_without_apache_beam_says_how_to_install(monkeypatch, tmp_path,
                                                              manifest_with_a_bad_video):
    import builtins

    real_import = builtins.__import__

    def no_beam(name, *args, **kwargs):
        if name.startswith("apache_beam"):
            raise ImportError("No module named 'apache_beam'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_beam)
    from kvlrp.data.shards.beam_prepare import prepare_shards_beam

    with pytest.raises(ValueError, match=r"pip install 'kvlrp\[beam\]'"):
        prepare_shards_beam(manifest_with_a_bad_video, tmp_path / "x")


def test_beam_prepare_writes_to_a_remote_filesystem(manifest_with_a_bad_video, tmp_path):
    import uuid

    from kvlrp.data.shards.beam_prepare import prepare_shards_beam
    from kvlrp.infra import fs

    table = pd.read_csv(manifest_with_a_bad_video, dtype=str)
    small = table[table["split"].eq("test") | table["video_id"].eq("broken")]
    small.to_csv(manifest_with_a_bad_video.parent / "small.csv", index=False)
    out = fs.path(f"ram://beam-{uuid.uuid4().hex}/shards")  # in-process: the in-memory runner
    result = prepare_shards_beam(manifest_with_a_bad_video.parent / "small.csv", out,
                                 videos_per_shard=2, beam_args=["--runner=DirectRunner"])
    assert result.n_videos == len(small) - 1 and len(result.skipped) == 1
    local = prepare_shards(manifest_with_a_bad_video.parent / "small.csv", tmp_path / "local",
                           videos_per_shard=2, workers=0, progress=False)
    pd.testing.assert_frame_equal(read_index(out), read_index(local.out_dir))
    assert sorted(p.name for p in out.glob("*.tfrecord")) == \
        sorted(p.name for p in local.out_dir.glob("*.tfrecord"))
