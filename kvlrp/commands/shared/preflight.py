"""Checks a command runs in its ``check_arguments(args)``, before TensorFlow starts and before
the device line: output folders and files can be written, input paths named by options exist.
Each failure is a :class:`~kvlrp.commands.shared.errors.CommandError` (one line, exit 2)."""

from __future__ import annotations

import os
from pathlib import Path

from kvlrp.commands.shared.errors import CommandError, bad_input_is_a_command_error
from kvlrp.infra.fs import is_url
from kvlrp.infra.safe_paths import check_out_dir, check_out_file


def out_dir(path: str | os.PathLike, option: str = "--out") -> None:
    """Refuse an output folder no run could write (see
    :func:`kvlrp.infra.safe_paths.check_out_dir`)."""
    with bad_input_is_a_command_error():
        check_out_dir(path, option)


def out_file(path: str | os.PathLike, option: str = "--out") -> None:
    """Refuse an output file whose folder no run could write (see
    :func:`kvlrp.infra.safe_paths.check_out_file`)."""
    with bad_input_is_a_command_error():
        check_out_file(path, option)


def existing(path: str | os.PathLike | None, option: str, what: str) -> None:
    """Refuse a local input path (``option``, which should be ``what``) that does not exist;
    None (not given) and URLs pass."""
    if path is None or is_url(path) or Path(path).exists():
        return
    raise CommandError(f"{option} {path} does not exist: pass {what}")
