"""Time ``attnlrp`` and ``cp_lrp`` against a compiled input gradient on small ViViT- and
TimeSformer-shaped models (``tests/helpers/transformer_nets.py``), and their peak memory, under
both of TensorFlow's CPU kernel sets.

Per model and kernel set (``TF_ENABLE_ONEDNN_OPTS=1`` / ``0``) ONE worker process builds the
model once and times the baseline (a ``tf.function`` input gradient of the top logit through
the model's layer graph), the Keras model's own tape gradient, ``attnlrp`` and ``cp_lrp`` on the
same weights and clips, interleaved round by round (``_interleave.round_orders``); each ratio
to the gradient is taken within that process (ratio of the medians, and median of the
per-round ratios). Peak memory: one more process per method and kernel set, which builds the
model, calls the method twice and reports its peak resident set size over the same for a
process that only builds the model and calls it (the method's own working memory).

    python benchmarks/bench_attention.py            # writes results/attention.md
    python benchmarks/bench_attention.py --quick    # tiny models, no file

Target (issue 24): ``attnlrp`` and ``cp_lrp`` at most 1.6 x the compiled input gradient.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
sys.path.insert(0, str(ROOT))

import _machine  # noqa: E402  (chooses TF's CPU kernels before TensorFlow loads)
from _interleave import round_orders, summarize  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "attention.md"
METHODS = ("gradient", "keras_gradient", "attnlrp", "cp_lrp")
#: name -> (builder, keyword arguments, batch): clips 8 x 32 x 32 x 3
CASES = {
    "vivit (dim 64, 4 heads, 4 blocks, 65 tokens)":
        ("vivit", {"dim": 64, "heads": 4, "depth": 4, "shape": (8, 32, 32, 3),
                   "tubelet": (2, 8, 8)}, 4),
    "timesformer (dim 64, 4 heads, 2 divided blocks, 8 x 16 tokens)":
        ("timesformer", {"dim": 64, "heads": 4, "depth": 2, "shape": (8, 32, 32, 3),
                         "patch": (1, 8, 8)}, 4),
}
QUICK = {"vivit (tiny)": ("vivit", {}, 2)}
KERNEL_SETS = {"oneDNN": "1", "Eigen": "0"}
TARGET = 1.6


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _model(builder: str, kwargs: dict, batch: int):
    import numpy as np
    import transformer_nets

    model = getattr(transformer_nets, builder)(**kwargs)
    shape = kwargs.get("shape", transformer_nets.SHAPE)
    x = np.random.default_rng(0).normal(size=(batch, *shape)).astype(np.float32)
    return model, x


def _call(method: str, model, x):
    """A no-argument callable running ``method`` on ``x`` (returns numpy)."""
    import tensorflow as tf

    import analyzers

    if method in ("gradient", "keras_gradient"):
        forward = (analyzers.build_graph(model).forward if method == "gradient"
                   else lambda t: model(t, training=False))

        @tf.function(reduce_retracing=True)
        def gradient(xt: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                tape.watch(xt)
                logits = forward(xt)
                top = tf.one_hot(tf.argmax(logits, axis=-1), tf.shape(logits)[-1])
                target = tf.reduce_sum(logits * top)
            return tape.gradient(target, xt)

        return lambda: gradient(tf.convert_to_tensor(x)).numpy()
    analyzer = analyzers.create_analyzer(method, model)
    return lambda: analyzer.analyze(x)


def time_worker(case: str, repeats: int, warmup: int, cases: dict) -> dict:
    builder, kwargs, batch = cases[case]
    model, x = _model(builder, kwargs, batch)
    out = {"case": case, "batch": batch, "kernels": _machine.kernel_set(), "methods": {}}
    calls = {}
    for method in METHODS:
        start = time.perf_counter()
        calls[method] = _call(method, model, x)
        calls[method]()
        out["methods"][method] = {"setup_s": time.perf_counter() - start}
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {m: [] for m in calls}
    for order in round_orders(list(calls), repeats):
        for method in order:
            t0 = time.perf_counter()
            calls[method]()
            times[method].append(time.perf_counter() - t0)
    for method, ts in times.items():
        out["methods"][method].update(
            summarize(ts, times["gradient"] if method != "gradient" else None))
    return out


def memory_worker(case: str, method: str | None, cases: dict) -> dict:
    """Peak RSS after building the model and calling it (``method=None``) or ``method``
    twice."""
    builder, kwargs, batch = cases[case]
    model, x = _model(builder, kwargs, batch)
    model.predict(x, verbose=0)
    if method is not None:
        call = _call(method, model, x)
        call()
        call()
    return {"case": case, "method": method, "kernels": _machine.kernel_set(),
            "peak_rss_mb": peak_rss_mb()}


def _run(args: list[str], onednn: str, timeout: float) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1",
               TF_ENABLE_ONEDNN_OPTS=onednn)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def _table(results: dict, memory: dict, repeats: int) -> list[str]:
    lines = []
    for case, per_kernels in results.items():
        lines += [f"### {case}", "",
                  "| method | kernels | median s | / gradient (medians) | / gradient "
                  "(per-round median) | first call s | peak memory MiB (own) |",
                  "|---|---|---|---|---|---|---|"]
        for kernels, res in per_kernels.items():
            if "error" in res:
                lines.append(f"| (all) | {kernels} | error: {res['error'][:120]} | | | | |")
                continue
            base = memory.get((case, kernels, None), {}).get("peak_rss_mb")
            for method in METHODS:
                r = res["methods"][method]
                ratio = r.get("ratio_of_medians", 1.0)
                paired = r.get("median_paired_ratio", 1.0)
                peak = memory.get((case, kernels, method), {}).get("peak_rss_mb")
                own = f"{peak:.0f} ({peak - base:+.0f})" if peak and base else "n/a"
                lines.append(f"| {method} | {kernels} | {r['median_s']:.3f} | {ratio:.2f} | "
                             f"{paired:.2f} | {r['setup_s']:.1f} | {own} |")
        lines.append("")
        for kernels, res in per_kernels.items():
            for method in ("attnlrp", "cp_lrp"):
                r = res.get("methods", {}).get(method)
                if r:
                    worst = max(r["ratio_of_medians"], r["median_paired_ratio"])
                    met = "met" if worst <= TARGET else "NOT met"
                    lines.append(f"- {kernels}: {method} / gradient = "
                                 f"{r['median_paired_ratio']:.2f} (per-round median), "
                                 f"{r['ratio_of_medians']:.2f} (ratio of medians); target "
                                 f"<= {TARGET}: {met}")
        lines.append("")
    lines.append(f"Median of {repeats} interleaved rounds per method, one worker process per "
                 "model and kernel set; peak memory: the peak resident set size of a process "
                 "that builds the model and calls the method twice, and in brackets that "
                 "minus the same for a process that only builds the model and predicts.")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--time-worker", help=argparse.SUPPRESS)
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cases = QUICK if args.quick else CASES
    if args.time_worker:
        print(json.dumps(time_worker(args.time_worker, args.repeats, args.warmup, cases)))
        return 0
    if args.memory_worker:
        method = None if args.method in (None, "none") else args.method
        print(json.dumps(memory_worker(args.memory_worker, method, cases)))
        return 0
    quick = ["--quick"] if args.quick else []
    results: dict = {}
    memory: dict = {}
    for case in cases:
        results[case] = {}
        for kernels, onednn in KERNEL_SETS.items():
            results[case][kernels] = _run(
                ["--time-worker", case, "--repeats", str(args.repeats), "--warmup",
                 str(args.warmup), *quick], onednn, args.timeout)
            for method in (None, *METHODS):
                memory[(case, kernels, method)] = _run(
                    ["--memory-worker", case, "--method", str(method or "none"), *quick],
                    onednn, args.timeout)
    text = "\n".join([
        "# attnlrp and cp_lrp against a compiled input gradient", "",
        _machine.machine_line(kernels="both (one worker process each, see the tables)"), "",
        *_table(results, memory, args.repeats)])
    print(text)
    if not args.quick:
        tmp = RESULTS.with_suffix(".tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(RESULTS)
    return 0


if __name__ == "__main__":
    _machine.setup()
    sys.exit(main())
