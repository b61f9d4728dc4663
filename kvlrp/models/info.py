"""``ModelInfo``: what a trained model needs beside its weights (classes, clip settings)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from kvlrp.data.clips.spec import ClipSpec

#: Version of the ``kvlrp.json`` layout written by :meth:`ModelInfo.to_dict`.
INFO_VERSION = 1

#: The :class:`~kvlrp.data.clips.spec.ClipSpec` fields a trained model records (the evaluation
#: choices ``crops`` and ``distinct_starts`` are not part of the model).
CLIP_FIELDS = ("clip_len", "step", "size", "normalization", "short_policy")


def clip_settings(spec: ClipSpec) -> dict[str, Any]:
    """The :data:`CLIP_FIELDS` of ``spec`` as a dict (``ModelInfo(**clip_settings(spec))``)."""
    return {name: getattr(spec, name) for name in CLIP_FIELDS}


@dataclass
class ModelInfo:
    """Classes and clip settings saved beside a model as ``kvlrp.json``.

    Attributes
    ----------
    architecture
        Builder name (a key of ``kvlrp.models.ARCHITECTURES``) or ``"custom"`` for a
        user's own model.
    classes
        Class names in output order (index ``i`` is output unit ``i``).
    clip_len, step, size
        Frames per clip, stride between a clip's frames, square crop size in pixels.
    normalization
        Pixel normalisation name (see ``kvlrp.data.clips.normalization.NORMALIZATIONS``).
    short_policy
        What to do with videos shorter than a clip's span: ``loop``, ``repeat_last``, ``skip``.
    seed
        Training seed (``None`` if unseeded).
    model_kwargs
        Keyword arguments the architecture was built with.
    extra
        Anything else worth keeping (training settings, epochs run, ...).
    """

    architecture: str
    classes: list[str]
    clip_len: int = 8
    step: int = 1
    size: int = 56
    normalization: str = "symmetric"
    short_policy: str = "loop"
    seed: int | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.classes = [str(c) for c in self.classes]
        if len(self.classes) < 2:
            raise ValueError(f"ModelInfo needs at least 2 classes, got {self.classes}")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"ModelInfo classes must be unique, got {self.classes}")
        for name in ("clip_len", "step", "size"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"ModelInfo.{name} must be a positive int, got {value!r}")
            setattr(self, name, int(value))

    @property
    def num_classes(self) -> int:
        """Number of classes (output units)."""
        return len(self.classes)

    def clip_spec(self, **overrides: Any) -> ClipSpec:
        """The :class:`kvlrp.data.clips.spec.ClipSpec` the model was trained with.

        Parameters
        ----------
        **overrides
            Fields to replace, e.g. ``step=2`` to evaluate at another step size.
        """
        spec = ClipSpec(**{name: getattr(self, name) for name in CLIP_FIELDS})
        return dataclasses.replace(spec, **overrides) if overrides else spec

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with a ``version`` key)."""
        return {"version": INFO_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        """Inverse of :meth:`to_dict`; unknown keys go to ``extra``, missing required ones raise."""
        data = dict(data)
        version = data.pop("version", INFO_VERSION)
        if version > INFO_VERSION:
            raise ValueError(
                f"kvlrp.json version {version} is newer than this kvlrp understands "
                f"({INFO_VERSION}); upgrade kvlrp"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [n for n in ("architecture", "classes") if n not in data]
        if missing:
            raise ValueError(f"kvlrp.json lacks required keys {missing}")
        unknown = {k: data.pop(k) for k in list(data) if k not in names}
        info = cls(**data)
        info.extra.update(unknown)
        return info
