"""``kvlrp merge``: the final tables of ``kvlrp explain`` or ``kvlrp strides`` from the folders
of several workers (``--num-workers N --worker-index I``)."""

from __future__ import annotations

import argparse

from kvlrp.commands.shared import preflight
from kvlrp.commands.shared.errors import bad_input_is_a_command_error

HELP = "combine the partial tables of explain/strides workers into the final tables"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``kvlrp merge``."""
    parser.add_argument("dirs", nargs="+", metavar="DIR",
                        help="output folders of all workers of one explain or strides run")
    parser.add_argument("--out", required=True, help="folder for the final tables")


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse a folder for the final tables that cannot be written, before any work."""
    preflight.out_dir(args.out)


def run(args: argparse.Namespace) -> int:
    """Merge the workers' folders and print the summary, as the single-machine command does."""
    from kvlrp.analysis.runs.merge import merge_runs

    with bad_input_is_a_command_error():
        summary = merge_runs(args.dirs, args.out)
    print(f"merged {len(args.dirs)} worker folder(s) of kvlrp {summary['kind']}")
    if summary["kind"] == "explain":
        from kvlrp.commands.explain import print_explain_summary

        print_explain_summary(summary, args.out)
    else:
        from kvlrp.commands.strides import print_strides_summary

        print_strides_summary(summary, args.out)
    return 0
