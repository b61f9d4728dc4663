"""The one error path of the command line: :class:`CommandError`.

A command raises it for a problem with the user's input or data; :func:`kvlrp.cli.main` turns it
into one line on stderr (``kvlrp COMMAND: message``) and exit status 2. No traceback is shown
for it; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

#: Library exceptions that mean "the input is wrong" (their message says what and what is right).
BAD_INPUT: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError)


class CommandError(Exception):
    """A problem with the user's input, shown as one line on stderr with exit status 2."""


@contextmanager
def bad_input_is_a_command_error(
    kinds: tuple[type[BaseException], ...] = BAD_INPUT,
) -> Iterator[None]:
    """Re-raise ``kinds`` raised in the block as :class:`CommandError` (same message)."""
    try:
        yield
    except kinds as err:
        raise CommandError(" ".join(str(err).split()) or type(err).__name__) from err
