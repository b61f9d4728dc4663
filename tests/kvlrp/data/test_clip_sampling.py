"""Clip indexing: the plain-Python reference, and the in-graph ops checked exactly against it for
every clip length, step, offset and short-video policy (property-based)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvlrp.data.clips import clip_sampling as ref
from kvlrp.data.clips.spec import SHORT_POLICIES

POLICIES = st.sampled_from(SHORT_POLICIES)
N_FRAMES = st.integers(1, 60)
CLIP_LEN = st.integers(1, 12)
STEP = st.integers(1, 6)
N_CLIPS = st.one_of(st.integers(1, 7), st.just("all"))


# --- the reference itself --------------------------------------------------------------------

@given(n=N_FRAMES, clip_len=CLIP_LEN, step=STEP, policy=POLICIES, data=st.data())
def test_reference_clip_properties(n, clip_len, step, policy, data):
    start = data.draw(st.integers(0, n - 1))
    indices = ref.clip_indices(n, start, clip_len, step, policy)
    short = ref.is_short(n, start, clip_len, step)
    if policy == "skip" and short:
        assert indices is None
        return
    assert len(indices) == clip_len and all(0 <= i < n for i in indices)
    assert indices[0] == start
    if not short:
        assert indices == list(range(start, start + ref.span(clip_len, step), step))
    elif policy == "loop":
        assert indices == [(start + k * step) % n for k in range(clip_len)]
    else:
        assert indices == sorted(indices) and indices[-1] == n - 1


@given(n=N_FRAMES, clip_len=CLIP_LEN, step=STEP, n_clips=N_CLIPS)
def test_reference_eval_starts(n, clip_len, step, n_clips):
    starts = ref.eval_starts(n, clip_len, step, n_clips)
    width = ref.span(clip_len, step)
    assert starts == sorted(set(starts)) and starts
    if n < width:
        assert starts == [0]
        return
    assert all(0 <= s <= n - width for s in starts)  # never short when the video is long enough
    if n_clips == "all":
        assert starts == list(range(0, n - width + 1, width))  # non-overlapping, from 0
    elif n_clips == 1:
        assert starts == [(n - width) // 2]
    else:
        assert starts[0] == 0 and starts[-1] == n - width
        assert len(starts) == min(n_clips, n - width + 1)


def test_reference_valid_starts_and_span():
    assert ref.span(8, 1) == 8 and ref.span(8, 3) == 22 and ref.span(1, 5) == 1
    assert list(ref.valid_starts(10, 4, 2)) == [0, 1, 2, 3]
    assert list(ref.valid_starts(5, 4, 2)) == [0]  # short video: the only start is 0


def test_reference_rejects_bad_arguments():
    with pytest.raises(ValueError, match="start must be in"):
        ref.clip_indices(10, 10, 2, 1)
    with pytest.raises(ValueError, match="unknown short-video policy 'wrap'"):
        ref.clip_indices(10, 0, 2, 1, "wrap")
    with pytest.raises(ValueError, match="step must be a positive int"):
        ref.span(4, 0)
    with pytest.raises(ValueError, match="n_clips must be"):
        ref.eval_starts(10, 2, 1, 0)


# --- in-graph ops against the reference ------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(n=N_FRAMES, clip_len=CLIP_LEN, step=STEP, policy=POLICIES)
def test_tf_frame_indices_match_reference_for_every_offset(n, clip_len, step, policy):
    from kvlrp.data.clips import clip_ops
    starts = np.arange(n)
    indices, is_short = clip_ops.frame_indices(n, starts, clip_len, step, policy)
    for start in starts:
        expected = ref.clip_indices(n, int(start), clip_len, step, policy)
        assert bool(is_short[start]) == ref.is_short(n, int(start), clip_len, step)
        if expected is not None:  # skip: the caller drops the clip; flagged short above
            assert indices[start].numpy().tolist() == expected


@settings(max_examples=60, deadline=None)
@given(n=N_FRAMES, clip_len=CLIP_LEN, step=STEP, n_clips=N_CLIPS)
def test_tf_eval_starts_match_reference(n, clip_len, step, n_clips):
    from kvlrp.data.clips import clip_ops
    got = clip_ops.eval_starts(n, clip_len, step, n_clips).numpy().tolist()
    assert got == ref.eval_starts(n, clip_len, step, n_clips)


@settings(max_examples=30, deadline=None)
@given(n=N_FRAMES, clip_len=CLIP_LEN, step=STEP, seed=st.integers(0, 2**31 - 1))
def test_tf_random_start_is_a_valid_start(n, clip_len, step, seed):
    from kvlrp.data.clips import clip_ops
    draws = {int(clip_ops.random_start(n, clip_len, step, [seed, k])) for k in range(20)}
    assert draws <= set(ref.valid_starts(n, clip_len, step))
