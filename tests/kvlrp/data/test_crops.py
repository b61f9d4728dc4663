"""The field's test protocol: three crops along the longer side and equal clip counts per
video at every step (exact frame indices and crop offsets)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kvlrp.data.clips import clip_sampling as ref


def coded_video(n_frames: int, height: int, width: int) -> np.ndarray:
    """uint8 frames whose channels hold (frame index, row, column): what a clip holds tells
    exactly which frame and which window it came from."""
    t, y, x = np.meshgrid(np.arange(n_frames), np.arange(height), np.arange(width),
                          indexing="ij")
    return np.stack([t, y, x], axis=-1).astype(np.uint8)


def test_three_crop_offsets_along_the_longer_side():
    assert ref.three_crop_offsets(24, 40, 16) == [(4, 0), (4, 12), (4, 24)]
    assert ref.three_crop_offsets(40, 24, 16) == [(0, 4), (12, 4), (24, 4)]
    assert ref.three_crop_offsets(20, 20, 16) == [(2, 0), (2, 2), (2, 4)]  # ties: along width
    assert ref.three_crop_offsets(16, 16, 16) == [(0, 0)] * 3
    with pytest.raises(ValueError, match="exceeds the frame's shorter side"):
        ref.three_crop_offsets(12, 40, 16)


@pytest.mark.parametrize("height,width", [(24, 40), (40, 24), (20, 20)])
def test_eval_clips_three_crops_exact_frames_and_windows(height, width):
    from kvlrp.data.clips.pipeline import eval_clips
    from kvlrp.data.clips.spec import ClipSpec

    spec = ClipSpec(clip_len=4, step=3, size=16, normalization="raw", crops=3)
    out = {k: v.numpy() for k, v in eval_clips(coded_video(30, height, width), spec, 3).items()}
    starts = ref.eval_starts(30, 4, 3, 3)  # [0, 10, 20]
    assert out["clip"].shape == (9, 4, 16, 16, 3)
    assert out["clip_start"].tolist() == [s for s in starts for _ in range(3)]
    assert out["crop"].tolist() == [0, 1, 2] * 3
    offsets = ref.three_crop_offsets(height, width, 16)
    for k, clip in enumerate(out["clip"]):
        expected = ref.clip_indices(30, starts[k // 3], 4, 3)
        assert clip[:, 0, 0, 0].tolist() == expected
        top, left = offsets[k % 3]
        assert clip[0, :, 0, 1].tolist() == list(range(top, top + 16))
        assert clip[0, 0, :, 2].tolist() == list(range(left, left + 16))


def test_centre_crop_gets_crop_index_zero():
    from kvlrp.data.clips.pipeline import eval_clips
    from kvlrp.data.clips.spec import ClipSpec

    spec = ClipSpec(clip_len=4, step=1, size=16, normalization="raw")
    out = eval_clips(coded_video(10, 24, 40), spec, 2)
    assert out["crop"].numpy().tolist() == [0, 0]
    assert out["clip"].numpy()[0, 0, 0, 0, 1:].tolist() == [4, 12]  # the centre window


@pytest.mark.parametrize("n,clip_len,step,n_clips,distinct,expected", [
    (12, 4, 3, 4, True, [0, 1, 2]),
    (12, 4, 3, 4, False, [0, 0, 1, 2]),
    (9, 4, 3, 3, True, [0]),            # shorter than the span (10): one short clip
    (9, 4, 3, 3, False, [0, 0, 0]),
    (40, 4, 1, 4, False, [0, 12, 24, 36]),
])
def test_equal_counts_keep_repeated_starts(n, clip_len, step, n_clips, distinct, expected):
    from kvlrp.data.clips import clip_ops
    assert ref.eval_starts(n, clip_len, step, n_clips, distinct=distinct) == expected
    got = clip_ops.eval_starts(n, clip_len, step, n_clips, distinct=distinct).numpy()
    assert got.tolist() == expected


def test_strides_three_crops_equal_counts(small_model, synthetic_shards, tmp_path):
    from kvlrp.analysis.strides.run import run_strides

    model, info = small_model
    index = pd.read_csv(synthetic_shards / "index.csv")
    n_test = int((index["split"] == "test").sum())
    long_step = int(index["n_frames"].max())  # every clip at this step runs past the end
    summary = run_strides(model, info, synthetic_shards, tmp_path, steps=[1, long_step],
                          split="test", clips_per_video=2, control=False, progress=False,
                          select_on="test", crops=3, equal_counts=True, n_boot=50)
    clips = pd.read_csv(tmp_path / "clip_predictions.csv")
    per_video = clips.groupby(["step", "video_id"]).size()
    assert (per_video == 6).all() and len(per_video) == 2 * n_test
    assert sorted(clips["crop"].unique()) == [0, 1, 2]
    table = pd.read_csv(tmp_path / "stride_accuracy.csv", dtype={"clips_per_video": str})
    assert table["clips_per_video"].tolist() == ["6", "6"]
    assert (table["n_clips"] == 6 * n_test).all()
    assert summary["crops"] == 3 and summary["equal_counts"] is True
    run_strides(model, info, synthetic_shards, tmp_path / "d", steps=[1, long_step],
                split="test", clips_per_video=2, control=False, progress=False,
                select_on="test", n_boot=50)
    table = pd.read_csv(tmp_path / "d" / "stride_accuracy.csv", dtype={"clips_per_video": str})
    assert table.set_index("step").loc[long_step, "clips_per_video"] == "1"  # repeats dropped
