"""Issue 16, memory: evaluation clips decode only the frames they use (so memory follows the
clips, not the video length) and give exactly the clips of the whole decoded video."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from kvlrp.data.clips.pipeline import (
    eval_clips,
    example_clips,
    video_dataset,
    video_examples,
)
from kvlrp.data.clips.spec import ClipSpec

#: the robustness set (bad input, damaged files, kills, resumes): ``pytest -m robust``
pytestmark = pytest.mark.robust


@pytest.mark.parametrize("n_clips", [2, "all"])
@pytest.mark.parametrize("step", [1, 3])
def test_example_clips_equal_the_clips_of_the_decoded_video(synthetic_shards, n_clips, step):
    spec = ClipSpec(clip_len=4, step=step, size=16)
    examples, encoding = video_examples(synthetic_shards, "test")
    for video, decoded in zip(examples, video_dataset(synthetic_shards, "test")):
        lazy = example_clips(video["frames"], spec, n_clips, encoding)
        whole = eval_clips(decoded["frames"], spec, n_clips)
        for key in ("clip", "clip_start", "is_short"):
            np.testing.assert_array_equal(lazy[key].numpy(), whole[key].numpy())


def test_frames_no_clip_uses_are_never_decoded(synthetic_shards):
    spec = ClipSpec(clip_len=4, step=2, size=16)
    examples, encoding = video_examples(synthetic_shards, "test")
    video = next(iter(examples))
    example = dict(video["frames"])
    n = int(example["n_frames"])
    used = set()
    starts = eval_clips(next(iter(video_dataset(synthetic_shards, "test")))["frames"], spec,
                        1)["clip_start"].numpy()
    for s in starts:
        used.update(range(int(s), int(s) + 2 * 4, 2))
    frames = example["frames"].numpy().copy()
    for k in set(range(n)) - used:  # every other frame is no longer a JPEG at all
        frames[k] = b"not a jpeg"
    example["frames"] = tf.constant(frames)
    clips = example_clips(example, spec, 1, encoding)
    assert clips["clip"].shape == (1, 4, 16, 16, 3)
    with pytest.raises(tf.errors.InvalidArgumentError):  # decoding everything would fail
        example_clips(example, spec, "all", encoding)
