"""Resume or recompute: the one place that reads, writes and compares a run's saved state.

A resumable unit of work (a step of ``kvlrp explain``, a run key of ``kvlrp strides``, a
``kvlrp train`` run) keeps a JSON *state file* ``{"settings": {...}, ...}``: the settings its
results depend on (data fingerprint, clip settings, the model's weight fingerprint
:func:`fingerprint`, ...) and whatever else the caller needs (videos done, tables, epoch).
:func:`check` compares it with the current settings and returns a :class:`Decision`: reuse the
saved state, or recompute, and why (no state file, an unreadable one, or which settings
changed, from what to what). :func:`save` writes a state file atomically
(:mod:`kvlrp.infra.atomic`); paths may be local or any ``tf.io.gfile`` URL (:mod:`kvlrp.infra.fs`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kvlrp.infra import fs
from kvlrp.infra.atomic import write_json

#: The name :attr:`Decision.changed` gives an unreadable state file (no setting is known).
UNREADABLE = "(unreadable state file)"


class UnreadableStateError(ValueError):
    """A state file that exists but is not a JSON object (a truncated or foreign file)."""


@dataclass(frozen=True)
class Decision:
    """Whether a saved state may be reused.

    Attributes
    ----------
    saved
        The whole saved state as read (None: no state file, or an unreadable one), also when
        its settings differ.
    differences
        ``(setting, saved value, current value)`` of each setting that differs.
    reason
        Why the state is reused or recomputed, one line.
    unreadable
        True when the state file exists but could not be read.
    """

    saved: dict[str, Any] | None
    differences: tuple[tuple[str, Any, Any], ...]
    reason: str
    unreadable: bool = False

    @property
    def reuse(self) -> bool:
        """True when the saved state was written with the current settings."""
        return self.saved is not None and not self.differences and not self.unreadable

    @property
    def state(self) -> dict[str, Any] | None:
        """The saved state if it may be reused, else None."""
        return self.saved if self.reuse else None

    @property
    def changed(self) -> list[str]:
        """The settings that differ (``[UNREADABLE]`` for an unreadable file, ``[]`` for a
        missing one or a match)."""
        if self.unreadable:
            return [UNREADABLE]
        return [key for key, _, _ in self.differences]

    def describe(self) -> str:
        """``"key: saved -> current, ..."`` of the differing settings."""
        return ", ".join(f"{k}: {old!r} -> {new!r}" for k, old, new in self.differences)


def fingerprint(model: Any) -> str:
    """SHA-1 of the model's weights (results of another model are never reused)."""
    digest = hashlib.sha1()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def read(path: str | os.PathLike | fs.GPath) -> dict[str, Any] | None:
    """The state saved in ``path``, or None if there is no such file.

    Raises
    ------
    UnreadableStateError
        The file exists but does not hold a JSON object; the message names the file.
    """
    path = fs.path(path)
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as err:  # (UnicodeDecodeError is a ValueError)
        raise UnreadableStateError(f"state file {path} is unreadable ({err})") from err
    if not isinstance(state, dict):
        raise UnreadableStateError(f"state file {path} holds a {type(state).__name__}, "
                                   "not a JSON object")
    return state


def compare(saved: dict[str, Any] | None, settings: dict[str, Any],
            keys: Iterable[str] | None = None) -> Decision:
    """Compare a saved state's ``settings`` with the current ``settings``.

    Parameters
    ----------
    saved
        A state as :func:`read` returns it (None: nothing saved).
    settings
        The current settings.
    keys
        The settings that must match, in the order to report them; None: all of either side
        (reported sorted).
    """
    if saved is None:
        return Decision(None, (), "no saved state")
    old = saved.get("settings") or {}
    names = list(keys) if keys is not None else sorted(set(old) | set(settings))
    differences = tuple((k, old.get(k), settings.get(k)) for k in names
                        if old.get(k) != settings.get(k))
    if differences:
        shown = ", ".join(f"{k}: {o!r} -> {n!r}" for k, o, n in differences)
        return Decision(saved, differences, f"written with other settings ({shown})")
    return Decision(saved, (), "written with the same settings")


def check(path: str | os.PathLike | fs.GPath, settings: dict[str, Any],
          keys: Iterable[str] | None = None,
          upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Decision:
    """Whether the state saved in ``path`` may be reused with ``settings``.

    A missing file or an unreadable one is never fatal: the decision is to recompute, and
    :attr:`Decision.reason` says why. ``upgrade`` turns a state of an older layout (e.g. its
    settings under another name) into this module's ``{"settings": ..., ...}`` before the
    comparison; it is given every state read and returns it unchanged if it is current.
    """
    try:
        saved = read(path)
    except UnreadableStateError as err:
        return Decision(None, (), str(err), unreadable=True)
    if saved is None:
        return Decision(None, (), f"no state file {fs.path(path)}")
    if upgrade is not None:
        saved = upgrade(saved)
    return compare(saved, settings, keys)


def document(settings: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The state file content: ``settings`` plus the caller's ``fields``."""
    if "settings" in fields:
        raise TypeError("the settings are given once, as the first argument")
    return {"settings": settings, **fields}


def save(path: str | os.PathLike | fs.GPath, settings: dict[str, Any],
         **fields: Any) -> Path | fs.GPath:
    """Write the state file ``{"settings": settings, **fields}`` atomically; returns its
    path."""
    return write_json(document(settings, **fields), path)
