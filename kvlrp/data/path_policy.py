"""Which manifest paths ``kvlrp prepare`` may open: by default only files inside the manifest's
folder (no absolute paths elsewhere, no ``..`` out of it, no symlinks leading out of it)."""

from __future__ import annotations

import os
from pathlib import Path

ALLOW_HINT = "pass --allow-outside-root to read files outside it"


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def outside_root_reason(path: str | os.PathLike, root: str | os.PathLike) -> str | None:
    """Why ``path`` may not be read under ``root`` (``None``: it may).

    The reason never names where a symlink points (``skipped.csv`` must not disclose it).
    """
    root_abs = Path(os.path.abspath(root))
    lexical = Path(os.path.abspath(path))
    if not _within(lexical, root_abs):
        return f"outside the manifest's folder {root_abs}; {ALLOW_HINT}"
    if not _within(Path(os.path.realpath(lexical)), Path(os.path.realpath(root_abs))):
        return f"a symlink leading outside the manifest's folder {root_abs}; {ALLOW_HINT}"
    return None
