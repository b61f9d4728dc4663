"""Run every example in this folder (``tox -e examples``): each script, and each notebook
executed cell by cell in a fresh Python kernel; fail if any fails (a notebook: any cell
raising). Prints each one's wall time."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Longest an example may run before it counts as hung (each takes well under a minute).
TIMEOUT_S = 600


def run_script(script: Path, env: dict[str, str]) -> bool:
    """Run one script in its own process; True if it exited with 0."""
    try:
        return subprocess.call([sys.executable, str(script)], env=env, cwd=HERE,
                               timeout=TIMEOUT_S) == 0
    except subprocess.TimeoutExpired:
        print(f"{script.name}: still running after {TIMEOUT_S} s", flush=True)
        return False


def run_notebook(notebook: Path, env: dict[str, str]) -> bool:
    """Execute every cell of ``notebook`` in a kernel running this interpreter (nbclient,
    ipykernel); True if no cell raised. The notebook file is not changed."""
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    saved = dict(os.environ)
    # the "python3" kernel starts `python` from the PATH: make that this interpreter
    os.environ.update(env, PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                                 env.get("PATH", "")]))
    try:
        nb = nbformat.read(notebook, as_version=4)
        with tempfile.TemporaryDirectory(prefix="kvlrp-kernel-") as sockets:
            # local sockets (not TCP), named by absolute path: the kernel runs in HERE
            kernel = KernelManager(kernel_name="python3", transport="ipc",
                                   ip=str(Path(sockets) / "kernel"))
            try:
                NotebookClient(nb, km=kernel, timeout=TIMEOUT_S, startup_timeout=TIMEOUT_S,
                               resources={"metadata": {"path": str(HERE)}}).execute()
            finally:  # a kernel manager given to nbclient is ours to stop
                if kernel.has_kernel:
                    kernel.shutdown_kernel()
    except (CellExecutionError, CellTimeoutError) as err:
        print(err, flush=True)
        return False
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return True


def _child_cpu_seconds() -> float:
    """User + system CPU seconds of the finished child processes (scripts, kernels)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    """Run each ``*.py`` example except this file, then each ``*.ipynb``, in name order;
    report the failures."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    examples = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
    examples += sorted(HERE.glob("*.ipynb"))
    failed = []
    for example in examples:
        print(f"=== {example.name}", flush=True)
        start, cpu = time.perf_counter(), _child_cpu_seconds()
        run = run_notebook if example.suffix == ".ipynb" else run_script
        ok = run(example, env)
        print(f"=== {example.name}: {'ok' if ok else 'FAILED'} in "
              f"{time.perf_counter() - start:.0f} s ({_child_cpu_seconds() - cpu:.0f} s CPU)",
              flush=True)
        if not ok:
            failed.append(example.name)
    if failed:
        print(f"failed examples: {', '.join(failed)}")
        return 1
    print(f"all {len(examples)} examples ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
