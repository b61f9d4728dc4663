"""What this process runs on and as: software versions, devices, CPU, TensorFlow's CPU kernel
set and the command line.

The one source of these facts: ``kvlrp info`` prints :func:`environment_info`, and every run's
``provenance`` (:mod:`kvlrp.infra.provenance`) records :func:`software`, :func:`device`,
:func:`kernel_set`, the CPU and :func:`command`. Everything but :func:`command` imports
TensorFlow.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence

from kvlrp.infra.tfsetup import ONEDNN_VAR, chosen_by_kvlrp, cpu_model, onednn_enabled

__all__ = ["command", "cpu_model", "device", "environment_info", "kernel_set",
           "record_command", "software"]

#: The command line :func:`record_command` was given (None: use ``sys.argv``).
_command: list[str] | None = None


def record_command(argv: Sequence[str]) -> None:
    """Remember this process's command line as the user typed it (``kvlrp.cli.main`` calls
    this once, with ``["kvlrp", *arguments]``)."""
    global _command
    _command = [str(a) for a in argv]


def command() -> list[str]:
    """The command line that started this work: what :func:`record_command` was given, else
    ``sys.argv`` (a Python script's own command line)."""
    return list(_command) if _command is not None else [str(a) for a in sys.argv]


def software() -> dict[str, str]:
    """``{"kvlrp": ..., "tensorflow": ..., "keras": ...}`` versions."""
    import keras
    import tensorflow as tf

    from kvlrp import __version__

    return {"kvlrp": __version__, "tensorflow": tf.__version__, "keras": keras.__version__}


def kernel_set() -> str:
    """TensorFlow's CPU kernel set in this process: ``"oneDNN on"`` or ``"oneDNN off"``
    (the Eigen kernels)."""
    return f"oneDNN {'on' if onednn_enabled() else 'off'}"


def device() -> str:
    """The device TensorFlow computes on: ``"CPU"``, or ``"GPU: <name>"`` (with the count
    when there are several)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    try:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name")
    except Exception:  # noqa: BLE001 - the name is optional
        name = None
    count = f" (x{len(gpus)})" if len(gpus) > 1 else ""
    return f"GPU: {name or gpus[0].name}{count}"


def environment_info() -> dict[str, str]:
    """What ``kvlrp info`` prints, as ``{label: value}``."""
    import keras
    import tensorflow as tf

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
    versions = software()
    return {
        "kvlrp": versions["kvlrp"],
        "python": platform.python_version(),
        "tensorflow": versions["tensorflow"],
        "keras": versions["keras"],
        "keras backend": keras.backend.backend(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu": cpu_model(),
        "cpu cores": f"{os.cpu_count()} (usable by this process: {usable})",
        "threads": (f"intra-op {intra or 'default (all cores)'}, "
                    f"inter-op {inter or 'default'}, "
                    f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"),
        "devices": devices or "none",
        "onednn": f"{kernel_set().split()[1]} ({ONEDNN_VAR}={why})",
    }
