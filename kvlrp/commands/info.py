"""``kvlrp info``: the software and hardware this run would use."""

from __future__ import annotations

import argparse

from kvlrp.infra.environment import environment_info

HELP = "print TensorFlow/Keras versions, devices, CPU model, threads and whether oneDNN is on"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``kvlrp info`` takes no options."""


def run(args: argparse.Namespace) -> int:
    """Run ``kvlrp info``."""
    for label, value in environment_info().items():
        print(f"{label + ':':15s}{value}")
    return 0
