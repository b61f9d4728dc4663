"""Time one stride-1 C3D layer's input VJP: the tape's (``Conv3DBackpropInputV2``) against
the forward convolution with the flipped, channel-swapped kernel
(:mod:`analyzers.ops.convolution.vjp`), under both of TensorFlow's CPU kernel sets (one subprocess
each, so each ratio is measured within one process).

    python benchmarks/bench_conv_vjp.py              # writes results/conv_vjp.md
    python benchmarks/bench_conv_vjp.py --quick      # small layer, no file
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _machine  # noqa: E402  (chooses TF's CPU kernels before TensorFlow loads)

RESULTS = Path(__file__).resolve().parent / "results" / "conv_vjp.md"
#: (name, input shape [batch, t, h, w, c], output channels): c3d_bench layers, batch 4
LAYERS = (("c3d_bench conv1", (4, 16, 112, 112, 3), 16),
          ("c3d_bench conv2", (4, 16, 56, 56, 16), 32),
          ("c3d_bench conv3a", (4, 8, 28, 28, 32), 64),
          ("c3d_bench conv4b", (4, 4, 14, 14, 64), 64))
QUICK = (("small", (2, 4, 14, 14, 8), 8),)


def worker(layers, repeats: int) -> dict:
    import numpy as np
    import tensorflow as tf

    from analyzers.ops.convolution import vjp as conv_vjp

    out = {"kernels": _machine.kernel_set(), "layers": {}}
    for name, shape, cout in layers:
        rng = np.random.default_rng(0)
        x = tf.constant(rng.uniform(0, 1, shape).astype(np.float32))
        kernel = tf.constant(rng.normal(0, 0.05, (3, 3, 3, shape[-1], cout)).astype(np.float32))
        seed = tf.constant(rng.normal(size=(*shape[:-1], cout)).astype(np.float32))

        def make(fast, kernel=kernel, seed=seed):
            @tf.function
            def vjp(x_in):
                with tf.GradientTape() as tape:
                    tape.watch(x_in)
                    if fast:
                        z = conv_vjp.conv_forward_vjp(x_in, kernel, "same", (1, 1, 1))
                    else:
                        z = tf.nn.conv3d(x_in, kernel, [1] * 5, "SAME")
                return tape.gradient(z, x_in, output_gradients=seed)
            return vjp

        fns = {"tape": make(False), "forward": make(True)}
        diff = float(tf.reduce_max(tf.abs(fns["tape"](x) - fns["forward"](x))))
        times = {k: [] for k in fns}
        for _ in range(repeats):  # interleaved, so load changes hit both alike
            for k, f in fns.items():
                t0 = time.perf_counter()
                f(x).numpy()
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        out["layers"][name] = {"tape_s": med["tape"], "forward_s": med["forward"],
                               "max_abs_diff": diff}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    layers = QUICK if args.quick else LAYERS
    if args.worker:
        print(json.dumps(worker(layers, args.repeats)), flush=True)
        return 0
    rows = []
    for value in ("0", "1"):
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=value)
        cmd = [sys.executable, __file__, "--worker", "--repeats", str(args.repeats)]
        proc = subprocess.run(cmd + (["--quick"] if args.quick else []), env=env,
                              capture_output=True, text=True, timeout=1800)
        lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
        if proc.returncode or not lines:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        res = json.loads(lines[-1])
        for name, r in res["layers"].items():
            rows.append(f"| {name} | {res['kernels']} | {r['tape_s']:.3f} | "
                        f"{r['forward_s']:.3f} | {r['tape_s'] / r['forward_s']:.2f} | "
                        f"{r['max_abs_diff']:.1e} |")
    text = "\n".join([
        "# Input VJP of a stride-1 3x3x3 convolution: tape vs forward convolution", "",
        _machine.machine_line(kernels="both (one subprocess each, see the table)"), "",
        f"Median of {args.repeats} interleaved calls (tf.function), batch 4.", "",
        "| layer | kernels | tape VJP s | forward-conv VJP s | tape / forward | max abs diff |",
        "|---|---|---|---|---|---|", *rows, ""])
    print(text)
    if not args.quick:
        tmp = RESULTS.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(RESULTS)
    return 0


if __name__ == "__main__":
    _machine.setup()
    sys.exit(main())
