"""Progress bars on a terminal only: a log file, a pipe or a notebook gets none (the one helper
every command and library run uses)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO


def on_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: ``sys.stderr``, where bars go) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool = True,
                 **options: Any) -> Any:
    """A tqdm bar over ``iterable`` (or one updated by hand, given ``total=``), shown only if
    ``enabled`` and stderr is a terminal; otherwise a silent one with the same methods.

    ``options`` are tqdm's (``total``, ``desc``, ``unit``, ...).
    """
    from tqdm import tqdm

    return tqdm(iterable, disable=not (enabled and on_terminal()), **options)
