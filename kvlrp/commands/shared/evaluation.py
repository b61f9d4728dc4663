"""What ``kvlrp explain`` and ``kvlrp strides`` share on the command line: the options naming
the model, data and output folder, the clip options, the run options, and running one of them
(or one of its workers)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from kvlrp.commands.shared.errors import bad_input_is_a_command_error
from kvlrp.commands.shared.model_args import add_model_arguments, load_from_args
from kvlrp.commands.shared.options import count_or_all, positive_int
from kvlrp.commands.shared.scaleout import add_scale_arguments, print_worker_summary
from kvlrp.data.clips.spec import CROPS, DEFAULT_CROPS

#: ``run_explain`` / ``run_strides``: ``(model, info, shard_dir, out_dir, config=...,
#: model_path=...) -> dict``.
Runner = Callable[..., dict]


def add_data_arguments(parser: argparse.ArgumentParser, out_help: str) -> None:
    """Add the model options, ``--data`` and ``--out`` (described by ``out_help``)."""
    add_model_arguments(parser)
    parser.add_argument("--data", required=True, help="shard folder written by `kvlrp prepare`")
    parser.add_argument("--out", required=True, help=out_help)


def add_clip_arguments(parser: argparse.ArgumentParser, verb: str, crops_note: str) -> None:
    """Add ``--split`` (the split to ``verb``), ``--clips-per-video`` and ``--crops`` (its
    choices and default those of :mod:`kvlrp.data.clips.spec`; ``crops_note`` ends its
    help)."""
    parser.add_argument("--split", default="test", help=f"split to {verb} (default test)")
    parser.add_argument("--clips-per-video", type=count_or_all, default=4,
                        help="evaluation clips per video (int or 'all', default 4)")
    parser.add_argument("--crops", type=int, default=DEFAULT_CROPS, choices=CROPS,
                        help="spatial crops per clip: 1 (centre, default) or 3 (start, centre "
                             "and end of the longer side" + crops_note)


def add_run_arguments(parser: argparse.ArgumentParser, batch_size: int,
                      seed_help: str) -> None:
    """Add ``--batch-size``, ``--seed``, ``--no-progress`` and the scale-out options."""
    parser.add_argument("--batch-size", type=positive_int, default=batch_size)
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_scale_arguments(parser)


def run_command(name: str, args: argparse.Namespace,
                config_from_args: Callable[[argparse.Namespace], Any], runner: Runner,
                print_summary: Callable[[dict, str], None]) -> int:
    """Run ``kvlrp NAME``: its config from ``args``, the model, ``runner``; then print the
    summary, or what one of several workers wrote."""
    with bad_input_is_a_command_error(shards=args.data):
        config = config_from_args(args)
        model, info = load_from_args(args)
        summary = runner(model, info, args.data, args.out, config=config,
                         model_path=args.model)
    if summary["kind"] == f"{name}-worker":
        print_worker_summary(name, summary)
        return 0
    print_summary(summary, args.out)
    return 0
