"""deep_taylor and the gradient analyzer against the Keras model's compiled tape gradient, on
the video models of issue 25, under both TensorFlow CPU kernel sets.

Cases (one worker process per case and kernel set; every method of a case runs in that one
process, interleaved round by round, ``_interleave.round_orders``):

- ``c3d_bench``: the zoo's C3D layout at 1/4 widths, 16 x 112 x 112 clips, batch 8;
- ``i3d``: the full I3D (12.7M parameters at 400 classes), 16 x 112 x 112, batch 2;
- ``x3d``: the full X3D-XS, 16 x 112 x 112, batch 2, built both ways: channelwise convolutions
  as temporal taps (``taps``, the default) and as grouped ``Conv3D`` (``conv3d``, the old
  builder), with the same weights;
- ``r2plus1d``: the full R(2+1)D-18, 16 x 112 x 112, batch 2;
- ``x3d_small_train``: one training step (``train_on_batch``, SGD) of ``x3d_small`` (8 x 56 x
  56, batch 8), taps against conv3d.

``tape`` is a ``tf.function`` input gradient of the top logit through the Keras model (TF's
own kernels and pooling gradient): the baseline of every ratio. ``--code DIR`` runs the
workers on another checkout's ``analyzers`` / ``kvlrp`` (e.g. the commit before this work),
for before/after ratios. Peak RSS is the worker's after each method's first call.

    python benchmarks/bench_speed.py                          # everything, both kernel sets
    python benchmarks/bench_speed.py --cases c3d_bench i3d --kernels oneDNN --repeats 3
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

CASES = ("c3d_bench", "i3d", "x3d", "r2plus1d", "x3d_small_train")
KERNEL_SETS = {"oneDNN": "1", "Eigen": "0"}
TARGET = 1.55
CLIP = (16, 112, 112, 3)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _tape_call(model, x):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def tape(xt):
        with tf.GradientTape() as g:
            g.watch(xt)
            logits = model(xt, training=False)
            top = tf.one_hot(tf.argmax(logits, axis=-1), tf.shape(logits)[-1])
            target = tf.reduce_sum(logits * top)
        return g.gradient(target, xt)

    xt = tf.convert_to_tensor(x)
    return lambda: tape(xt).numpy()


def _analyzer_call(name, model, x, **kwargs):
    import analyzers

    analyzer = analyzers.create_analyzer(name, model, **kwargs)
    return lambda: analyzer.analyze(x)


def _video_model(arch: str, channelwise: str | None = None):
    import keras

    from kvlrp.models import build_model

    keras.utils.set_random_seed(0)
    extra = {} if channelwise is None else {"channelwise": channelwise}
    return build_model(arch, 400, input_shape=CLIP, **extra)


def _calls(case: str) -> dict:
    """Method name -> no-argument callable, for one case."""
    import numpy as np

    rng = np.random.default_rng(0)
    if case == "c3d_bench":
        sys.path.insert(0, str(ROOT / "tests" / "helpers"))
        from innvestigate_zoo import build_keras3
        from innvestigate_zoo import spec as zoo_spec

        spec = zoo_spec.get_spec("c3d_bench")
        model, x = build_keras3.build(spec), zoo_spec.make_inputs(spec, n=8)
        return {"tape": _tape_call(model, x), "gradient": _analyzer_call("gradient", model, x),
                "deep_taylor": _analyzer_call("deep_taylor", model, x)}
    if case in ("i3d", "r2plus1d"):
        model = _video_model(case)
        x = rng.uniform(0, 1, (2, *CLIP)).astype("float32")
        return {"tape": _tape_call(model, x), "gradient": _analyzer_call("gradient", model, x),
                "deep_taylor": _analyzer_call("deep_taylor", model, x)}
    if case == "x3d":
        x = rng.uniform(0, 1, (2, *CLIP)).astype("float32")
        try:
            taps = _video_model("x3d", "taps")
        except TypeError:  # a checkout whose builder has no channelwise flag: conv3d only
            taps = _video_model("x3d")
        calls = {"tape": _tape_call(taps, x), "gradient": _analyzer_call("gradient", taps, x),
                 "deep_taylor": _analyzer_call("deep_taylor", taps, x)}
        try:
            grouped = _video_model("x3d", "conv3d")
        except TypeError:  # a checkout whose builder has no channelwise flag: it is conv3d
            return calls
        from kvlrp.models.builders.common import copy_channelwise_weights

        copy_channelwise_weights(grouped, taps)
        calls.update({"tape_conv3d": _tape_call(grouped, x),
                      "gradient_conv3d": _analyzer_call("gradient", grouped, x),
                      "deep_taylor_conv3d": _analyzer_call("deep_taylor", grouped, x)})
        return calls
    if case == "x3d_small_train":
        import keras

        from kvlrp.models import build_model

        x = rng.uniform(0, 1, (8, 8, 56, 56, 3)).astype("float32")
        y = rng.integers(0, 10, 8)
        calls = {}
        for label, channelwise in (("train_taps", "taps"), ("train_conv3d", "conv3d")):
            keras.utils.set_random_seed(0)
            try:
                model = build_model("x3d_small", 10, channelwise=channelwise)
            except TypeError:
                if channelwise == "taps":
                    continue
                model = build_model("x3d_small", 10)
            model.compile(optimizer=keras.optimizers.SGD(0.01),
                          loss="sparse_categorical_crossentropy")
            calls[label] = lambda model=model: model.train_on_batch(x, y)
        return calls
    raise ValueError(f"unknown case {case!r}")


def run_worker(case: str, repeats: int, warmup: int) -> dict:
    """Every method of ``case`` in this process, interleaved; ratios to the first method."""
    calls = _calls(case)  # first: --code's analyzers / kvlrp, before _machine adds ROOT
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _machine
    from _interleave import round_orders, summarize

    out: dict = {"case": case, "kernels": _machine.kernel_set(), "methods": {}}
    for name, call in calls.items():
        t0 = time.perf_counter()
        call()
        out["methods"][name] = {"setup_s": time.perf_counter() - t0,
                                "peak_rss_mb": _peak_rss_mb()}
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {n: [] for n in calls}
    for order in round_orders(list(calls), repeats):
        for name in order:
            t0 = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - t0)
    base = "tape" if "tape" in times else next(iter(times))
    for name, ts in times.items():
        baseline = times.get(_baseline_of(name, times), times[base])
        out["methods"][name].update(summarize(ts, baseline if name != base else None))
        out["methods"][name]["baseline"] = _baseline_of(name, times) or base
    out["peak_rss_mb"] = _peak_rss_mb()
    out["load"] = os.getloadavg()
    return out


def _baseline_of(name: str, times: dict) -> str | None:
    """The method a method is compared with: the tape gradient of the same model."""
    if name.endswith("_conv3d") and "tape_conv3d" in times and name != "tape_conv3d":
        return "tape_conv3d"
    if name == "tape_conv3d":
        return "tape"
    if name == "train_conv3d":
        return "train_taps"
    return "tape" if "tape" in times and name != "tape" else None


def _report(results: dict, args: argparse.Namespace) -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _machine

    lines = ["# Issue 25: deep_taylor and gradient against the tape gradient, video models", "",
             f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
             "- " + _machine.machine_line(kernels="both, one worker per case and kernel set"),
             f"- code: {args.code or ROOT}",
             f"- {args.repeats} interleaved rounds after {args.warmup} warm-up; `/ base` is "
             "the median of per-round ratios to the baseline named (the Keras model's tape "
             "gradient of the same model; conv3d tape against the taps tape; the old "
             "training step against the new one)",
             f"- targets: deep_taylor <= {TARGET} x tape on c3d_bench and i3d; x3d gradient "
             "and deep_taylor >= 10x faster than the conv3d builder's; x3d_small training "
             ">= 3x faster", ""]
    for kernels, per_case in results.items():
        lines += [f"## {kernels}", "", "| case | method | median s | / base | base | "
                  "peak RSS MiB | load (1 min) |", "|---|---|---|---|---|---|---|"]
        for case, res in per_case.items():
            if "error" in res:
                lines.append(f"| {case} | error: {res['error'][:200]} | | | | | |")
                continue
            for name, m in res["methods"].items():
                ratio = m.get("median_paired_ratio")
                lines.append(f"| {case} | {name} | {m['median_s']:.3f} | "
                             f"{'-' if ratio is None else format(ratio, '.2f')} | "
                             f"{m.get('baseline', '')} | {m['peak_rss_mb']:.0f} | "
                             f"{res['load'][0]:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--kernels", nargs="+", default=list(KERNEL_SETS),
                        choices=list(KERNEL_SETS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--code", help="checkout whose analyzers / kvlrp the workers import")
    parser.add_argument("--out", help="results file ('-': print only; default "
                        "benchmarks/results/speed_<date>.md)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.repeats, args.warmup)), flush=True)
        return 0
    results: dict = {}
    code = str(Path(args.code).resolve()) if args.code else str(ROOT)
    for kernels in args.kernels:
        results[kernels] = {}
        for case in args.cases:
            env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=KERNEL_SETS[kernels],
                       TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1",
                       PYTHONPATH=code + os.pathsep + os.environ.get("PYTHONPATH", ""))
            cmd = [sys.executable, __file__, "--worker", case, "--repeats", str(args.repeats),
                   "--warmup", str(args.warmup)]
            print(f"[{kernels}] {case} ...", file=sys.stderr, flush=True)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=code)
            found = [s for s in proc.stdout.splitlines() if s.startswith("{")]
            results[kernels][case] = json.loads(found[-1]) if found else {
                "error": f"exit {proc.returncode}: "
                         + " ".join(proc.stderr.strip().splitlines()[-3:])}
            print(json.dumps(results[kernels][case])[:600], file=sys.stderr, flush=True)
    text = _report(results, args)
    print(text)
    if args.out != "-":
        out = Path(args.out) if args.out else (
            ROOT / "benchmarks" / "results" / f"speed_{dt.date.today().isoformat()}.md")
        out.write_text(text + "\n\n<details><summary>raw results (JSON)</summary>\n\n```json\n"
                       + json.dumps(results, indent=1) + "\n```\n</details>\n", encoding="utf-8")
        print(f"written: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
