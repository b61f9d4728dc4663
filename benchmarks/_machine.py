"""Shared by the benchmarks: choose TensorFlow's CPU kernels before it loads, and name the
machine and kernel set in every results file.

Import this module before TensorFlow and call :func:`setup` first thing: like the ``kvlrp``
CLI, it switches on oneDNN on x86 when ``TF_ENABLE_ONEDNN_OPTS`` is unset.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kvlrp.infra.tfsetup import ONEDNN_VAR, cpu_model, prefer_onednn  # noqa: E402


def setup() -> None:
    """Set ``TF_ENABLE_ONEDNN_OPTS=1`` on x86 where unset (says so on stderr)."""
    message = prefer_onednn()
    if message:
        print(message.replace("kvlrp:", "benchmark:", 1), file=sys.stderr)


def kernel_set() -> str:
    """``"oneDNN"`` or ``"Eigen"``: the CPU kernels the loaded TensorFlow runs (imports it)."""
    from kvlrp.infra.tfsetup import onednn_enabled

    return "oneDNN" if onednn_enabled() else "Eigen"


def machine_line(kernels: str | None = None) -> str:
    """One markdown line: CPU model, cores, Python, TensorFlow/Keras and the kernel set
    (``kernels`` overrides the set this process runs, for a file that mixes both)."""
    import keras
    import tensorflow as tf

    var = os.environ.get(ONEDNN_VAR, "unset")
    kernels = kernels or f"{kernel_set()} ({ONEDNN_VAR}={var})"
    return (f"Machine: {cpu_model()}, {os.cpu_count()} cores ({platform.machine()}, "
            f"{platform.system()} {platform.release()}), Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}; TF CPU kernels: "
            f"{kernels}. {load_note()}")


def load_note() -> str:
    """The load average when the results were written (the benchmark's own processes count)
    and what it means for reading them."""
    one, five, fifteen = os.getloadavg()
    return (f"Load average when written: {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 "
            f"min, the benchmark's own processes included; about {os.cpu_count()} means the "
            f"cores were busy with it alone): compare ratios within a run, not absolute times.")
