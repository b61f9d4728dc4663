"""Plain-Python reference of clip indexing (the tf.data pipelines are tested against it).

A clip of ``clip_len`` frames at step ``step`` starting at frame ``start`` holds frames
``start, start + step, ..., start + step * (clip_len - 1)``; its span is
``step * (clip_len - 1) + 1`` frames (:func:`kvlrp.data.clips.spec.clip_span`). A clip that
runs past the video's last frame is *short* and follows a policy
(:data:`kvlrp.data.clips.spec.SHORT_POLICIES`):

``loop``
    wrap around to the start of the video (index modulo the frame count);
``repeat_last``
    repeat the last frame;
``skip``
    drop the clip (``clip_indices`` returns ``None``).
"""

from __future__ import annotations

from kvlrp.data.clips.spec import check_short_policy, clip_span
from kvlrp.infra.checks import check_positive, check_positive_or_all


def span(clip_len: int, step: int) -> int:
    """Number of video frames a clip covers (:func:`~kvlrp.data.clips.spec.clip_span`), both
    arguments checked."""
    _check_positive(clip_len=clip_len, step=step)
    return clip_span(clip_len, step)


def is_short(n_frames: int, start: int, clip_len: int, step: int) -> bool:
    """Whether the clip starting at ``start`` runs past the last frame."""
    return start + span(clip_len, step) > n_frames


def clip_indices(
    n_frames: int, start: int, clip_len: int, step: int, policy: str = "loop"
) -> list[int] | None:
    """Frame indices of one clip, or ``None`` when ``policy == "skip"`` drops a short clip.

    Parameters
    ----------
    n_frames
        Frames in the video (>= 1).
    start
        First frame, ``0 <= start < n_frames``.
    clip_len, step
        Frames per clip and stride between them (>= 1).
    policy
        What a clip running past the end does: ``loop``, ``repeat_last`` or ``skip``.
    """
    _check_positive(n_frames=n_frames, clip_len=clip_len, step=step)
    check_short_policy(policy, "short-video policy")
    if not 0 <= start < n_frames:
        raise ValueError(f"start must be in [0, {n_frames}) for this video, got {start}")
    raw = [start + i * step for i in range(clip_len)]
    if raw[-1] < n_frames:
        return raw
    if policy == "skip":
        return None
    if policy == "loop":
        return [index % n_frames for index in raw]
    return [min(index, n_frames - 1) for index in raw]


def valid_starts(n_frames: int, clip_len: int, step: int) -> range:
    """Starts a training clip draws from uniformly: every start whose clip fits, else ``[0]``."""
    last = n_frames - span(clip_len, step)
    return range(0, last + 1) if last >= 0 else range(0, 1)


def eval_starts(n_frames: int, clip_len: int, step: int, n_clips: int | str = 4,
                distinct: bool = True) -> list[int]:
    """Starts of the evaluation clips of one video.

    Parameters
    ----------
    n_frames
        Frames in the video.
    clip_len, step
        Clip geometry.
    n_clips
        An int: that many starts evenly spaced from the first to the last valid start,
        ``floor(i * last / (n_clips - 1))`` (one clip: the centre ``last // 2``), duplicates
        removed unless ``distinct`` is False. ``"all"``: every non-overlapping clip,
        ``0, span, 2 * span, ...``.
    distinct
        False: keep repeated starts, so that every video gives exactly ``n_clips`` clips at
        every step (a video with fewer valid starts than clips repeats some of them; a video
        shorter than the span gives ``n_clips`` short clips at 0).

    Returns
    -------
    list of int
        Increasing starts; a video shorter than the span gives ``[0]`` (a short clip).
    """
    _check_positive(n_frames=n_frames)
    width = span(clip_len, step)
    last = n_frames - width
    check_positive_or_all("n_clips", n_clips)
    if last < 0:
        return [0] if distinct or n_clips == "all" else [0] * n_clips
    if n_clips == "all":
        return list(range(0, last + 1, width))
    if n_clips == 1:
        return [last // 2]
    starts = [(i * last) // (n_clips - 1) for i in range(n_clips)]
    return sorted(set(starts)) if distinct else starts


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        check_positive(name, value)


def three_crop_offsets(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """``(top, left)`` of the three ``size`` x ``size`` test crops of an ``height`` x ``width``
    frame: start, centre and end of the longer side, centred on the shorter one (a square
    frame counts as wide; one exactly ``size`` on both sides gives the same crop three times)."""
    _check_positive(height=height, width=width, size=size)
    if size > min(height, width):
        raise ValueError(f"crop size {size} exceeds the frame's shorter side "
                         f"({height}x{width})")
    long_side, short_side = (width, height) if width >= height else (height, width)
    across = (short_side - size) // 2
    along = [0, (long_side - size) // 2, long_side - size]
    return [(across, a) if width >= height else (a, across) for a in along]
