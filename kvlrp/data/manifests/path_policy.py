"""Which manifest paths ``kvlrp prepare`` may open: by default only files inside the manifest's
folder (no absolute paths elsewhere, no ``..`` out of it, no symlinks leading out of it)."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any

from kvlrp.data.manifests.manifest import ManifestError
from kvlrp.infra import fs

ALLOW_HINT = "--allow-outside-root (allow_outside_root=True)"


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def outside_root_reason(path: str | os.PathLike, root: str | os.PathLike) -> str | None:
    """Why ``path`` may not be read under ``root`` (``None``: it may).

    The reason never names where a symlink points. On a URL root (``gs://``, ``ram://``: no
    symlinks) the check is by name: ``path`` must lie under ``root`` after ``..`` is resolved.
    """
    if fs.is_url(root) or fs.is_url(path):
        scheme_root, scheme_path = str(root).rstrip("/"), str(path)
        head, _, rest = scheme_path.partition("://")
        normal = f"{head}://{posixpath.normpath(rest)}" if rest else scheme_path
        return None if normal.startswith(scheme_root + "/") else "outside"
    root_abs = Path(os.path.abspath(root))
    lexical = Path(os.path.abspath(path))
    if not _within(lexical, root_abs):
        return "outside"
    if not _within(Path(os.path.realpath(lexical)), Path(os.path.realpath(root_abs))):
        return "a symlink leading outside"
    return None


def check_inside_root(manifest: Any) -> None:
    """Refuse (before anything is read) a manifest listing files outside its folder.

    Raises
    ------
    ManifestError
        One line: how many paths, the first of them as listed (a symlink's target is never
        named), the manifest's folder, and the two ways out.
    """
    root = manifest.root or (manifest.source.parent if manifest.source is not None else None)
    if root is None:
        return
    bad = [(vid, path, reason) for vid, path in zip(manifest.table["video_id"],
                                                    manifest.table["path"])
           if (reason := outside_root_reason(path, root))]
    if bad:
        vid, path, reason = bad[0]
        where = f"manifest {manifest.source}" if manifest.source else "manifest"
        raise ManifestError(
            f"{where} lists {len(bad)} video(s) outside its folder {Path(os.path.abspath(root))}"
            f", e.g. {path} (video_id {vid!r}: {reason}); put the manifest in a folder that "
            f"holds the videos, or pass {ALLOW_HINT} to read them anyway")
