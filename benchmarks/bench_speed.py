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
  56, batch 8), taps against conv3d;
- ``c3d_small_bf16_train``: one step of ``kvlrp train``'s compiled training loop on the demo's
  ``c3d_small`` (widths 16 32 64, dense 128; 8 x 56 x 56, batch 16, Adam) in float32 and under
  ``mixed_bfloat16``, same initial weights, one fixed batch.

``tape`` is a ``tf.function`` input gradient of the top logit through the Keras model (TF's
own kernels and pooling gradient): the baseline of every ratio. ``--code DIR`` runs the
workers on another checkout's ``analyzers`` / ``kvlrp`` (e.g. the commit before this work),
for before/after ratios. Peak RSS is the worker's after each method's first call.

    python benchmarks/bench_speed.py                          # everything, both kernel sets
    python benchmarks/bench_speed.py --issue25 --repeats 5    # every target of issue 25

``--issue25`` runs the cases above but r2plus1d (the bfloat16 step only under oneDNN) and, after
each kernel set's c3d_bench worker, iNNvestigate 2.1.2's deep_taylor (``bench_innvestigate.py``
in the ``innvestigate`` tox env's Python: TensorFlow 2.14, same ``TF_ENABLE_ONEDNN_OPTS``) on
the weights and clips that worker saved, with its own tape gradient as the baseline in its
process; then Zennit's z+ once (``bench_zennit.py``, PyTorch) on the same weights. Its report
ends with one table of every target and whether it is met.
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
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = ("c3d_bench", "i3d", "x3d", "r2plus1d", "x3d_small_train", "c3d_small_bf16_train")
#: ``--issue25``: every target of the issue (r2plus1d, met before the work, is left out);
#: the bfloat16 step only under oneDNN (under Eigen kvlrp trains in float32 anyway)
ISSUE25_CASES = ("c3d_bench", "i3d", "x3d", "x3d_small_train", "c3d_small_bf16_train")
#: A Python with iNNvestigate 2.1.2 (``tox -e innvestigate``) and one with Zennit 1.0
#: (``tox -e zennit``), for ``--issue25``'s comparisons on c3d_bench's weights
INNVESTIGATE_PYTHON = Path(os.environ.get(
    "KVLRP_INNVESTIGATE_PYTHON", str(ROOT / ".tox" / "innvestigate" / "bin" / "python")))
ZENNIT_PYTHON = Path(os.environ.get(
    "KVLRP_ZENNIT_PYTHON", str(ROOT / ".tox" / "zennit" / "bin" / "python")))
#: Old X3D (grouped Conv3D): deep_taylor cost 1.14x that model's tape gradient (the issue's
#: table), so ">= 10x faster than today" is <= 0.10 (gradient) / 0.114 (deep_taylor) x the
#: grouped model's tape gradient, measured in the same process
X3D_TARGETS = {"gradient": 0.10, "deep_taylor": 0.114}
TARGET_TRAIN_SPEEDUP = 3.0
TARGET_OVER_INNVESTIGATE = 1.5
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


def _calls(case: str, save: str | None = None) -> dict:
    """Method name -> no-argument callable, for one case (c3d_bench: with ``save``, also
    write the model's weights, the clips and deep_taylor's relevance there)."""
    import numpy as np

    rng = np.random.default_rng(0)
    if case == "c3d_bench":
        sys.path.insert(0, str(ROOT / "tests" / "helpers"))
        from innvestigate_zoo import build_keras3
        from innvestigate_zoo import spec as zoo_spec

        spec = zoo_spec.get_spec("c3d_bench")
        model, x = build_keras3.build(spec), zoo_spec.make_inputs(spec, n=8)
        if save:
            import analyzers

            out = Path(save)
            out.mkdir(parents=True, exist_ok=True)
            weights = {layer.name: [w.numpy() for w in layer.weights]
                       for layer in model.layers if layer.weights}
            np.savez(out / "c3d_bench_weights.npz", **zoo_spec.flatten_weights(weights))
            np.save(out / "c3d_bench_x.npy", x)
            np.save(out / "ours_deep_taylor.npy", np.asarray(
                analyzers.create_analyzer("deep_taylor", model).analyze(x), dtype=np.float32))
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
    if case == "c3d_small_bf16_train":
        import keras
        import tensorflow as tf

        from kvlrp.models import build_model
        from kvlrp.models.precision import precision_scope
        from kvlrp.training.loop import _make_train_step

        batch = 16
        data = tf.data.Dataset.from_tensors(
            (rng.uniform(-1, 1, (batch, 8, 56, 56, 3)).astype("float32"),
             rng.integers(0, 4, batch))).repeat()
        strategy = tf.distribute.get_strategy()
        calls = {}
        for precision in ("float32", "bfloat16"):
            keras.utils.set_random_seed(0)
            with precision_scope(precision):
                model = build_model("c3d_small", 4, frames=8, size=56, widths=(16, 32, 64),
                                    dense_units=128)
            model.compile(optimizer=keras.optimizers.Adam(1e-3),
                          loss="sparse_categorical_crossentropy")
            model.optimizer.build(model.trainable_variables)
            step = _make_train_step(model, strategy, batch)
            iterator = iter(strategy.experimental_distribute_dataset(data))
            calls[f"train_{precision}"] = (
                lambda step=step, iterator=iterator: float(step(iterator)[0]))
        return calls
    raise ValueError(f"unknown case {case!r}")


def run_worker(case: str, repeats: int, warmup: int, save: str | None = None) -> dict:
    """Every method of ``case`` in this process, interleaved; ratios to the first method."""
    calls = _calls(case, save)  # first: --code's analyzers / kvlrp, before _machine adds ROOT
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
    if name == "train_bfloat16":
        return "train_float32"
    return "tape" if "tape" in times and name != "tape" else None


def _paired(res: dict, name: str, base: str) -> float | None:
    """Median over rounds of ``name``'s time over ``base``'s in one worker's results."""
    import statistics

    methods = res.get("methods", {}) if isinstance(res, dict) else {}
    if name not in methods or base not in methods:
        return None
    return statistics.median(a / b for a, b in zip(methods[name]["times"],
                                                  methods[base]["times"]))


def _targets(results: dict, others: dict) -> list[str]:
    """One markdown table: every issue-25 target measured in this run, met or not."""
    rows = []

    def row(target, kernels, measured, value, goal, higher_is_better=False, how=""):
        if value is None:
            met = "not measured"
        else:
            met = "met" if (value >= goal if higher_is_better else value <= goal) else "**NOT met**"
        rows.append(f"| {target} | {kernels} | {measured} | {met} | {how} |")

    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for kernels, per_case in results.items():
        for case in ("c3d_bench", "i3d"):
            if case in per_case:
                v = _paired(per_case[case], "deep_taylor", "tape")
                row(f"{case} deep_taylor <= {TARGET}x tape", kernels, f"{fmt(v)}x", v, TARGET,
                    how="median of per-round ratios, one process")
        if "x3d" in per_case:
            for method, goal in X3D_TARGETS.items():
                for variant, name in (("x3d builder's model", method),
                                      ("grouped-Conv3D model", f"{method}_conv3d")):
                    v = _paired(per_case["x3d"], name, "tape_conv3d")
                    row(f"x3d {method} >= 10x faster than before (<= {goal}x the grouped "
                        f"model's tape)", kernels, f"{fmt(v)}x ({variant})", v, goal,
                        how="per-round ratio to the grouped model's tape gradient")
        if "x3d_small_train" in per_case:
            v = _paired(per_case["x3d_small_train"], "train_conv3d", "train_taps")
            row(f"x3d_small training >= {TARGET_TRAIN_SPEEDUP:g}x faster", kernels,
                f"{fmt(v)}x", v, TARGET_TRAIN_SPEEDUP, higher_is_better=True,
                how="old (grouped Conv3D) step time / new step time")
        if "c3d_small_bf16_train" in per_case:
            v = _paired(per_case["c3d_small_bf16_train"], "train_float32", "train_bfloat16")
            rows.append(f"| c3d_small training step, bfloat16 against float32 (no numeric "
                        f"target) | {kernels} | {fmt(v)}x faster in bfloat16 | measured | "
                        "float32 step time / bfloat16 step time |")
        inn = others.get("innvestigate", {}).get(kernels)
        ours = per_case.get("c3d_bench", {}).get("methods", {}).get("deep_taylor")
        if inn is not None:
            theirs = inn.get("analyzers", {}).get("deep_taylor")
            v = theirs["median_s"] / ours["median_s"] if theirs and ours else None
            row(f"iNNvestigate 2.1.2 deep_taylor >= {TARGET_OVER_INNVESTIGATE}x ours "
                "(c3d_bench, batch 8)", kernels, f"{fmt(v)}x" + (
                    f" ({theirs['median_s']:.3f} s / {ours['median_s']:.3f} s)" if v else
                    f" ({inn.get('error', '')[:120]})"), v, TARGET_OVER_INNVESTIGATE,
                higher_is_better=True, how="median times, two processes run one after the "
                "other (TF 2.14 / TF 2.21)")
    zen = others.get("zennit")
    ours = results.get("oneDNN", {}).get("c3d_bench", {}).get("methods", {}).get("deep_taylor")
    if zen is not None:
        theirs = zen.get("analyzers", {}).get("z_plus")
        v = theirs["median_s"] / ours["median_s"] if theirs and ours else None
        row(f"Zennit 1.0 z+ >= {TARGET_OVER_INNVESTIGATE}x ours (c3d_bench, batch 8)",
            "PyTorch vs oneDNN", f"{fmt(v)}x" + (
                f" ({theirs['median_s']:.3f} s / {ours['median_s']:.3f} s)" if v else
                f" ({zen.get('error', '')[:120]})"), v, TARGET_OVER_INNVESTIGATE,
            higher_is_better=True, how="median times, two processes run one after the other")
    return ["## Targets", "", "| target | kernels | measured | met? | how |",
            "|---|---|---|---|---|", *rows, ""]


def _comparison(results: dict, others: dict) -> list[str]:
    """iNNvestigate / Zennit beside ours on c3d_bench: absolute times and ratios to each
    process's own tape gradient."""
    lines = ["## c3d_bench (batch 8): ours, iNNvestigate 2.1.2 and Zennit 1.0 on the same "
             "weights and clips", "",
             "| library | kernels | tape gradient s | gradient analyzer s (/ tape) | "
             "deep_taylor / z+ s (/ tape) | their deep_taylor / ours | load (1 min) |",
             "|---|---|---|---|---|---|---|"]
    for kernels, per_case in results.items():
        ours = per_case.get("c3d_bench", {})
        if "methods" not in ours:
            continue
        m = ours["methods"]
        lines.append(f"| ours (TF {others.get('tf_ours', '')}) | {kernels} | "
                     f"{m['tape']['median_s']:.3f} | {m['gradient']['median_s']:.3f} "
                     f"({m['gradient']['median_paired_ratio']:.2f}x) | "
                     f"{m['deep_taylor']['median_s']:.3f} "
                     f"({m['deep_taylor']['median_paired_ratio']:.2f}x) | 1 | "
                     f"{ours['load'][0]:.2f} |")
        inn = others.get("innvestigate", {}).get(kernels, {})
        if "analyzers" in inn:
            a = inn["analyzers"]
            lines.append(
                f"| iNNvestigate {inn['innvestigate']} (TF {inn['tensorflow']}) | {kernels} | "
                f"{inn['tape']['median_s']:.3f} | {a['gradient']['median_s']:.3f} "
                f"({a['gradient']['median_paired_ratio']:.2f}x) | "
                f"{a['deep_taylor']['median_s']:.3f} "
                f"({a['deep_taylor']['median_paired_ratio']:.2f}x) | "
                f"**{a['deep_taylor']['median_s'] / m['deep_taylor']['median_s']:.2f}** | "
                f"{inn['load'][0]:.2f} |")
        elif inn:
            lines.append(f"| iNNvestigate | {kernels} | {inn.get('error', '')[:200]} | | | | |")
    zen = others.get("zennit")
    ours = results.get("oneDNN", {}).get("c3d_bench", {}).get("methods", {})
    if zen and "analyzers" in zen and "deep_taylor" in ours:
        a = zen["analyzers"]
        lines.append(f"| Zennit {zen['zennit']} (PyTorch {zen['torch']}) | PyTorch's own | "
                     f"{a['gradient']['median_s']:.3f} | (the tape) | "
                     f"{a['z_plus']['median_s']:.3f} ({a['z_plus']['median_paired_ratio']:.2f}x)"
                     f" | **{a['z_plus']['median_s'] / ours['deep_taylor']['median_s']:.2f}** "
                     f"(vs ours under oneDNN) | {zen['load'][0]:.2f} |")
    elif zen:
        lines.append(f"| Zennit | | {zen.get('error', '')[:200]} | | | | |")
    for kernels, diff in others.get("relevance_check", {}).items():
        lines.append(f"\n- {kernels}: deep_taylor relevance, iNNvestigate against ours on the "
                     f"same weights and clips: {diff}")
    lines.append("")
    return lines


def _report(results: dict, args: argparse.Namespace, others: dict | None = None) -> str:
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
    if others is not None:
        lines += _comparison(results, others)
    lines += _targets(results, others or {})
    return "\n".join(lines)


def _run_other(python: Path, script: str, saved: Path, args: argparse.Namespace, env: dict,
               extra: list[str]) -> dict:
    """Another library's benchmark on c3d_bench's saved weights and clips (its JSON line)."""
    if not python.exists():
        return {"error": f"{python} not found (build it with tox, see the docstring)"}
    if not (saved / "c3d_bench_weights.npz").is_file():
        return {"error": "our c3d_bench worker saved no weights (it failed)"}
    cmd = [str(python), str(ROOT / "benchmarks" / script), "--model", "c3d_bench",
           "--batch", "8", "--weights", str(saved / "c3d_bench_weights.npz"), "--inputs",
           str(saved / "c3d_bench_x.npy"), "--repeats", str(args.repeats), "--warmup",
           str(args.warmup), *extra]
    print(f"[{env['TF_ENABLE_ONEDNN_OPTS']}] {script} ...", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    found = [s for s in proc.stdout.splitlines() if s.startswith("{")]
    out = json.loads(found[-1]) if found else {
        "error": f"exit {proc.returncode}: " + " ".join(proc.stderr.strip().splitlines()[-3:])}
    out["load"] = os.getloadavg()
    print(json.dumps(out)[:600], file=sys.stderr, flush=True)
    return out


def _relevance_check(saved: Path) -> str:
    """How far iNNvestigate's deep_taylor relevance is from ours (same weights and clips)."""
    import numpy as np

    try:
        ours = np.load(saved / "ours_deep_taylor.npy").astype(np.float64)
        theirs = np.load(saved / "innvestigate_deep_taylor.npy").astype(np.float64)
    except OSError as err:
        return f"not compared ({err})"
    if ours.shape != theirs.shape:
        return f"shapes differ: ours {ours.shape}, iNNvestigate {theirs.shape}"
    diff = np.abs(ours - theirs).max() / max(np.abs(ours).max(), 1e-30)
    return f"max |difference| = {diff:.1e} of the largest |relevance|"


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
    parser.add_argument("--issue25", action="store_true",
                        help="every target of issue 25 in one run, iNNvestigate and Zennit "
                        "included (--cases ignored)")
    parser.add_argument("--compare", action="store_true",
                        help="after each c3d_bench worker, iNNvestigate (and Zennit once) on "
                        "its weights (implied by --issue25)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.repeats, args.warmup, args.save)),
              flush=True)
        return 0
    results: dict = {}
    compare = args.issue25 or args.compare
    others: dict | None = {"innvestigate": {}, "relevance_check": {}} if compare else None
    cases = list(ISSUE25_CASES) if args.issue25 else args.cases
    code = str(Path(args.code).resolve()) if args.code else str(ROOT)
    save = Path(tempfile.mkdtemp(prefix="bench_speed_")) if compare else None
    for kernels in args.kernels:
        results[kernels] = {}
        for case in cases:
            if args.issue25 and case == "c3d_small_bf16_train" and kernels != "oneDNN":
                continue
            env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=KERNEL_SETS[kernels],
                       TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1",
                       PYTHONPATH=code + os.pathsep + os.environ.get("PYTHONPATH", ""))
            cmd = [sys.executable, __file__, "--worker", case, "--repeats", str(args.repeats),
                   "--warmup", str(args.warmup)]
            if save is not None and case == "c3d_bench":
                cmd += ["--save", str(save / kernels)]
            print(f"[{kernels}] {case} ...", file=sys.stderr, flush=True)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=code)
            found = [s for s in proc.stdout.splitlines() if s.startswith("{")]
            results[kernels][case] = json.loads(found[-1]) if found else {
                "error": f"exit {proc.returncode}: "
                         + " ".join(proc.stderr.strip().splitlines()[-3:])}
            print(json.dumps(results[kernels][case])[:600], file=sys.stderr, flush=True)
            if save is not None and case == "c3d_bench":
                others["innvestigate"][kernels] = _run_other(
                    INNVESTIGATE_PYTHON, "bench_innvestigate.py", save / kernels, args,
                    env, ["--analyzers", "deep_taylor", "gradient", "--relevance-out",
                          str(save / kernels / "innvestigate_deep_taylor.npy")])
                others["relevance_check"][kernels] = _relevance_check(save / kernels)
                if kernels == "oneDNN":
                    others["zennit"] = _run_other(ZENNIT_PYTHON, "bench_zennit.py",
                                                  save / kernels, args, env, [])
    if others is not None:
        import tensorflow as tf

        others["tf_ours"] = tf.__version__
    text = _report(results, args, others)
    print(text)
    if args.out != "-":
        out = Path(args.out) if args.out else (
            ROOT / "benchmarks" / "results" / f"speed_{dt.date.today().isoformat()}.md")
        out.write_text(text + "\n\n<details><summary>raw results (JSON)</summary>\n\n```json\n"
                       + json.dumps({"ours": results, **(others or {})}, indent=1)
                       + "\n```\n</details>\n", encoding="utf-8")
        print(f"written: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
