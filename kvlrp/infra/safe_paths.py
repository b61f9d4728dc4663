"""Output paths built from data (video ids, class names) made flat, safe and confined to the
output folder, and output folders checked before any work."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
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
    """``out_dir`` as a Path, refused (before any work) where no run could write it: a file in
    the way (``out_dir`` itself or a parent), a kernel pseudo-filesystem (``/proc``, ``/sys``),
    or a folder this process cannot create entries in (permissions, a read-only mount).

    Nothing is left behind: the write check creates and removes an empty folder in the
    nearest existing folder. URLs (object stores) are not checked.

    Raises
    ------
    ValueError
        One line naming ``option``, the path, what is wrong and what would be right.
    """
    if fs.is_url(out_dir):  # object stores: folders are name prefixes, nothing to check
        return fs.path(out_dir)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option} {out} is a file, not a folder; name a folder (it is created)")
    existing = out if out.exists() else next(p for p in out.parents if p.exists())
    if not existing.is_dir():
        raise ValueError(f"{option} {out}: {existing} is a file, not a folder")
    kind = filesystem_type(existing)
    if kind in PSEUDO_FILESYSTEMS:
        raise ValueError(f"{option} {out} is on {kind}, a kernel pseudo-filesystem that holds "
                         "no files; name a folder on a disk")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".kvlrp-write-check-", dir=existing))
    except OSError as err:
        raise ValueError(f"{option} {out}: cannot write in {existing} ({err.strerror}); name a "
                         "folder you can write to") from None
    return out


def check_out_file(out_file: str | os.PathLike, option: str = "--out") -> Path:
    """``out_file`` as a Path, refused (before any work) if it is a folder or if its folder
    fails :func:`check_out_dir`."""
    out = Path(out_file)
    if out.is_dir():
        raise ValueError(f"{option} {out} is a folder; name a file (e.g. {out / 'manifest.csv'})")
    check_out_dir(out.parent, option=f"{option} {out}:")
    return out


#: Filesystem types that hold no files of their own (kernel interfaces, device nodes).
PSEUDO_FILESYSTEMS = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
    "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "proc", "pstore",
    "rpc_pipefs", "securityfs", "sysfs", "tracefs",
})


def filesystem_type(path: str | os.PathLike) -> str | None:
    """Type of the filesystem holding ``path`` (``ext4``, ``proc``, ...), read from
    ``/proc/self/mountinfo``; None where that is not available (not Linux)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    best, kind = "", None
    for line in lines:
        fields = line.split()
        if "-" not in fields or len(fields) < 5:
            continue
        mount_point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        inside = (target == mount_point or mount_point == "/"
                  or target.startswith(mount_point.rstrip("/") + "/"))
        if inside and len(mount_point) >= len(best):
            best, kind = mount_point, fields[fields.index("-") + 1]
    return kind
