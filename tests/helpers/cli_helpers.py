"""Helpers for tests of the command line's error path."""

from __future__ import annotations

from kvlrp.cli import main as cli_main


def main(argv: list[str]) -> int:
    """The CLI's exit status, returned or given to argparse's ``SystemExit``."""
    try:
        return cli_main(argv)
    except SystemExit as exit_info:
        return int(exit_info.code)


def one_line(text: str) -> str:
    """The only non-empty line of ``text`` (asserting there is exactly one, no traceback)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]
