"""The five real-world clips in ../shared/realvideos decode with the frame counts, sizes and
rates its README lists (skipped where that folder is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from kvlrp.video import read_video

#: file -> (frames, height, width, fps), from ../shared/realvideos/README.md.
REAL_CLIPS = {
    "ucf101_ApplyEyeMakeup.avi": (164, 240, 320, 25.0),
    "cleaning_pool.mp4": (300, 256, 340, 30.0),
    "arm_wrestling.mp4": (280, 256, 340, 28.0),
    "basketball.mp4": (300, 240, 426, 29.97),
    "flipping_pancake.mkv": (310, 240, 426, 30.0),
}

SHARD_CLIPS = ("ucf101_ApplyEyeMakeup.avi", "flipping_pancake.mkv")


@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_real_clip_decodes_completely(realvideos_dir, name):
    n_frames, height, width, fps = REAL_CLIPS[name]
    video = read_video(realvideos_dir / name)
    assert video.frames.shape == (n_frames, height, width, 3)
    assert video.frames.dtype == np.uint8
    assert video.fps == pytest.approx(fps, abs=0.01)
    # real footage: frames differ over time and are not blank
    assert video.frames.std() > 10
    assert np.abs(video.frames[-1].astype(int) - video.frames[0].astype(int)).mean() > 1


def test_real_clips_through_shards_and_eval_clips(realvideos_dir, tmp_path):
    """Real lengths and aspect ratios: decode once (shorter side 32), then evaluation clips.

    Two of the five clips (AVI/MPEG-4 with a declared frame count, MKV/H.264 without) keep the
    test's runtime small; all five are decoded in full above.
    """
    import pandas as pd

    from kvlrp.data.clips import clip_sampling
    from kvlrp.data.clips.pipeline import eval_dataset
    from kvlrp.data.clips.spec import ClipSpec
    from kvlrp.data.shards.folder import prepare_shards, read_index

    rows = [{"path": str(realvideos_dir / name), "label": name.split(".")[0], "split": "test",
             "video_id": name} for name in SHARD_CLIPS]
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    # the shared clips live outside the manifest's folder: the documented opt-out
    result = prepare_shards(tmp_path / "manifest.csv", tmp_path / "shards", short_side=32,
                            workers=0, progress=False, allow_outside_root=True)
    assert result.n_videos == len(SHARD_CLIPS) and result.skipped.empty
    index = read_index(tmp_path / "shards").set_index("video_id")
    for name in SHARD_CLIPS:
        n_frames, height, width, _ = REAL_CLIPS[name]
        assert index.loc[name, "n_frames"] == n_frames
        assert index.loc[name, "height"] == 32
        assert index.loc[name, "width"] == round(width * 32 / height)
    spec = ClipSpec(clip_len=8, step=5, size=32)  # span 36
    starts: dict[str, list[int]] = {}
    for batch in eval_dataset(tmp_path / "shards", spec, "test", n_clips="all", batch_size=32):
        assert batch["clip"].shape[1:] == (8, 32, 32, 3)
        for vid, start in zip(batch["video_id"].numpy(), batch["clip_start"].numpy()):
            starts.setdefault(vid.decode(), []).append(int(start))
    for name in SHARD_CLIPS:
        n_frames = REAL_CLIPS[name][0]
        assert starts[name] == clip_sampling.eval_starts(n_frames, 8, 5, "all")
