"""The ``kvlrp`` console script: one sub-command per module in :mod:`kvlrp.commands`.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Command modules import TensorFlow lazily (inside ``run``) so that ``kvlrp --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

#: Sub-command name -> module under ``kvlrp.commands``, in the order ``--help`` lists them.
COMMANDS: dict[str, str] = {
    "demo": "demo",
    "synth": "synth",
    "manifest": "manifest",
    "prepare": "prepare",
    "train": "train",
    "explain": "explain",
    "strides": "strides",
    "report": "report",
    "merge": "merge",
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="kvlrp",
        description="Explain 3D-conv Keras video classifiers; tune their step size at test time.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(f"kvlrp.commands.{module_name}")
        except ModuleNotFoundError as err:  # a command not built yet
            if err.name != f"kvlrp.commands.{module_name}":
                raise
            continue
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kvlrp`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("kvlrp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
