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
    kinds: tuple[type[BaseException], ...] = BAD_INPUT, shards: str | None = None,
) -> Iterator[None]:
    """Re-raise ``kinds`` raised in the block as :class:`CommandError` (same message).

    With ``shards`` (the shard folder the block reads), TensorFlow's error for a damaged
    TFRecord file becomes a :class:`CommandError` naming the file and how to rebuild it.
    """
    try:
        yield
    except kinds as err:
        raise CommandError(" ".join(str(err).split()) or type(err).__name__) from err
    except Exception as err:
        if shards is None:
            raise
        from kvlrp.data.shards.shard_errors import corrupt_shards_message, is_data_loss

        if not is_data_loss(err):
            raise
        raise CommandError(corrupt_shards_message(err, shards)) from err
