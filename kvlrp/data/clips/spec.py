"""``ClipSpec``: the one place that owns the clip rules (no TensorFlow, so any module may use it).

What a clip is (its length, step and span), how it is cropped (:data:`CROPS`, default
:data:`DEFAULT_CROPS`), normalised and cut at a video's end (:data:`SHORT_POLICIES`), and every
check of those settings. Everything else imports them from here: the tf.data pipelines
(:mod:`kvlrp.data.clips.pipeline`), the plain-Python reference
(:mod:`kvlrp.data.clips.clip_sampling`), the run configs and the command-line options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from kvlrp.data.clips.normalization import NORMALIZATION_BOUNDS
from kvlrp.infra.checks import check_positive, is_int

__all__ = ["CROPS", "DEFAULT_CROPS", "MAX_CLIP_LEN", "MAX_SIZE", "SHORT_POLICIES", "ClipSpec",
           "check_crops", "check_short_policy", "check_trainable", "clip_span"]

#: Evaluation crops per clip: 1 (centre) or 3 (start, centre and end of the frame's longer side).
CROPS = (1, 3)
#: Crops per clip unless asked otherwise.
DEFAULT_CROPS = 1
#: Short-video policies, in the order the docs list them.
SHORT_POLICIES = ("loop", "repeat_last", "skip")
#: Upper bounds of the clip settings a model is trained with (a 2160-pixel crop is a 4K frame).
MAX_CLIP_LEN = 1024
MAX_SIZE = 2160

#: A step: a Python int, or (in a traced graph) an int32 scalar tensor.
_Step = TypeVar("_Step")


def clip_span(clip_len: int, step: _Step) -> _Step:
    """Frames a clip of ``clip_len`` frames at ``step`` covers: ``step * (clip_len - 1) + 1``.

    Unchecked, so that ``step`` may be an int32 tensor (checked callers:
    :func:`kvlrp.data.clips.clip_sampling.span`, :attr:`ClipSpec.span`).
    """
    return step * (clip_len - 1) + 1  # type: ignore[operator]


def check_crops(crops: object, name: str = "crops") -> int:
    """``crops`` if it is one of :data:`CROPS`, else a ValueError naming ``name``."""
    if crops not in CROPS:
        raise ValueError(f"{name} must be one of {CROPS}; got {crops!r}")
    return int(crops)  # type: ignore[call-overload]


def check_short_policy(policy: object, name: str = "short_policy") -> str:
    """``policy`` if it is one of :data:`SHORT_POLICIES`, else a ValueError naming ``name``."""
    if policy not in SHORT_POLICIES:
        raise ValueError(f"unknown {name} {policy!r}; choose one of {SHORT_POLICIES}")
    return str(policy)


def check_trainable(clip_len: Any, step: Any, size: Any, *,
                    error: type[Exception] = ValueError) -> None:
    """One-line ``error`` for clip settings a model cannot be trained with: ``clip_len`` in
    1..:data:`MAX_CLIP_LEN`, ``step`` >= 1, ``size`` in 1..:data:`MAX_SIZE` (ints)."""
    for name, value, high in (("clip_len", clip_len, MAX_CLIP_LEN), ("step", step, None),
                              ("size", size, MAX_SIZE)):
        if not is_int(value) or value < 1 or (high is not None and value > high):
            bound = f"in 1..{high}" if high else ">= 1"
            raise error(f"{name} must be an int {bound}, got {value!r}")


@dataclass(frozen=True)
class ClipSpec:
    """Geometry and preprocessing of the clips a model sees.

    Attributes
    ----------
    clip_len
        Frames per clip.
    step
        Stride between consecutive clip frames (a clip spans :func:`clip_span` frames).
    size
        Height and width of the square crop.
    normalization
        A name of :data:`kvlrp.data.clips.normalization.NORMALIZATIONS` (``"symmetric"``:
        [-1, 1], ``"unit"``: [0, 1], ...).
    short_policy
        One of :data:`SHORT_POLICIES` for clips running past a video's end.
    crops
        Evaluation crops per clip, one of :data:`CROPS`: 1 (centre) or 3 (start, centre and
        end of the frame's longer side, see :func:`kvlrp.data.clips.clip_ops.three_crops`).
        Training ignores it.
    distinct_starts
        Evaluation: drop repeated clip starts (True, fewer clips from short videos at large
        steps) or keep them (False: every video gives ``n_clips`` clips at every step).
    """

    clip_len: int = 8
    step: int = 1
    size: int = 56
    normalization: str = "symmetric"
    short_policy: str = "loop"
    crops: int = DEFAULT_CROPS
    distinct_starts: bool = True

    def __post_init__(self) -> None:
        for name in ("clip_len", "step", "size"):
            # numpy ints become plain ints
            object.__setattr__(self, name, check_positive(f"ClipSpec.{name}", getattr(self, name)))
        if self.normalization not in NORMALIZATION_BOUNDS:
            raise ValueError(
                f"unknown normalization {self.normalization!r}; "
                f"choose one of {sorted(NORMALIZATION_BOUNDS)}"
            )
        check_short_policy(self.short_policy)
        check_crops(self.crops, "ClipSpec.crops")

    @property
    def span(self) -> int:
        """Video frames one clip covers."""
        return clip_span(self.clip_len, self.step)
