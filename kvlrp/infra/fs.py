"""Paths on local disks and on any filesystem ``tf.io.gfile`` understands.

``gs://`` (built into TensorFlow), ``s3://`` and ``hdfs://`` (through tensorflow-io), and
TensorFlow's in-memory ``ram://`` all work wherever kvlrp takes a path: :func:`path` gives a
:class:`pathlib.Path` for a local path (nothing changes there) and a :class:`GPath`, a small
``pathlib``-like object backed by ``tf.io.gfile``, for a URL. :func:`read_csv` and
:func:`open_file` read either.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(path: Any) -> bool:
    """True for ``scheme://...`` paths (read and written through ``tf.io.gfile``)."""
    return isinstance(path, GPath) or bool(_URL.match(str(path)))


def path(p: str | os.PathLike | GPath) -> Path | GPath:
    """A :class:`pathlib.Path` for a local path, a :class:`GPath` for a URL."""
    if isinstance(p, GPath):
        return p
    return GPath(str(p)) if is_url(p) else Path(p)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


class GPath:
    """A URL (``gs://bucket/a/b``) with the parts of :class:`pathlib.Path` kvlrp uses."""

    def __init__(self, url: str):
        scheme, rest = url.split("://", 1)
        rest = rest.rstrip("/") if rest not in ("", "/") else rest
        self._scheme, self._rest = scheme, rest

    # --- pure path operations ---
    def __str__(self) -> str:
        return f"{self._scheme}://{self._rest}"

    def __repr__(self) -> str:
        return f"GPath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GPath) and str(self) == str(other)

    def __lt__(self, other: GPath) -> bool:
        return str(self) < str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __truediv__(self, other: str | os.PathLike) -> GPath:
        other = str(other)
        if is_url(other):
            return GPath(other)
        return GPath(f"{self._scheme}://{posixpath.join(self._rest, other)}")

    @property
    def name(self) -> str:
        return posixpath.basename(self._rest)

    @property
    def suffix(self) -> str:
        return posixpath.splitext(self.name)[1]

    @property
    def stem(self) -> str:
        return posixpath.splitext(self.name)[0]

    @property
    def parent(self) -> GPath:
        return GPath(f"{self._scheme}://{posixpath.dirname(self._rest)}")

    def with_name(self, name: str) -> GPath:
        return self.parent / name

    def with_suffix(self, suffix: str) -> GPath:
        return GPath(f"{self._scheme}://{posixpath.splitext(self._rest)[0]}{suffix}")

    def resolve(self) -> GPath:
        return GPath(f"{self._scheme}://{posixpath.normpath(self._rest)}")

    def is_absolute(self) -> bool:
        return True

    def as_posix(self) -> str:
        return str(self)

    # --- filesystem operations (tf.io.gfile) ---
    def exists(self) -> bool:
        return _gfile().exists(str(self))

    def is_dir(self) -> bool:
        return _gfile().isdir(str(self))

    def is_file(self) -> bool:
        return self.exists() and not self.is_dir()

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        if self.is_dir():
            if not exist_ok:
                raise FileExistsError(str(self))
            return
        _gfile().makedirs(str(self)) if parents else _gfile().mkdir(str(self))

    def open(self, mode: str = "r") -> IO:
        return _gfile().GFile(str(self), mode)

    def read_bytes(self) -> bytes:
        with self.open("rb") as f:
            return f.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> None:
        with self.open("wb") as f:
            f.write(data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def unlink(self, missing_ok: bool = False) -> None:
        if missing_ok and not self.exists():
            return
        _gfile().remove(str(self))

    def iterdir(self):
        return (self / name.rstrip("/") for name in _gfile().listdir(str(self)))

    def glob(self, pattern: str):
        return (GPath(p) for p in sorted(_gfile().glob(str(self / pattern))))


@contextlib.contextmanager
def local_copy(p: str | os.PathLike | GPath) -> Iterator[Path]:
    """A local file with the content of ``p`` (``p`` itself when local; for a URL a temporary
    copy with the same name, removed afterwards), for libraries that need a local path."""
    p = path(p)
    if isinstance(p, Path):
        yield p
        return
    with tempfile.TemporaryDirectory(prefix="kvlrp-copy-") as local:
        copy = Path(local) / p.name
        _gfile().copy(str(p), str(copy), overwrite=True)
        yield copy


def replace(src: str | os.PathLike | GPath, dst: str | os.PathLike | GPath) -> None:
    """Rename ``src`` over ``dst`` (``os.replace`` locally, ``tf.io.gfile.rename`` on a URL)."""
    if is_url(src) or is_url(dst):
        _gfile().rename(str(src), str(dst), overwrite=True)
    else:
        os.replace(src, dst)


def file_size(p: str | os.PathLike | GPath) -> int | None:
    """Size in bytes of a local file or a URL (``None`` where there is no such file)."""
    p = path(p)
    if isinstance(p, Path):
        return p.stat().st_size if p.is_file() else None
    return _gfile().stat(str(p)).length if p.is_file() else None


def open_file(p: str | os.PathLike | GPath, mode: str = "rb") -> IO:
    """Open a local file or a URL."""
    p = path(p)
    return p.open(mode)


def file_sha256(p: str | os.PathLike | GPath, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of the bytes of a local file or a URL, read ``chunk`` bytes at a time."""
    digest = hashlib.sha256()
    with open_file(p, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def read_csv(p: str | os.PathLike | GPath, **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv`` of a local path or a URL."""
    p = path(p)
    if isinstance(p, Path):
        return pd.read_csv(p, **kwargs)
    with p.open("rb") as f:
        return pd.read_csv(f, **kwargs)
