"""An exclusive lock on an output folder, so two runs never write into one folder at once.

The lock is ``fcntl.flock`` on ``<folder>/.kvlrp.lock``: the operating system releases it when
the process ends, however it ends, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".kvlrp.lock"


class FolderBusyError(ValueError):
    """Another process holds the folder's lock."""


@contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "kvlrp") -> Iterator[Path]:
    """Hold the lock of ``folder`` (created) for the block; refuse at once if it is taken.

    Raises
    ------
    FolderBusyError
        Another run (``what``) is writing into ``folder``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            yield folder
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusyError(
                f"another {what} run is writing into {folder}; wait for it to finish or use "
                "another output folder") from None
        try:
            yield folder
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
