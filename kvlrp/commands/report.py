"""``kvlrp report``: plots, ``report.md`` and a self-contained ``report.html`` from the outputs
of explain/strides runs."""

from __future__ import annotations

import argparse

from kvlrp.commands.shared.errors import bad_input_is_a_command_error

HELP = ("plots (PNG), report.md and a self-contained report.html from explain/strides results "
        "in a folder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``kvlrp report`` options to ``parser``."""
    parser.add_argument("dir", help="folder holding explain and/or strides outputs (or their "
                                    "parent folder)")


def run(args: argparse.Namespace) -> int:
    """Run ``kvlrp report``."""
    from kvlrp.analysis.report.markdown import build_report

    with bad_input_is_a_command_error():
        path = build_report(args.dir)
    print(f"report: {path}")
    print(f"html:   {path.parent / 'report.html'} (self-contained: images embedded)")
    print(f"plots:  {path.parent / 'plots'}")
    return 0
