"""Time and memory of the recurrent rules on a small CNN-GRU video model, against a compiled
input gradient.

Model (``cnn_gru``): a per-frame CNN in a nested Sequential inside TimeDistributed (three 3x3
convolutions with ReLU, two 2x2 max poolings, global average pooling, Dense 64 + ReLU), then
GRU(64) and Dense(10); clips of 8 frames of 32 px (batch 8) and 16 frames of 64 px (batch 4),
RGB in [0, 1], seeded weights. Its twin ``cnn_mean`` replaces the GRU by the average over
frames (GlobalAveragePooling1D), so that the cost of the recurrence shows beside the CNN's.

Per case and TF CPU kernel set (``TF_ENABLE_ONEDNN_OPTS=1`` and ``0``, a process-level choice)
ONE worker process builds both models and times, interleaved round by round
(``_interleave.round_orders``), the baseline ``gradient`` (a ``tf.function`` input gradient of
the top logit through ``analyzers.build_graph``: the same forward pass the analyzers run),
``keras_gradient`` (the same through the Keras model, whose GRU is Keras's ``while_loop``) and
the analyzers ``lrp.epsilon``, ``lrp.z``, ``deep_taylor``, ``lrp.alpha_2_beta_1`` on the
CNN-GRU, and ``gradient`` and each analyzer on ``cnn_mean``. Ratios are taken within that
process: the ratio of the medians and the median of the per-round ratios. Peak memory: for
the larger case, one fresh process per method and kernel set, the growth of the peak resident
set over the first call and two more (model building and the input excluded).

    python benchmarks/bench_recurrent.py            # full run, writes results/recurrent.md
    python benchmarks/bench_recurrent.py --quick    # smoke run (4 frames of 16 px)

Target (issue 24): the recurrent rules at most 2x the compiled input gradient.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import _machine  # noqa: E402  (chooses TF's CPU kernels before TensorFlow loads)
from _interleave import round_orders, summarize  # noqa: E402

ANALYZERS = ("lrp.epsilon", "lrp.z", "deep_taylor", "lrp.alpha_2_beta_1")
METHODS = ("gradient", "keras_gradient") + ANALYZERS
#: (name, frames, size, batch)
FULL_CASES = (("8x32", 8, 32, 8), ("16x64", 16, 64, 4))
QUICK_CASES = (("4x16", 4, 16, 2),)
KERNEL_SETS = {"oneDNN": "1", "Eigen": "0"}
TARGET = 2.0
CLASSES = 10


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_models(frames: int, size: int):
    """``(cnn_gru, cnn_mean)`` sharing the per-frame CNN's weights (seeded)."""
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(0)
    cnn = keras.Sequential([
        keras.Input((size, size, 3)),
        layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.GlobalAveragePooling2D(), layers.Dense(64, activation="relu")], name="frame_cnn")
    inp = keras.Input((frames, size, size, 3))
    features = layers.TimeDistributed(cnn)(inp)
    gru = keras.Model(inp, layers.Dense(CLASSES)(layers.GRU(64)(features)), name="cnn_gru")
    mean = keras.Model(inp, layers.Dense(CLASSES)(layers.GlobalAveragePooling1D()(features)),
                       name="cnn_mean")
    return gru, mean


def _calls(model, x, methods: list[str]) -> dict:
    """No-argument callables, one per method, each returning a numpy array."""
    import tensorflow as tf

    import analyzers

    graph = analyzers.build_graph(model)

    def gradient_of(forward):
        @tf.function(reduce_retracing=True)
        def gradient(xt: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                tape.watch(xt)
                logits = forward(xt)
                target = tf.reduce_sum(logits * tf.one_hot(tf.argmax(logits, -1), CLASSES))
            return tape.gradient(target, xt)
        return lambda: gradient(tf.convert_to_tensor(x)).numpy()

    out = {}
    for method in methods:
        if method == "gradient":
            out[method] = gradient_of(graph.forward)
        elif method == "keras_gradient":
            out[method] = gradient_of(lambda xt: model(xt, training=False))
        else:
            analyzer = analyzers.create_analyzer(method, model)
            out[method] = lambda a=analyzer: a.analyze(x)
    return out


def run_worker(case: str, frames: int, size: int, batch: int, repeats: int, warmup: int
               ) -> dict:
    """Every method on both models in this process, interleaved; JSON-able results."""
    import numpy as np

    gru, mean = build_models(frames, size)
    x = np.random.default_rng(0).uniform(0, 1, (batch, frames, size, size, 3)).astype(
        np.float32)
    calls = {f"cnn_gru/{m}": c for m, c in _calls(gru, x, list(METHODS)).items()}
    calls.update({f"cnn_mean/{m}": c for m, c in _calls(
        mean, x, ["gradient"] + list(ANALYZERS)).items()})
    out: dict = {"case": case, "frames": frames, "size": size, "batch": batch,
                 "kernels": _machine.kernel_set(), "methods": {}}
    for name, call in calls.items():
        start = time.perf_counter()
        result = call()
        out["methods"][name] = {"setup_s": time.perf_counter() - start,
                                "finite": bool(np.isfinite(result).all())}
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {m: [] for m in calls}
    for order in round_orders(list(calls), repeats):
        for name in order:
            t0 = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - t0)
    for name, ts in times.items():
        base = times[name.split("/")[0] + "/gradient"]
        out["methods"][name].update(summarize(ts, None if name.endswith("/gradient") else base))
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def run_memory(frames: int, size: int, batch: int, method: str) -> dict:
    """Peak RSS growth (MiB) of one method on the CNN-GRU over its first call and two more."""
    import numpy as np

    gru, _ = build_models(frames, size)
    x = np.random.default_rng(0).uniform(0, 1, (batch, frames, size, size, 3)).astype(
        np.float32)
    call = _calls(gru, x, [method])[method]
    before = peak_rss_mb()
    for _ in range(3):
        call()
    return {"method": method, "kernels": _machine.kernel_set(), "before_mb": before,
            "growth_mb": peak_rss_mb() - before}


def _subprocess(args: list[str], onednn: str, timeout: float) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1",
               TF_ENABLE_ONEDNN_OPTS=onednn)
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def _fmt(value, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def build_report(results: dict, memory: dict, args: argparse.Namespace) -> str:
    lines = [
        "# Recurrent rules: speed and memory", "",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "- " + _machine.machine_line(kernels="both, one worker process per case and kernel "
                                     "set (the `kernels` column)"),
        "- model `cnn_gru`: per-frame CNN (nested Sequential in TimeDistributed: 3 conv 3x3 "
        "16/32/32 + ReLU, 2 max poolings, global average pooling, Dense 64 + ReLU), GRU(64), "
        "Dense(10); `cnn_mean`: the same CNN, the frames averaged instead of the GRU.",
        "- `gradient`: a compiled input gradient of the top logit through "
        "`analyzers.build_graph` (the analyzers' own forward pass, the GRU unrolled over the "
        "frames); `keras_gradient`: the same through the Keras model (Keras's GRU loop). "
        "`/ gradient`: ratio of the medians; `per round`: median over rounds of (method / that "
        "round's gradient), each within one process, interleaved.",
        f"- {args.repeats} timed rounds after {args.warmup} warm-up round(s); target (issue "
        f"24): the recurrent rules <= {TARGET}x the gradient.", ""]
    for case, per in results.items():
        lines += [f"## {case}", "",
                  "| model | method | kernels | median s | / gradient | per round | "
                  "first call s |", "|---|---|---|---|---|---|---|"]
        for kernels, res in per.items():
            if "error" in res:
                lines.append(f"| | error | {kernels} | {res['error'][:120]} | | | |")
                continue
            for name, r in res["methods"].items():
                model, method = name.split("/")
                ratio = 1.0 if method == "gradient" else r.get("ratio_of_medians")
                paired = 1.0 if method == "gradient" else r.get("median_paired_ratio")
                lines.append(f"| {model} | {method} | {kernels} | {_fmt(r.get('median_s'))} | "
                             f"{_fmt(ratio, '.2f')} | {_fmt(paired, '.2f')} | "
                             f"{_fmt(r.get('setup_s'), '.1f')} |")
        lines.append("")
        for kernels, res in per.items():
            if "error" in res:
                continue
            for method in ANALYZERS:
                r = res["methods"][f"cnn_gru/{method}"]
                worst = max(r["ratio_of_medians"], r["median_paired_ratio"])
                ok = "met" if worst <= TARGET else "NOT met"
                lines.append(f"- {kernels}: cnn_gru {method} / gradient = "
                             f"{r['median_paired_ratio']:.2f} per round, "
                             f"{r['ratio_of_medians']:.2f} of medians (target <= {TARGET}: "
                             f"{ok}); cnn_mean {method} / its gradient = "
                             f"{res['methods'][f'cnn_mean/{method}']['ratio_of_medians']:.2f}")
        lines.append("")
    if memory:
        lines += ["## Peak memory", "",
                  f"Case {args.memory_case}: growth of the peak resident set (MiB) over the "
                  "first call and two more, one fresh process per method (model and input "
                  "built before).", "", "| method | kernels | peak growth MiB |", "|---|---|---|"]
        for (kernels, method), r in memory.items():
            value = r.get("growth_mb")
            label = method if "error" not in r else f"{method} (error: {r['error'][:80]})"
            lines.append(f"| {label} | {kernels} | {_fmt(value, '.0f')} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny clips, smoke run")
    parser.add_argument("--kernels", nargs="+", default=list(KERNEL_SETS),
                        choices=list(KERNEL_SETS))
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 7, "
                        "--quick 2)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--memory", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (2 if args.quick else 7)
    if args.worker:
        case, frames, size, batch = args.worker
        print(json.dumps(run_worker(case, int(frames), int(size), int(batch), args.repeats,
                                    args.warmup)), flush=True)
        return 0
    if args.memory:
        frames, size, batch, method = args.memory
        print(json.dumps(run_memory(int(frames), int(size), int(batch), method)), flush=True)
        return 0
    cases = QUICK_CASES if args.quick else FULL_CASES
    results: dict = {}
    for case, frames, size, batch in cases:
        results[case] = {}
        for kernels in args.kernels:
            print(f"[{case}, {kernels}] timing ...", file=sys.stderr, flush=True)
            results[case][kernels] = _subprocess(
                ["--worker", case, str(frames), str(size), str(batch), "--repeats",
                 str(args.repeats), "--warmup", str(args.warmup)], KERNEL_SETS[kernels],
                args.timeout)
    memory: dict = {}
    args.memory_case = cases[-1][0]
    if not args.no_memory:
        _, frames, size, batch = cases[-1]
        for kernels in args.kernels:
            for method in METHODS:
                print(f"[{args.memory_case}, {kernels}] memory of {method} ...",
                      file=sys.stderr, flush=True)
                memory[(kernels, method)] = _subprocess(
                    ["--memory", str(frames), str(size), str(batch), method],
                    KERNEL_SETS[kernels], args.timeout)
    report = build_report(results, memory, args)
    print(report)
    out = args.out if args.out is not None else (
        None if args.quick else ROOT / "benchmarks" / "results" / "recurrent.md")
    if out is not None:
        raw = {"timing": results, "memory": {f"{k}/{m}": v for (k, m), v in memory.items()}}
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(report + "\n<details><summary>raw results (JSON)</summary>\n\n```json\n"
                       + json.dumps(raw, indent=1) + "\n```\n</details>\n", encoding="utf-8")
        tmp.replace(out)
        print(f"written: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    _machine.setup()
    sys.exit(main())
