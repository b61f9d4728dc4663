"""Errors raised while reading videos."""

from __future__ import annotations

import os


class VideoReadError(ValueError):
    """A video could not be read (missing, empty, corrupt, truncated, not a video, unreadable).

    Parameters
    ----------
    path
        The file or frame folder that failed.
    reason
        What went wrong, in words a user can act on.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read video {self.path}: {reason}")

    def __reduce__(self):  # keep (path, reason) through pickling (process pools)
        return (type(self), (self.path, self.reason))


class BackendUnavailableError(RuntimeError):
    """The requested decoding backend cannot run on this system; the message says why."""
