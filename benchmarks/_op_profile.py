"""Time per TensorFlow op inside a compiled function, from ``tf.profiler``'s trace.

:func:`op_profile` runs a callable under the profiler and sums the duration of every op the
executor ran (on its compute threads; ops that ran in parallel both count), grouped by op
type, by the top-level name scope and by op (the trace names ops ``scope/.../name:Type``).
Used to say where an analyzer spends its time beyond the gradient's.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections import defaultdict
from collections.abc import Callable


def _events(logdir: str):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as fh:
            space.ParseFromString(fh.read())
        for plane in space.planes:
            if not plane.name.startswith("/host:CPU"):
                continue
            names = {k: m.name for k, m in plane.event_metadata.items()}
            for line in plane.lines:
                for event in line.events:
                    yield line.name, names.get(event.metadata_id, ""), event.duration_ps


def op_profile(fn: Callable[[], object], runs: int = 1) -> dict[str, dict[str, float]]:
    """Seconds per op type (``by_type``), per top-level scope (``by_scope``) and per op
    (``by_name``) over ``runs`` calls of ``fn`` (already traced: call it once before)."""
    import tensorflow as tf

    logdir = tempfile.mkdtemp(prefix="op_profile_")
    tf.profiler.experimental.start(logdir)
    for _ in range(runs):
        fn()
    tf.profiler.experimental.stop()
    by_type: dict[str, float] = defaultdict(float)
    by_scope: dict[str, float] = defaultdict(float)
    by_name: dict[str, float] = defaultdict(float)
    for line, name, ps in _events(logdir):
        if not line.startswith("tf_Compute") or ":" not in name or "::" in name:
            continue
        op_name, op_type = name.rsplit(":", 1)
        by_type[op_type] += ps * 1e-12 / runs
        by_scope[op_name.split("/")[0]] += ps * 1e-12 / runs
        by_name[name] += ps * 1e-12 / runs
    return {"by_type": dict(by_type), "by_scope": dict(by_scope), "by_name": dict(by_name)}
