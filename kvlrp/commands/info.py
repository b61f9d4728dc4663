"""``kvlrp info``: the software and hardware this run would use."""

from __future__ import annotations

import argparse
import os
import platform

HELP = "print TensorFlow/Keras versions, devices, CPU model, threads and whether oneDNN is on"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``kvlrp info`` takes no options."""


def environment_info() -> dict[str, str]:
    """What ``kvlrp info`` prints, as ``{label: value}`` (imports TensorFlow)."""
    import keras
    import tensorflow as tf

    from kvlrp import __version__
    from kvlrp.infra.tfsetup import ONEDNN_VAR, chosen_by_kvlrp, cpu_model, onednn_enabled

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    devices = ", ".join(f"{d.name} ({d.device_type})" for d in tf.config.list_logical_devices())
    var = os.environ.get(ONEDNN_VAR)
    if var is None:
        why = "unset: TensorFlow's default for this CPU"
    else:
        why = f"{var}, set by kvlrp" if chosen_by_kvlrp() else f"{var}, set by the user"
    return {
        "kvlrp": __version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras backend": keras.backend.backend(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu": cpu_model(),
        "cpu cores": f"{os.cpu_count()} (usable by this process: {usable})",
        "threads": (f"intra-op {intra or 'default (all cores)'}, "
                    f"inter-op {inter or 'default'}, "
                    f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"),
        "devices": devices or "none",
        "onednn": f"{'on' if onednn_enabled() else 'off'} ({ONEDNN_VAR}={why})",
    }


def run(args: argparse.Namespace) -> int:
    """Run ``kvlrp info``."""
    for label, value in environment_info().items():
        print(f"{label + ':':15s}{value}")
    return 0
