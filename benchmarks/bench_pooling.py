"""Time the first-winner max-pooling gradients against TensorFlow's own, per pool shape.

For every pool shape of the benchmark models (c3d_bench at batch 8, the full I3D at batch 2 on
16 x 112 x 112 clips) ONE process times a compiled forward + input gradient of

- ``tf``: TensorFlow's ``max_pool`` (its gradient hands a tied window's gradient to every tied
  input in 3D: not exact, the reference time),
- ``staged``: the slice / reshape stages of :mod:`analyzers.ops.pooling.winner` (the old path),
- ``compiled``: the joint window by XLA (one reshape where strides == pool, else one strided
  slice per window offset),
- ``staged_compiled``: the stages of ``staged``, each stage's gradient compiled by XLA,
- ``argmax``: :mod:`analyzers.ops.pooling.argmax` (``tf.nn.max_pool_with_argmax`` stages),

interleaved round by round (``_interleave.round_orders``), and reports each one's ratio to
``tf``. Before timing, every exact candidate is checked against the joint-window reference on
a tie-heavy input (same output, same winners).

    python benchmarks/bench_pooling.py                 # both kernel sets, writes a results file
    python benchmarks/bench_pooling.py --kernels oneDNN --repeats 3 --out -   # print only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import _machine  # noqa: E402  (chooses TF's CPU kernels before TensorFlow loads)
from _interleave import round_orders, summarize  # noqa: E402

#: (label, input shape channels-last, pool, strides, padding)
SHAPES = (
    ("c3d pool1 (1,2,2)", (8, 16, 112, 112, 16), (1, 2, 2), (1, 2, 2), "valid"),
    ("c3d pool2 (2,2,2)", (8, 16, 56, 56, 32), (2, 2, 2), (2, 2, 2), "valid"),
    ("c3d pool3 (2,2,2)", (8, 8, 28, 28, 64), (2, 2, 2), (2, 2, 2), "valid"),
    ("c3d pool5 (2,2,2) same", (8, 2, 7, 7, 128), (2, 2, 2), (2, 2, 2), "same"),
    ("i3d pool_2a (1,3,3)/(1,2,2)", (2, 8, 56, 56, 64), (1, 3, 3), (1, 2, 2), "same"),
    ("i3d pool_3a (1,3,3)/(1,2,2)", (2, 8, 28, 28, 192), (1, 3, 3), (1, 2, 2), "same"),
    ("i3d 3b branch (3,3,3)/1", (2, 8, 14, 14, 192), (3, 3, 3), (1, 1, 1), "same"),
    ("i3d pool_4a (3,3,3)/2", (2, 8, 14, 14, 480), (3, 3, 3), (2, 2, 2), "same"),
    ("i3d 4c branch (3,3,3)/1", (2, 4, 7, 7, 512), (3, 3, 3), (1, 1, 1), "same"),
    ("i3d pool_5a (2,2,2)", (2, 4, 7, 7, 832), (2, 2, 2), (2, 2, 2), "same"),
    ("2d (3,3)/2", (8, 56, 56, 64), (3, 3), (2, 2), "same"),
    ("1d 3/2", (8, 1024, 64), (3,), (2,), "same"),
)
CANDIDATES = ("tf", "staged", "compiled", "staged_compiled", "argmax")
KERNEL_SETS = {"oneDNN": "1", "Eigen": "0"}


def _pool_fn(name: str, pool, strides, padding):
    from keras import ops

    from analyzers.ops.pooling import winner

    if name == "tf":
        return lambda x: ops.max_pool(x, list(pool), strides=list(strides), padding=padding)
    return lambda x: winner.max_pool_first_winner(x, pool, strides, padding, "channels_last",
                                                  method=name)


def _check_exact(name: str, pool, strides, padding) -> bool:
    """Same output and winners as the joint-window reference on a small tie-heavy input."""
    import numpy as np
    import tensorflow as tf

    from analyzers.ops.pooling.winner import _sliced_first_winner_grad, _spatial_axes

    rank = len(pool)
    shape = (2, *[7 + k for k in range(rank)], 3)
    x = tf.constant(np.random.default_rng(0).integers(0, 2, shape).astype(np.float32))
    fn = _pool_fn(name, pool, strides, padding)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    g = tf.random.stateless_uniform(tf.shape(y), (1, 2), 0.5, 1.5)
    got = tape.gradient(y, x, output_gradients=g)
    ref = _sliced_first_winner_grad(x, y, g, _spatial_axes(len(shape), "channels_last"),
                                    list(pool), list(strides), padding)
    return bool(np.array_equal(got.numpy() != 0, ref.numpy() != 0)
                and np.allclose(got.numpy(), ref.numpy(), rtol=1e-6))


def run_worker(repeats: int, warmup: int, labels: list[str] | None) -> dict:
    """Every candidate on every shape in this process, interleaved; ratios to ``tf``."""
    import time

    import numpy as np
    import tensorflow as tf

    out: dict = {"kernels": _machine.kernel_set(), "shapes": {}}
    for label, shape, pool, strides, padding in SHAPES:
        if labels and label not in labels:
            continue
        x = tf.constant(np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32))
        calls = {}
        for name in CANDIDATES:
            fn = _pool_fn(name, pool, strides, padding)

            @tf.function(reduce_retracing=True)
            def step(xt, fn=fn):
                with tf.GradientTape() as tape:
                    tape.watch(xt)
                    y = fn(xt)
                return tape.gradient(y, xt, output_gradients=tf.ones_like(y) * 0.5)

            calls[name] = lambda step=step, x=x: step(x).numpy()
        entry: dict = {"shape": shape, "pool": pool, "strides": strides, "padding": padding,
                       "exact": {n: _check_exact(n, pool, strides, padding)
                                 for n in CANDIDATES if n != "tf"}}
        for call in calls.values():
            for _ in range(1 + warmup):
                call()
        times: dict[str, list[float]] = {n: [] for n in calls}
        for order in round_orders(list(calls), repeats):
            for name in order:
                t0 = time.perf_counter()
                calls[name]()
                times[name].append(time.perf_counter() - t0)
        entry["methods"] = {n: summarize(ts, times["tf"] if n != "tf" else None)
                            for n, ts in times.items()}
        out["shapes"][label] = entry
        print(f"{label}: " + ", ".join(
            f"{n} {r['median_s'] * 1e3:.1f} ms" + (f" ({r['median_paired_ratio']:.2f}x)"
                                                   if n != "tf" else "")
            for n, r in entry["methods"].items()), file=sys.stderr, flush=True)
    return out


def report(results: dict, args: argparse.Namespace) -> str:
    lines = ["# max pooling: first-winner gradients against TensorFlow's own", "",
             f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
             "- " + _machine.machine_line(kernels="both, one process per kernel set"),
             "- each cell: median of a compiled forward + input gradient over "
             f"{args.repeats} interleaved rounds (after {args.warmup} warm-up), and in "
             "brackets the median per-round ratio to `tf` (TensorFlow's own max-pooling "
             "gradient, which in 3D hands tied gradients to every tied input: not exact)",
             "- exact: the candidate's winners equal the joint-window reference on a tie-heavy "
             "input (checked in the same process)", ""]
    for kernels, res in results.items():
        lines += [f"## {kernels}", "", "| shape | input | tf ms | " + " | ".join(
            f"{c} ms (/ tf)" for c in CANDIDATES[1:]) + " | exact | fastest exact |",
                  "|---|---|---|" + "---|" * (len(CANDIDATES) + 1)]
        if "error" in res:
            lines += ["", f"error: {res['error']}", ""]
            continue
        for label, e in res["shapes"].items():
            m = e["methods"]
            exact = [c for c in CANDIDATES[1:] if e["exact"][c]]
            best = min(exact, key=lambda c: m[c]["median_s"]) if exact else "none"
            cells = [f"{m[c]['median_s'] * 1e3:.1f} ({m[c]['median_paired_ratio']:.2f})"
                     for c in CANDIDATES[1:]]
            lines.append(f"| {label} | {'x'.join(map(str, e['shape']))} | "
                         f"{m['tf']['median_s'] * 1e3:.1f} | " + " | ".join(cells)
                         + f" | {', '.join(exact)} | {best} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernels", nargs="+", default=list(KERNEL_SETS),
                        choices=list(KERNEL_SETS))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--shapes", nargs="+", help="labels of SHAPES to run (default all)")
    parser.add_argument("--out", help="results file ('-': print only; default "
                        "benchmarks/results/pooling_<date>.md)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.repeats, args.warmup, args.shapes)), flush=True)
        return 0
    results = {}
    for kernels in args.kernels:
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=KERNEL_SETS[kernels],
                   TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
        cmd = [sys.executable, __file__, "--worker", "--repeats", str(args.repeats),
               "--warmup", str(args.warmup)] + (["--shapes", *args.shapes] if args.shapes
                                                 else [])
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        sys.stderr.write(proc.stderr[-4000:] if proc.returncode else "")
        lines = [s for s in proc.stdout.splitlines() if s.startswith("{")]
        results[kernels] = json.loads(lines[-1]) if lines else {
            "error": f"exit {proc.returncode}"}
    text = report(results, args)
    print(text)
    if args.out != "-":
        out = Path(args.out) if args.out else (
            ROOT / "benchmarks" / "results" / f"pooling_{dt.date.today().isoformat()}.md")
        out.write_text(text + "\n\n<details><summary>raw results (JSON)</summary>\n\n```json\n"
                       + json.dumps(results, indent=1) + "\n```\n</details>\n",
                       encoding="utf-8")
        print(f"written: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    _machine.setup()
    sys.exit(main())
