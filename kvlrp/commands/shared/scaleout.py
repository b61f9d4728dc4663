"""Options shared by ``kvlrp explain`` and ``kvlrp strides`` for several devices and workers
(not a sub-command itself)."""

from __future__ import annotations

import argparse
from typing import Any

from kvlrp.commands.shared.options import non_negative_int, positive_int


def add_scale_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--strategy``, ``--num-workers`` and ``--worker-index`` to ``parser``."""
    group = parser.add_argument_group("several devices or workers")
    group.add_argument("--strategy", default="default", choices=["default", "mirrored"],
                       help="mirrored: split each batch over the local GPUs (else the logical "
                            "CPU devices)")
    group.add_argument("--num-workers", type=positive_int, default=None,
                       help="workers sharing the videos (default: from TF_CONFIG, else 1); "
                            "each writes partial tables, `kvlrp merge` combines them")
    group.add_argument("--worker-index", type=non_negative_int, default=None,
                       help="this worker's index, 0..N-1 (default: from TF_CONFIG)")


def scale_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``worker=`` and ``devices=`` for ``run_explain`` / ``run_strides`` (ValueError on bad
    options or TF_CONFIG)."""
    from kvlrp.analysis.runs.devices import strategy_devices
    from kvlrp.analysis.runs.partition import resolve_worker

    return {"worker": resolve_worker(args.num_workers, args.worker_index),
            "devices": strategy_devices(args.strategy)}


def print_worker_summary(command: str, summary: dict) -> None:
    """What a worker run wrote and how to combine it."""
    n, i = summary["worker"]
    print(f"kvlrp {command}: worker {i} of {n} evaluated {summary['n_videos']} video(s); "
          f"partial tables in {summary['out']}/partial")
    print(f"combine all {n} workers' folders with: kvlrp merge DIR0 ... DIR{n - 1} --out OUT")
