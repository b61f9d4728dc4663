"""``kvlrp report``: plots, ``report.md`` and a self-contained ``report.html`` from the outputs
of explain/strides runs."""

from __future__ import annotations

import argparse

from kvlrp.commands.shared import preflight
from kvlrp.commands.shared.errors import bad_input_is_a_command_error

HELP = ("plots (PNG), report.md and a self-contained report.html from explain/strides results "
        "in a folder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``kvlrp report`` options to ``parser``."""
    parser.add_argument("dir", help="folder holding explain and/or strides outputs (or their "
                                    "parent folder)")


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse a folder the report and its plots cannot be written into, before any work."""
    preflight.existing(args.dir, "DIR", "a folder holding explain and/or strides outputs")
    preflight.out_dir(args.dir, "DIR")


def run(args: argparse.Namespace) -> int:
    """Run ``kvlrp report``."""
    from kvlrp.analysis.report.markdown import build_report

    with bad_input_is_a_command_error():
        path = build_report(args.dir)
    print(f"report: {path}")
    print(f"html:   {path.parent / 'report.html'} (self-contained: images embedded)")
    print(f"plots:  {path.parent / 'plots'}")
    return 0
