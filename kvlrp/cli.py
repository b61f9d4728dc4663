"""The ``kvlrp`` console script: one sub-command per module in :mod:`kvlrp.commands`.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``;
it raises :class:`kvlrp.commands.shared.errors.CommandError` for bad input, which :func:`main`
prints as
one line on stderr with exit status 2. A command module that fails to import is an error.
Command modules import TensorFlow lazily (inside ``run``) so that ``kvlrp --help`` stays fast
and so that :func:`kvlrp.infra.tfsetup.prefer_onednn` can choose TensorFlow's CPU kernels before
TensorFlow loads.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from kvlrp.commands.shared.errors import CommandError
from kvlrp.infra.environment import record_command
from kvlrp.infra.tfsetup import prefer_onednn

#: Sub-command name -> module under ``kvlrp.commands``, in the order ``--help`` lists them.
COMMANDS: dict[str, str] = {
    "demo": "demo",
    "synth": "synth",
    "manifest": "manifest",
    "prepare": "prepare",
    "train": "train",
    "explain": "explain",
    "strides": "strides",
    "study": "study",
    "report": "report",
    "info": "info",
    "merge": "merge",
}


#: Commands that import TensorFlow (quietly, see :mod:`kvlrp.infra.runtime`); those in
#: :data:`DEVICE_COMMANDS` also print the device line.
TF_COMMANDS = {"demo", "prepare", "train", "explain", "strides"}
DEVICE_COMMANDS = {"demo", "train", "explain", "strides"}


class _OneLineParser(argparse.ArgumentParser):
    """Bad command-line options give one line on stderr (and exit status 2), like bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available sub-command."""
    parser = _OneLineParser(
        prog="kvlrp",
        description="Explain 3D-conv Keras video classifiers; tune their step size at test time.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"kvlrp.commands.{module_name}")
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the message."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def show_library_messages() -> None:
    """Show what ``kvlrp`` and ``analyzers`` log (INFO and up) on stderr, one line each.

    Library code reports through :mod:`logging`; only the command line decides where it goes.
    Loggers the application has given handlers of its own are left alone.
    """
    for name in ("kvlrp", "analyzers"):
        logger = logging.getLogger(name)
        if logger.handlers:
            continue
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("kvlrp: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kvlrp`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    arguments = list(sys.argv[1:] if argv is None else argv)
    record_command(["kvlrp", *arguments])  # the `command` of every result's provenance
    args = build_parser().parse_args(arguments)
    show_library_messages()
    message = prefer_onednn()  # before any command imports TensorFlow
    if message:
        print(message, file=sys.stderr)
    try:
        if args.command in TF_COMMANDS:
            from kvlrp.infra.runtime import start_tensorflow

            device = start_tensorflow()
            if args.command in DEVICE_COMMANDS:
                print(device, flush=True)
        return int(args._run(args) or 0)
    except CommandError as err:  # bad input: one line saying what is wrong, no traceback
        print(f"kvlrp {args.command}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kvlrp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
