"""Output paths built from data (video ids, class names) made flat, safe and confined to the
output folder, and output folders checked before any work."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from kvlrp.infra import fs

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Longest file-name part taken from data (file systems allow 255 bytes per name).
MAX_PART = 80


def safe_part(text: str, max_len: int = MAX_PART) -> str:
    """``text`` as one flat file-name part: only ``A-Za-z0-9._-``, no leading dot, at most
    ``max_len`` characters; a short hash of the original is appended whenever anything was
    changed, so two different ids never share a name.

    >>> safe_part("v01")
    'v01'
    >>> safe_part("../../x").startswith("x-")
    True
    """
    text = str(text)
    cleaned = _UNSAFE.sub("_", text).lstrip("._-")[:max_len]
    if cleaned == text and cleaned:
        return cleaned
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else digest


def confined(folder: str | os.PathLike, name: str) -> Path:
    """``folder / name`` after checking that it is a direct child of ``folder`` (no
    separators, no ``..``, no symlink leaving it).

    Raises
    ------
    ValueError
        ``name`` would leave ``folder``.
    """
    if fs.is_url(folder):  # object stores: no symlinks; the name rules alone confine it
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"refusing to write {name!r}: it would leave the output folder "
                             f"{folder}")
        return fs.path(folder) / name
    folder = Path(folder)
    path = folder / name
    if (os.sep in name or (os.altsep and os.altsep in name) or name in ("", ".", "..")
            or path.resolve().parent != folder.resolve()):
        raise ValueError(f"refusing to write {name!r}: it would leave the output folder {folder}")
    return path


def check_out_dir(out_dir: str | os.PathLike, option: str = "--out") -> Path | fs.GPath:
    """``out_dir`` as a Path, refused (before any work) if it exists and is not a folder, or
    if the nearest existing parent is not a folder."""
    if fs.is_url(out_dir):  # object stores: folders are name prefixes, nothing to check
        return fs.path(out_dir)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option} {out} is a file, not a folder; name a folder (it is created)")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{option} {out}: {parent} is a file, not a folder")
            break
    return out

