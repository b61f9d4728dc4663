"""Functions that tests send to worker processes.

A spawned worker unpickles its function by module name. Test modules are
imported by pytest under names a fresh interpreter cannot import (``tests``
is not a package on the worker's path when pytest runs from an installed
environment), so every function a test hands to a process pool lives here,
on the ``pythonpath`` that ``pytest.ini`` gives every worker.
"""
from __future__ import annotations

import os
import signal


def square_or_die_on_three(x: int) -> int:
    """Square ``x``; the process is killed (as by the OOM killer) on 3."""
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x
