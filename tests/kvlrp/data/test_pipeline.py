"""tf.data pipelines from shards: exact clip indexing (frames carry their own index), shapes,
normalisation, determinism, short-video policies, and frames compared with the source videos."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kvlrp.data.clips import clip_sampling as ref
from kvlrp.data.clips.spec import SHORT_POLICIES, ClipSpec

tf = pytest.importorskip("tensorflow")

from kvlrp.data.clips.pipeline import (  # noqa: E402
    clip_counts,
    eval_clips,
    eval_dataset,
    normalize,
    train_dataset,
    video_dataset,
)
from kvlrp.data.shards.folder import prepare_shards, read_index  # noqa: E402

#: Lengths of the index-coded videos: frame t of every video is a flat grey of value 5 * t.
CODED_LENGTHS = (5, 13, 30, 50)
CODED_SIZE = 8


@pytest.fixture(scope="module")
def coded_shards(tmp_path_factory) -> dict:
    """Raw and JPEG shards of frame-folder videos whose pixel value tells the frame index."""
    root = tmp_path_factory.mktemp("coded")
    rows = []
    for n in CODED_LENGTHS:
        folder = root / f"video_{n:02d}"
        folder.mkdir()
        for t in range(n):
            frame = np.full((CODED_SIZE, CODED_SIZE + 4, 3), 5 * t, np.uint8)
            Image.fromarray(frame).save(folder / f"{t}.png")
        rows.append({"path": folder.name, "label": f"n{n:02d}", "split": "train"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    shards = {}
    for encoding in ("raw", "jpeg"):
        shards[encoding] = root / encoding
        prepare_shards(root / "manifest.csv", shards[encoding], encoding=encoding, workers=0,
                       progress=False)
    return shards


def decode_indices(clips: np.ndarray) -> np.ndarray:
    """Frame indices ``[..., L]`` of unit-normalised index-coded clips ``[..., L, S, S, 3]``."""
    values = clips.mean(axis=(-3, -2, -1)) * 255 / 5
    assert np.allclose(values, np.round(values), atol=0.1)
    return np.round(values).astype(int)


#: (clip_len, step) pairs: spans 10, 15, 15, 1 against videos of 5, 13, 30 and 50 frames.
GEOMETRIES = [(4, 3), (8, 2), (3, 7), (1, 1)]
EVAL_CASES = [("raw", g, policy, n_clips) for g in GEOMETRIES for policy in SHORT_POLICIES
              for n_clips in (3, "all")]
EVAL_CASES += [("raw", (4, 3), "loop", 1)]
EVAL_CASES += [("jpeg", (4, 3), policy, 3) for policy in SHORT_POLICIES]


@pytest.mark.parametrize(("encoding", "geometry", "policy", "n_clips"), EVAL_CASES)
def test_eval_clips_are_exactly_the_reference_frames(coded_shards, encoding, geometry, policy,
                                                     n_clips):
    clip_len, step = geometry
    spec = ClipSpec(clip_len, step, CODED_SIZE, "unit", policy)
    got: dict[str, list] = {}
    batches = eval_dataset(coded_shards[encoding], spec, split="train", n_clips=n_clips,
                           batch_size=5)
    for batch in batches:
        for vid, start, short, clip in zip(batch["video_id"].numpy(), batch["clip_start"].numpy(),
                                           batch["is_short"].numpy(), batch["clip"].numpy()):
            got.setdefault(vid.decode(), []).append((int(start), bool(short),
                                                     decode_indices(clip).tolist()))
    for n in CODED_LENGTHS:
        expected = []
        for start in ref.eval_starts(n, clip_len, step, n_clips):
            indices = ref.clip_indices(n, start, clip_len, step, policy)
            if indices is not None:
                expected.append((start, ref.is_short(n, start, clip_len, step), indices))
        assert got.get(f"video_{n:02d}", []) == expected, n


@pytest.mark.parametrize("policy", SHORT_POLICIES)
@pytest.mark.parametrize(("encoding", "clip_len", "step"), [("raw", 4, 3), ("jpeg", 8, 2)])
def test_train_clips_are_reference_clips_from_valid_starts(coded_shards, encoding, policy,
                                                           clip_len, step):
    spec = ClipSpec(clip_len, step, CODED_SIZE, "unit", policy)
    classes = sorted(f"n{n:02d}" for n in CODED_LENGTHS)
    starts_seen: dict[int, set] = {}
    for clips, labels in train_dataset(coded_shards[encoding], spec, batch_size=8,
                                       split="train", seed=3).take(12):
        for clip, label in zip(clips.numpy(), labels.numpy()):
            n = int(classes[label][1:])
            indices = decode_indices(clip).tolist()
            start = indices[0]
            assert start in ref.valid_starts(n, clip_len, step)
            assert indices == ref.clip_indices(n, start, clip_len, step, policy)
            starts_seen.setdefault(n, set()).add(start)
    if policy == "skip":
        assert all(n >= spec.span for n in starts_seen)  # short videos never sampled
    long_n = max(CODED_LENGTHS)
    assert len(starts_seen[long_n]) > 3  # offsets really vary


def test_train_batches_shapes_ranges_and_labels(synthetic_shards):
    for normalization, (low, high) in [("symmetric", (-1, 1)), ("unit", (0, 1))]:
        spec = ClipSpec(clip_len=6, step=2, size=24, normalization=normalization)
        clips, labels = next(iter(train_dataset(synthetic_shards, spec, batch_size=5, seed=0)))
        assert clips.shape == (5, 6, 24, 24, 3) and clips.dtype == tf.float32
        assert labels.shape == (5,) and labels.dtype == tf.int32
        assert low <= float(tf.reduce_min(clips)) < float(tf.reduce_max(clips)) <= high
        assert set(labels.numpy()) <= {0, 1, 2, 3}


def test_train_is_deterministic_under_a_seed(synthetic_shards):
    spec = ClipSpec(clip_len=4, step=1, size=24)

    def batches(seed):
        ds = train_dataset(synthetic_shards, spec, batch_size=4, seed=seed)
        return [(c.numpy(), y.numpy()) for c, y in ds.take(3)]

    first, again, other = batches(7), batches(7), batches(8)
    for (c1, y1), (c2, y2) in zip(first, again):
        np.testing.assert_array_equal(c1, c2)
        np.testing.assert_array_equal(y1, y2)
    assert any(not np.array_equal(c1, c3) for (c1, _), (c3, _) in zip(first, other))


def test_flip_and_crop_are_applied(synthetic_shards):
    spec = ClipSpec(clip_len=2, step=1, size=16, normalization="unit")
    plain = [c.numpy() for c, _ in train_dataset(synthetic_shards, spec, 16, seed=1,
                                                 flip=False).take(1)]
    flipped = [c.numpy() for c, _ in train_dataset(synthetic_shards, spec, 16, seed=1,
                                                   flip=True).take(1)]
    # same seed, same starts and crops: each clip equals its counterpart or its mirror image
    mirrored = [np.array_equal(a, b[:, :, ::-1]) for a, b in zip(plain[0], flipped[0])]
    same = [np.array_equal(a, b) for a, b in zip(plain[0], flipped[0])]
    assert all(m or s for m, s in zip(mirrored, same))
    assert 0 < sum(mirrored) < 16


def test_eval_counts_and_short_clips(synthetic_shards):
    index = read_index(synthetic_shards)
    val = index[index["split"] == "val"]
    for policy in SHORT_POLICIES:
        spec = ClipSpec(clip_len=8, step=4, size=24, short_policy=policy)  # span 29 > some videos
        counts = clip_counts(synthetic_shards, spec, "val", n_clips=3)
        ids, shorts = [], []
        for batch in eval_dataset(synthetic_shards, spec, "val", n_clips=3, batch_size=4):
            assert batch["clip"].shape[1:] == (8, 24, 24, 3)
            ids += [v.decode() for v in batch["video_id"].numpy()]
            shorts += batch["is_short"].numpy().tolist()
        assert len(ids) == counts["n_clips"] and sum(shorts) == counts["n_short_clips"]
        n_short_videos = int((val["n_frames"] < spec.span).sum())
        assert n_short_videos > 0  # the fixture has videos shorter than 29 frames
        if policy == "skip":
            assert counts["n_skipped_videos"] == n_short_videos and not any(shorts)
            assert set(ids) == set(val.loc[val["n_frames"] >= spec.span, "video_id"])
        else:
            assert counts["n_short_clips"] == n_short_videos  # one clip (start 0) each
            assert set(ids) == set(val["video_id"])


def test_eval_clips_match_eval_dataset_and_centre_crop(synthetic_shards):
    spec = ClipSpec(clip_len=4, step=3, size=20, normalization="unit")
    video = next(iter(video_dataset(synthetic_shards, "test")))
    frames = video["frames"].numpy()
    clips = eval_clips(video["frames"], spec, 2, video["label"], video["video_id"])
    batch = next(iter(eval_dataset(synthetic_shards, spec, "test", n_clips=2, batch_size=2)))
    for key in ("clip", "clip_start", "is_short", "label", "video_id"):
        np.testing.assert_array_equal(clips[key].numpy(), batch[key].numpy())
    n = frames.shape[0]
    for clip, start in zip(clips["clip"].numpy(), clips["clip_start"].numpy()):
        indices = ref.clip_indices(n, int(start), 4, 3, "loop")
        expected = frames[indices, 6:26, 6:26].astype(np.float32) / 255  # centre 20 of 32
        np.testing.assert_allclose(clip, expected, atol=1e-6)


def test_small_frames_are_upscaled_to_the_crop(synthetic_shards):
    spec = ClipSpec(clip_len=3, step=1, size=40)  # frames are 32x32
    clips, _ = next(iter(train_dataset(synthetic_shards, spec, batch_size=2, seed=0)))
    assert clips.shape == (2, 3, 40, 40, 3)
    batch = next(iter(eval_dataset(synthetic_shards, spec, "val", n_clips=1, batch_size=2)))
    assert batch["clip"].shape == (2, 3, 40, 40, 3)
    assert -1 <= float(tf.reduce_min(batch["clip"])) <= float(tf.reduce_max(batch["clip"])) <= 1


@pytest.mark.parametrize(("encoding", "tolerance"), [("raw", 0.0), ("jpeg", 3.0)])
def test_shard_frames_match_the_source_video(synthetic_manifest, tmp_path, encoding, tolerance):
    """Raw shards hold exactly what read_video decodes; JPEG (q95, 4:4:4) within 3 grey levels."""
    from kvlrp.data.manifests.manifest import read_manifest
    from kvlrp.video import read_video

    manifest = read_manifest(synthetic_manifest)
    out = tmp_path / encoding
    prepare_shards(manifest, out, encoding=encoding, workers=0, progress=False)
    paths = manifest.table.set_index("video_id")["path"]
    checked = 0
    for video in video_dataset(out, "val"):
        source = read_video(paths[video["video_id"].numpy().decode()]).frames
        frames = video["frames"].numpy()
        assert frames.shape == source.shape
        assert np.abs(frames.astype(int) - source.astype(int)).mean() <= tolerance
        checked += 1
    assert checked == 4


def test_normalize_bounds():
    frames = tf.constant([0, 255, 51], tf.uint8)
    np.testing.assert_allclose(normalize(frames, "symmetric").numpy(), [-1, 1, -0.6], atol=1e-6)
    np.testing.assert_allclose(normalize(frames, "unit").numpy(), [0, 1, 0.2], atol=1e-6)
    with pytest.raises(ValueError, match="unknown normalization .sepia."):
        normalize(frames, "sepia")


def test_bad_requests_say_what_is_wrong(synthetic_shards, tmp_path):
    with pytest.raises(ValueError, match="short_policy"):
        ClipSpec(short_policy="pad")
    with pytest.raises(ValueError, match="clip_len must be a positive int"):
        ClipSpec(clip_len=0)
    with pytest.raises(ValueError, match=r"no videos of split 'holdout'.*splits present"):
        eval_dataset(synthetic_shards, ClipSpec(), split="holdout")
    with pytest.raises(ValueError, match="short_policy='skip' drops them all"):
        train_dataset(synthetic_shards, ClipSpec(clip_len=60, short_policy="skip"), 2)
    with pytest.raises(ValueError, match="n_clips must be"):
        eval_dataset(synthetic_shards, ClipSpec(), n_clips=0)
    with pytest.raises(FileNotFoundError, match="kvlrp prepare"):
        train_dataset(tmp_path, ClipSpec(), 2)


def test_clip_spec_accepts_numpy_ints_and_reports_span():
    spec = ClipSpec(clip_len=np.int64(8), step=np.int32(3), size=16)
    assert type(spec.clip_len) is int and spec.span == 22 == ref.span(8, 3)


def test_no_python_in_the_pipelines(synthetic_shards):
    """The serialized tf.data graphs hold no py_function / numpy_function ops."""
    from tensorflow.core.framework import graph_pb2

    spec = ClipSpec(clip_len=4, step=2, size=16)
    for ds in (train_dataset(synthetic_shards, spec, 2, seed=0),
               eval_dataset(synthetic_shards, spec, "val", n_clips="all")):
        graph = graph_pb2.GraphDef.FromString(ds._as_serialized_graph().numpy())
        ops = {node.op for node in graph.node}
        ops |= {node.op for function in graph.library.function for node in function.node_def}
        assert "ParallelMapDatasetV2" in ops and "DecodeJpeg" in ops  # the real graph is seen
        assert not ops & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}
