"""Run every example script in this folder (``tox -e examples``); fail if any fails."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Run each ``*.py`` example except this file, in name order; report the failures."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
    failed = []
    for script in scripts:
        print(f"=== {script.name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)], env=env, cwd=HERE)
        print(f"=== {script.name}: {'ok' if code == 0 else f'FAILED ({code})'} "
              f"in {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"failed examples: {', '.join(failed)}")
        return 1
    print(f"all {len(scripts)} examples ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
