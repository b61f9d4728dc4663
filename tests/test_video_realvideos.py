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
