"""TensorFlow CPU kernel selection, done before TensorFlow is imported.

TensorFlow enables its oneDNN CPU kernels by default only on CPUs with certain Intel
features; elsewhere on x86 (for example AMD EPYC) it runs its older Eigen kernels, which were
measured 3-4x slower for 3D convolutions on this project's machines. The ``kvlrp`` CLI and the
benchmarks call :func:`prefer_onednn` first thing, so that an x86 user who has not chosen gets
oneDNN; a user who set ``TF_ENABLE_ONEDNN_OPTS`` keeps that choice.

This module never imports TensorFlow (the variable is read once, when TensorFlow loads).
"""

from __future__ import annotations

import os
import platform
import sys

#: The environment variable TensorFlow reads (``1``: oneDNN kernels, ``0``: Eigen kernels).
ONEDNN_VAR = "TF_ENABLE_ONEDNN_OPTS"

#: ``platform.machine()`` values of x86 CPUs, where TensorFlow's oneDNN kernels exist.
X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})

#: Whether :func:`prefer_onednn` set the variable in this process.
_chosen_here = False


def is_x86(machine: str | None = None) -> bool:
    """Whether ``machine`` (default: this one's ``platform.machine()``) is an x86 CPU."""
    return (platform.machine() if machine is None else machine).lower() in X86_MACHINES


def prefer_onednn(environ: dict[str, str] | None = None, machine: str | None = None
                  ) -> str | None:
    """Set ``TF_ENABLE_ONEDNN_OPTS=1`` on x86 when it is unset and TensorFlow is not loaded.

    Parameters
    ----------
    environ
        The environment to read and update (default: ``os.environ``; another mapping, e.g.
        a child process's environment, is updated whether or not TensorFlow is loaded here).
    machine
        The CPU architecture (default: ``platform.machine()``).

    Returns
    -------
    str or None
        A one-line message saying what was done (to show the user), or ``None`` when nothing
        was changed (the variable is set, the CPU is not x86, or TensorFlow is already
        imported, too late to choose).
    """
    global _chosen_here
    env = os.environ if environ is None else environ
    too_late = environ is None and "tensorflow" in sys.modules  # this process's TF is loaded
    if ONEDNN_VAR in env or not is_x86(machine) or too_late:
        return None
    env[ONEDNN_VAR] = "1"
    if environ is None:
        _chosen_here = True
    return (f"kvlrp: using TensorFlow's oneDNN CPU kernels ({ONEDNN_VAR}=1; set "
            f"{ONEDNN_VAR}=0 for its Eigen kernels)")


def chosen_by_kvlrp() -> bool:
    """Whether :func:`prefer_onednn` set ``TF_ENABLE_ONEDNN_OPTS`` in this process."""
    return _chosen_here


def onednn_setting(environ: dict[str, str] | None = None) -> str:
    """What ``TF_ENABLE_ONEDNN_OPTS`` asks for: ``"on"``, ``"off"`` or ``"unset"``
    (TensorFlow's own default, which depends on the CPU)."""
    env = os.environ if environ is None else environ
    value = env.get(ONEDNN_VAR)
    if value is None:
        return "unset"
    return "off" if value.strip().lower() in ("0", "false", "off", "no", "") else "on"


def onednn_enabled() -> bool:
    """Whether the loaded TensorFlow runs its oneDNN CPU kernels (imports TensorFlow; False
    where this TensorFlow cannot say)."""
    from analyzers.compat import onednn_enabled as query

    return bool(query())


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor", "cpu model"):
                    if value.strip():
                        return value.strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        import subprocess

        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                 capture_output=True, text=True, timeout=5, check=False)
            if out.stdout.strip():
                return out.stdout.strip()
        except OSError:
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``flags`` / ``Features`` of ``/proc/cpuinfo``; empty where
    there is no such file, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()
