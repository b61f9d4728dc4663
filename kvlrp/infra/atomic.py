"""Atomic file writes: a report is either the old file or the complete new one, never half.

Remote paths (any ``scheme://`` that ``tf.io.gfile`` understands, see :mod:`kvlrp.infra.fs`): the
content is written to a local temporary file, uploaded beside the destination under a
temporary name, then renamed over it with ``tf.io.gfile.rename(overwrite=True)``. That rename
is atomic where the filesystem's is (HDFS, ``ram://``, local); on object stores (``gs://``,
``s3://``) a rename is a server-side copy, and a single object only ever becomes visible
complete, so readers still see either the old or the whole new file. Concurrent writers to one
object: the last one wins (no locking).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None],
                 suffix: str = "") -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over ``path``.

    Parameters
    ----------
    path
        Final destination.
    write
        Writes the full content to the temporary path it is given (an empty file exists there
        already: overwrite it).
    suffix
        How the temporary file's name must end, for writers that check it (Keras wants
        ``".keras"`` or ``".weights.h5"``); ``""``: any name.

    Returns
    -------
    Path
        The destination.
    """
    from kvlrp.infra.fs import is_url

    if is_url(path):
        return _atomic_write_url(path, write, suffix)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the name TEMPORARY matches (remove_stray_temporaries cleans up after a killed process)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        # mkstemp creates owner-only files; give the report the mode a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


#: Names of :func:`atomic_write`'s temporary files: ``.NAME.XXXXXXXX.tmp[SUFFIX]`` (the eight
#: characters are :func:`tempfile.mkstemp`'s).
TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\..+)?$")


def remove_stray_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that :func:`atomic_write` calls killed mid-write left in
    ``folder`` and its subfolders (a SIGKILL runs no clean-up); returns what was deleted.

    Call it where no other process writes into ``folder`` (at the start of a run that owns
    it). A missing folder or a URL holds nothing to clean.
    """
    from kvlrp.infra.fs import is_url

    if is_url(folder) or not Path(folder).is_dir():
        return []
    removed = []
    for path in sorted(Path(folder).rglob(".*.tmp*")):
        if TEMPORARY.match(path.name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _atomic_write_url(path: Any, write: Callable[[Path], None], suffix: str) -> Any:
    """:func:`atomic_write` for a ``tf.io.gfile`` URL; returns a :class:`kvlrp.infra.fs.GPath`."""
    import uuid

    import tensorflow as tf

    from kvlrp.infra.fs import path as fs_path

    dest = fs_path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remote_tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.tmp"
    with tempfile.TemporaryDirectory(prefix="kvlrp-upload-") as local:
        local_tmp = Path(local) / (dest.name if dest.name.endswith(suffix)
                                   else f"{dest.name}{suffix}")
        write(local_tmp)
        try:
            tf.io.gfile.copy(str(local_tmp), str(remote_tmp), overwrite=True)
            tf.io.gfile.rename(str(remote_tmp), str(dest), overwrite=True)
        except BaseException:
            remote_tmp.unlink(missing_ok=True)
            raise
    return dest


def _current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv(df: Any, path: str | os.PathLike) -> Path:
    """Write a pandas DataFrame as CSV (no index), atomically."""
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON, atomically."""

    def _write(tmp: Path) -> None:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_to_builtin) + "\n")

    return atomic_write(path, _write)


def _to_builtin(value: Any) -> Any:
    """JSON fallback for numpy scalars and arrays."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
