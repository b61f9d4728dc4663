"""Time the analyzers engine against a compiled input gradient and iNNvestigate 2.1.2.

On the C3D-shaped benchmark model of the cross-check zoo (``c3d_bench``: 16 x 112 x 112 x 3
clips, batch 8) and the full-size C3D (``c3d_full``, batch 2), each method runs in a fresh
subprocess (so its peak memory is its own): ``deep_taylor``, ``lrp.epsilon``,
``lrp.alpha_2_beta_1`` and a plain ``tf.function`` input gradient of the selected logit.
Times are the median of ``--repeats`` calls after ``--warmup`` calls. If the iNNvestigate
tox environment exists (``.tox/innvestigate/bin/python``), ``bench_innvestigate.py`` times
iNNvestigate's ``deep_taylor`` and ``gradient`` on the same weights and inputs (both sides
build the zoo spec with its seeded weights).

    python benchmarks/bench_analyzers.py             # full run, writes results/analyzers.md
    python benchmarks/bench_analyzers.py --quick     # smoke run on a tiny zoo model

Targets reported against: ``deep_taylor <= 1.6 x gradient``; iNNvestigate's deep_taylor time
``>= 1.5 x`` ours.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

METHODS = ("gradient", "deep_taylor", "lrp.epsilon", "lrp.alpha_2_beta_1")
FULL_CASES = (("c3d_bench", 8), ("c3d_full", 2))
QUICK_CASES = (("plain_bias", 2),)
INNVESTIGATE_PYTHON = ROOT / ".tox" / "innvestigate" / "bin" / "python"
TARGET_DT_OVER_GRADIENT = 1.6
TARGET_SPEEDUP_VS_INNVESTIGATE = 1.5


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- worker: one method in this process -----------------------------------------------
def run_worker(model_name: str, method: str, batch: int, repeats: int, warmup: int) -> dict:
    """Time one method on one zoo model; returns a JSON-able dict."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    from innvestigate_zoo import build_keras3
    from innvestigate_zoo import spec as zoo_spec

    import analyzers

    model_spec = zoo_spec.get_spec(model_name)
    model = build_keras3.build(model_spec)
    x = zoo_spec.make_inputs(model_spec, n=batch)
    rss_model = peak_rss_mb()
    start = time.perf_counter()
    if method == "gradient":
        logits_graph = analyzers.build_graph(model)  # the softmax-free model

        @tf.function(reduce_retracing=True)
        def gradient(xt: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                tape.watch(xt)
                logits = logits_graph.forward(xt)
                top = tf.one_hot(tf.argmax(logits, axis=-1), tf.shape(logits)[-1])
                target = tf.reduce_sum(logits * top)
            return tape.gradient(target, xt)

        def call() -> np.ndarray:
            return gradient(tf.convert_to_tensor(x)).numpy()
    else:
        kwargs = dict(zoo_spec.ANALYZER_KWARGS.get(method, {}))
        analyzer = analyzers.create_analyzer(method, model, **kwargs)

        def call() -> np.ndarray:
            return analyzer.analyze(x)
    result = call()
    setup = time.perf_counter() - start
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return {"model": model_name, "method": method, "batch": batch, "setup_s": setup,
            "median_s": statistics.median(times), "times": times,
            "rss_after_model_mb": rss_model, "peak_rss_mb": peak_rss_mb(),
            "finite": bool(np.isfinite(result).all()),
            "relevance_sum": float(result.reshape(batch, -1).sum(axis=1).mean())}


def _run_subprocess(cmd: list[str], timeout: float) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def run_ours(model_name: str, method: str, batch: int, args: argparse.Namespace) -> dict:
    """One method in a fresh Python process."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", method,
           "--model", model_name, "--batch", str(batch), "--repeats", str(args.repeats),
           "--warmup", str(args.warmup)]
    return _run_subprocess(cmd, args.timeout)


def run_innvestigate(model_name: str, batch: int, args: argparse.Namespace) -> dict:
    """iNNvestigate's deep_taylor and gradient via ``bench_innvestigate.py``."""
    if not INNVESTIGATE_PYTHON.exists():
        return {"error": f"{INNVESTIGATE_PYTHON} not found (create it with tox -e innvestigate)"}
    cmd = [str(INNVESTIGATE_PYTHON), str(ROOT / "benchmarks" / "bench_innvestigate.py"),
           "--model", model_name, "--batch", str(batch), "--repeats", str(args.repeats),
           "--warmup", str(args.warmup), "--analyzers", "deep_taylor", "gradient"]
    return _run_subprocess(cmd, args.timeout)


# -- report ---------------------------------------------------------------------------
def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def build_table(results: dict) -> str:
    """Markdown table of times, memory and ratios, one block per model."""
    lines = []
    for model_name, entry in results.items():
        ours, inn = entry["ours"], entry["innvestigate"]
        grad = ours.get("gradient", {}).get("median_s")
        lines += [f"### {model_name} (batch {entry['batch']})", "",
                  "| method | ours median s | / gradient | ours peak RSS MiB | "
                  "iNNvestigate median s | iNNvestigate / ours |",
                  "|---|---|---|---|---|---|"]
        for method in METHODS:
            r = ours.get(method, {})
            t = r.get("median_s")
            ratio = t / grad if (t is not None and grad) else None
            inn_t = inn.get("analyzers", {}).get(method, {}).get("median_s") \
                if "error" not in inn else None
            speed = inn_t / t if (inn_t is not None and t) else None
            label = method if "error" not in r else f"{method} (error: {r['error'][:80]})"
            lines.append(f"| {label} | {_fmt(t)} | {_fmt(ratio, '.2f')} | "
                         f"{_fmt(r.get('peak_rss_mb'), '.0f')} | {_fmt(inn_t)} | "
                         f"{_fmt(speed, '.2f')} |")
        if "error" in inn:
            lines.append(f"\niNNvestigate: {inn['error']}")
        else:
            lines.append(f"\niNNvestigate peak RSS: {_fmt(inn.get('peak_rss_mb'), '.0f')} MiB "
                         f"(TensorFlow {inn.get('tensorflow')}, graph mode)")
        dt_t = ours.get("deep_taylor", {}).get("median_s")
        inn_dt = inn.get("analyzers", {}).get("deep_taylor", {}).get("median_s") \
            if "error" not in inn else None
        if dt_t and grad:
            ok = "met" if dt_t / grad <= TARGET_DT_OVER_GRADIENT else "NOT met"
            lines.append(f"\ndeep_taylor / gradient = {dt_t / grad:.2f} "
                         f"(target <= {TARGET_DT_OVER_GRADIENT}: {ok})")
        if dt_t and inn_dt:
            ok = "met" if inn_dt / dt_t >= TARGET_SPEEDUP_VS_INNVESTIGATE else "NOT met"
            lines.append(f"iNNvestigate deep_taylor / ours = {inn_dt / dt_t:.2f} "
                         f"(target >= {TARGET_SPEEDUP_VS_INNVESTIGATE}: {ok})")
        lines.append("")
    return "\n".join(lines)


def header(args: argparse.Namespace) -> str:
    import keras
    import tensorflow as tf

    uname = platform.uname()
    return "\n".join([
        "# analyzers benchmark", "",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {uname.system} {uname.release} {uname.machine}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        f"- ours: TensorFlow {tf.__version__}, Keras {keras.__version__} (eager + tf.function)",
        f"- repeats: {args.repeats} timed calls after {args.warmup} warm-up call(s); each "
        "method in its own process (peak RSS is that process's)",
        f"- mode: {'quick smoke run (tiny model)' if args.quick else 'full'}", "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, smoke run")
    parser.add_argument("--models", nargs="+", help="zoo spec names (default: c3d_bench "
                        "c3d_full; --quick: plain_bias)")
    parser.add_argument("--batch", type=int, help="batch size for every model")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600.0, help="per subprocess, s")
    parser.add_argument("--no-innvestigate", action="store_true")
    parser.add_argument("--out", type=Path, help="markdown output (default: "
                        "benchmarks/results/analyzers.md for a full run, none for --quick)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")

    if args.worker:
        print(json.dumps(run_worker(args.model, args.worker, args.batch, args.repeats,
                                    args.warmup)), flush=True)
        return 0

    cases = QUICK_CASES if args.quick else FULL_CASES
    if args.models:
        cases = tuple((m, dict(cases).get(m, 2)) for m in args.models)
    if args.batch:
        cases = tuple((m, args.batch) for m, _ in cases)
    results: dict = {}
    for model_name, batch in cases:
        entry = {"batch": batch, "ours": {}, "innvestigate": {}}
        for method in METHODS:
            print(f"[{model_name}] ours: {method} ...", file=sys.stderr, flush=True)
            entry["ours"][method] = run_ours(model_name, method, batch, args)
        if args.no_innvestigate:
            entry["innvestigate"] = {"error": "skipped (--no-innvestigate)"}
        else:
            print(f"[{model_name}] iNNvestigate ...", file=sys.stderr, flush=True)
            entry["innvestigate"] = run_innvestigate(model_name, batch, args)
        results[model_name] = entry
    report = header(args) + build_table(results)
    print(report)
    out = args.out if args.out is not None else (
        None if args.quick else ROOT / "benchmarks" / "results" / "analyzers.md")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(report + "\n\n<details><summary>raw results (JSON)</summary>\n\n```json\n"
                       + json.dumps(results, indent=1) + "\n```\n</details>\n",
                       encoding="utf-8")
        tmp.replace(out)
        print(f"written: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
