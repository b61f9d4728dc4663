"""Time the analyzers engine against a compiled input gradient, iNNvestigate 2.1.2 and Zennit.

Models: the C3D-shaped benchmark model of the cross-check zoo (``c3d_bench``: 16 x 112 x 112 x 3
clips, batch 4), ``r2plus1d_small`` and ``x3d_small`` from :mod:`kvlrp.models` (8 x 56 x 56 x 3,
batch 8) and the full-size C3D (``c3d_full``, batch 2). Per model and TF CPU kernel set
(``TF_ENABLE_ONEDNN_OPTS=1`` and ``0``, a process-level choice) ONE worker process builds the
model once and times the baseline, a plain ``tf.function`` input gradient of the selected logit,
and ``deep_taylor``, ``lrp.epsilon``, ``lrp.alpha_2_beta_1`` on the same weights and inputs,
interleaved: after ``--warmup`` untimed rounds, ``--repeats`` rounds each call every method once
(in an order rotated per round, ``_interleave.round_orders``). A method's ratio to the gradient
is taken within that process: the ratio of the medians, and the median of the per-round ratios
(each round's method time over the same round's gradient time), which load spikes hit on both
sides. If an iNNvestigate 2.1.2 Python exists (``KVLRP_INNVESTIGATE_PYTHON``, default
``.tox/innvestigate/bin/python``), ``bench_innvestigate.py`` times iNNvestigate's
``deep_taylor`` and ``gradient`` in one process of its own on the same weights and inputs; if a
Python with torch and zennit exists (``KVLRP_ZENNIT_PYTHON``, default
``.tox/zennit/bin/python``, built by ``tox -e zennit``), ``bench_zennit.py`` times Zennit's z+
and its gradient on the same C3D weights and inputs. Their ratios to their own gradient are
same-process; their times against ours are across processes (other libraries, other
TensorFlow/PyTorch), run right after ours.

    python benchmarks/bench_analyzers.py             # full run, writes results/analyzers.md
    python benchmarks/bench_analyzers.py --quick     # smoke run on a tiny zoo model

Targets reported against (issue 10): ``deep_taylor`` and ``lrp.epsilon <= 1.55 x gradient``
within each kernel set; iNNvestigate's and Zennit's z+ times ``>= 1.5 x`` ours.
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
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
sys.path.insert(0, str(ROOT))

import _machine  # noqa: E402  (chooses TF's CPU kernels before TensorFlow loads)
from _interleave import round_orders, summarize  # noqa: E402

#: ``gradient``: the baseline, through ``analyzers.build_graph`` (whose max pooling routes ties
#: to one winner); ``keras_gradient``: through the Keras model itself (TF's own pooling
#: gradient, as a user's ``tf.GradientTape`` gets it)
METHODS = ("gradient", "keras_gradient", "deep_taylor", "lrp.epsilon", "lrp.alpha_2_beta_1")
#: (model, batch): zoo spec names, or ``kvlrp:<architecture>`` for a kvlrp.models builder
#: (8 x 56 x 56 x 3 clips, 10 classes, seeded weights; issue 9's r2plus1d_small / x3d_small)
FULL_CASES = (("c3d_bench", 4), ("kvlrp:r2plus1d_small", 8), ("kvlrp:x3d_small", 8),
              ("c3d_full", 2))
QUICK_CASES = (("plain_bias", 2),)
#: Kernel sets: label -> TF_ENABLE_ONEDNN_OPTS value given to every worker
KERNEL_SETS = {"oneDNN": "1", "Eigen": "0"}
#: A Python with iNNvestigate 2.1.2 (its tox env or a venv); bench_innvestigate.py is skipped
#: without one
INNVESTIGATE_PYTHON = Path(os.environ.get(
    "KVLRP_INNVESTIGATE_PYTHON", str(ROOT / ".tox" / "innvestigate" / "bin" / "python")))
#: A Python with torch and zennit (its tox env); bench_zennit.py is skipped without one
ZENNIT_PYTHON = Path(os.environ.get(
    "KVLRP_ZENNIT_PYTHON", str(ROOT / ".tox" / "zennit" / "bin" / "python")))
TARGET_DT_OVER_GRADIENT = 1.55  # deep_taylor and lrp.epsilon
TARGET_METHODS = ("deep_taylor", "lrp.epsilon")
TARGET_SPEEDUP_VS_INNVESTIGATE = 1.5


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- worker: every method of one model in this process, interleaved ----------------------
def _load_case(model_name: str, batch: int):
    """The Keras model, its inputs and per-analyzer keyword arguments."""
    if model_name.startswith("kvlrp:"):
        import keras
        import numpy as np

        from kvlrp.models import build_model

        keras.utils.set_random_seed(0)
        model = build_model(model_name.split(":", 1)[1], 10, frames=8, size=56)
        x = np.random.default_rng(0).uniform(0, 1, (batch, 8, 56, 56, 3)).astype(np.float32)
        return model, x, {"deep_taylor.bounded": {"low": 0.0, "high": 1.0}}
    from innvestigate_zoo import build_keras3
    from innvestigate_zoo import spec as zoo_spec

    model_spec = zoo_spec.get_spec(model_name)
    return (build_keras3.build(model_spec), zoo_spec.make_inputs(model_spec, n=batch),
            zoo_spec.ANALYZER_KWARGS)


def _make_call(method: str, model, x, kwargs_for):
    """A no-argument callable running ``method`` on ``x`` and returning a numpy array."""
    import tensorflow as tf

    import analyzers

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

        return lambda: gradient(tf.convert_to_tensor(x)).numpy()
    if method == "keras_gradient":
        @tf.function(reduce_retracing=True)
        def keras_gradient(xt: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                tape.watch(xt)
                logits = model(xt, training=False)  # as built (a softmax, if any, kept)
                top = tf.one_hot(tf.argmax(logits, axis=-1), tf.shape(logits)[-1])
                target = tf.reduce_sum(logits * top)
            return tape.gradient(target, xt)

        return lambda: keras_gradient(tf.convert_to_tensor(x)).numpy()
    analyzer = analyzers.create_analyzer(method, model, **dict(kwargs_for.get(method, {})))
    return lambda: analyzer.analyze(x)


def run_worker(model_name: str, methods: list[str], batch: int, repeats: int,
               warmup: int) -> dict:
    """Time every method on one model in this process, interleaved round by round.

    The first call of each method (tracing, graph building) is its ``setup_s``; then
    ``warmup`` untimed rounds and ``repeats`` timed rounds call every method once each, in the
    order of :func:`_interleave.round_orders`. Returns a JSON-able dict; a method that fails
    gets an ``error`` and the others still run.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    model, x, kwargs_for = _load_case(model_name, batch)
    kernels = _machine.kernel_set()
    out: dict = {"model": model_name, "batch": batch, "kernels": kernels,
                 "rss_after_model_mb": peak_rss_mb(), "methods": {}}
    calls = {}
    for method in methods:
        start = time.perf_counter()
        try:
            call = _make_call(method, model, x, kwargs_for)
            result = call()
        except Exception as err:  # noqa: BLE001  (reported per method in the results file)
            out["methods"][method] = {"error": f"{type(err).__name__}: {err}"[:300]}
            continue
        calls[method] = call
        out["methods"][method] = {
            "model": model_name, "method": method, "batch": batch, "kernels": kernels,
            "setup_s": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb(),
            "finite": bool(np.isfinite(result).all()),
            "relevance_sum": float(result.reshape(batch, -1).sum(axis=1).mean()),
            "relevance_over_logit": _relevance_over_logit(model, x, result, method)}
    if not calls:
        return out
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {m: [] for m in calls}
    orders = round_orders(list(calls), repeats)
    for order in orders:
        for method in order:
            t0 = time.perf_counter()
            calls[method]()
            times[method].append(time.perf_counter() - t0)
    baseline = times.get("gradient")
    for method, ts in times.items():
        out["methods"][method].update(
            summarize(ts, baseline if method != "gradient" else None))
    out["round_orders"] = orders
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def _relevance_over_logit(model, x, result, method: str) -> list[float] | None:
    """Per clip: relevance sum / explained output (deep_taylor: relu of the top logit)."""
    if method != "deep_taylor":
        return None
    import numpy as np

    import analyzers

    logits = analyzers.build_graph(model).forward(x).numpy()
    top = np.maximum(logits.max(axis=1), 0.0)
    sums = result.reshape(len(x), -1).astype(np.float64).sum(axis=1)
    return [float(s / t) if t > 0 else float("nan") for s, t in zip(sums, top)]


def _run_subprocess(cmd: list[str], timeout: float, onednn: str | None = None) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    if onednn is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def run_ours(model_name: str, methods: list[str], batch: int, args: argparse.Namespace,
             onednn: str | None = None) -> dict:
    """Every method in ONE fresh Python process (``onednn``: its TF_ENABLE_ONEDNN_OPTS);
    returns ``{method: result}`` (each an ``error`` if the process failed)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--model", model_name,
           "--methods", *methods, "--batch", str(batch), "--repeats", str(args.repeats),
           "--warmup", str(args.warmup)]
    result = _run_subprocess(cmd, args.timeout, onednn)
    if "error" in result:
        return {"methods": {m: {"error": result["error"]} for m in methods}}
    return result


def run_zennit(model_name: str, batch: int, args: argparse.Namespace) -> dict:
    """Zennit's z+ and gradient via ``bench_zennit.py`` in the Zennit Python (C3D zoo
    models only)."""
    if model_name.startswith("kvlrp:") or not model_name.startswith("c3d"):
        return {"error": "not run (bench_zennit.py builds the zoo's C3D models only)"}
    if not ZENNIT_PYTHON.exists():
        return {"error": f"{ZENNIT_PYTHON} not found (create it with tox -e zennit "
                         "or set KVLRP_ZENNIT_PYTHON)"}
    cmd = [str(ZENNIT_PYTHON), str(ROOT / "benchmarks" / "bench_zennit.py"), "--model",
           model_name, "--batch", str(batch), "--repeats", str(args.repeats),
           "--warmup", str(args.warmup)]
    return _run_subprocess(cmd, args.timeout)


def run_innvestigate(model_name: str, batch: int, args: argparse.Namespace,
                     onednn: str | None = None) -> dict:
    """iNNvestigate's deep_taylor and gradient via ``bench_innvestigate.py``."""
    if not INNVESTIGATE_PYTHON.exists():
        return {"error": f"{INNVESTIGATE_PYTHON} not found (create it with tox -e innvestigate "
                         "or set KVLRP_INNVESTIGATE_PYTHON)"}
    cmd = [str(INNVESTIGATE_PYTHON), str(ROOT / "benchmarks" / "bench_innvestigate.py"),
           "--model", model_name, "--batch", str(batch), "--repeats", str(args.repeats),
           "--warmup", str(args.warmup), "--analyzers", "deep_taylor", "gradient"]
    return _run_subprocess(cmd, args.timeout, onednn)


# -- report ---------------------------------------------------------------------------
def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _median(entry: dict, method: str) -> float | None:
    if "error" in entry:
        return None
    return entry.get("analyzers", {}).get(method, {}).get("median_s")


def _ratio_note(kernels: str, method: str, r: dict) -> str | None:
    ratio = r.get("median_paired_ratio")
    if ratio is None:
        return None
    worst = max(ratio, r["ratio_of_medians"])
    ok = "met" if worst <= TARGET_DT_OVER_GRADIENT else "NOT met"
    return (f"{kernels}: {method} / gradient (same process, interleaved) = {ratio:.2f} "
            f"median of per-round ratios ({', '.join(f'{q:.2f}' for q in r['paired_ratios'])}), "
            f"{r['ratio_of_medians']:.2f} ratio of medians (target <= "
            f"{TARGET_DT_OVER_GRADIENT} by both: {ok})")


def _keras_ratio_note(kernels: str, ours: dict) -> str | None:
    """deep_taylor against the Keras model's own tape gradient (TF's pooling gradient)."""
    k_t = ours.get("keras_gradient", {}).get("median_s")
    dt_t = ours.get("deep_taylor", {}).get("median_s")
    g_t = ours.get("gradient", {}).get("median_s")
    if not (k_t and dt_t and g_t):
        return None
    return (f"{kernels}: against the Keras model's own tape gradient ({k_t:.3f} s; TF's "
            f"max-pooling gradient, which does not route ties to one winner): deep_taylor / "
            f"keras_gradient = {dt_t / k_t:.2f}, gradient / keras_gradient = {g_t / k_t:.2f} "
            f"(ratios of medians)")


def build_table(results: dict) -> str:
    """Markdown tables of times, memory and ratios: one block per model, one row per method
    and kernel set; each ratio to the gradient is taken within one process."""
    lines = []
    for model_name, entry in results.items():
        lines += [f"### {model_name} (batch {entry['batch']})", "",
                  "| method | kernels | ours median s | / gradient | / gradient, per-round "
                  "median | peak RSS MiB | iNNvestigate s | iNNvestigate / ours |",
                  "|---|---|---|---|---|---|---|---|"]
        notes = []
        for kernels, per in entry["kernels"].items():
            ours, inn = per["ours"], per["innvestigate"]
            for method in entry["methods"]:
                r = ours.get(method, {})
                t = r.get("median_s")
                ratio = 1.0 if (method == "gradient" and t) else r.get("ratio_of_medians")
                paired = 1.0 if (method == "gradient" and t) else r.get("median_paired_ratio")
                inn_t = _median(inn, method)
                speed = inn_t / t if (inn_t is not None and t) else None
                label = method if "error" not in r else f"{method} (error: {r['error'][:80]})"
                lines.append(f"| {label} | {kernels} | {_fmt(t)} | {_fmt(ratio, '.2f')} | "
                             f"{_fmt(paired, '.2f')} | {_fmt(r.get('peak_rss_mb'), '.0f')} | "
                             f"{_fmt(inn_t)} | {_fmt(speed, '.2f')} |")
            for method in TARGET_METHODS:
                note = _ratio_note(kernels, method, ours.get(method, {}))
                if note:
                    notes.append(note)
            note = _keras_ratio_note(kernels, ours)
            if note:
                notes.append(note)
            if "error" in inn:
                notes.append(f"{kernels}: iNNvestigate: {inn['error']}")
            else:
                i_dt, i_g = _median(inn, "deep_taylor"), _median(inn, "gradient")
                dt_t = ours.get("deep_taylor", {}).get("median_s")
                if i_dt and i_g:
                    notes.append(f"{kernels}: iNNvestigate {inn.get('innvestigate')} (TF "
                                 f"{inn.get('tensorflow')}) deep_taylor / its gradient "
                                 f"(its own process) = {i_dt / i_g:.2f}")
                if i_dt and dt_t:
                    ok = "met" if i_dt / dt_t >= TARGET_SPEEDUP_VS_INNVESTIGATE else "NOT met"
                    notes.append(f"{kernels}: iNNvestigate deep_taylor / ours = "
                                 f"{i_dt / dt_t:.2f} (across processes, run right after ours; "
                                 f"target >= {TARGET_SPEEDUP_VS_INNVESTIGATE}: {ok})")
            cons = ours.get("deep_taylor", {}).get("relevance_over_logit")
            if cons:
                notes.append(f"{kernels}: deep_taylor relevance / logit per clip: "
                             + ", ".join(f"{c:.7f}" for c in cons))
        zen = entry.get("zennit", {})
        if "error" in zen:
            notes.append(f"Zennit: {zen['error']}")
        elif zen:
            if zen.get("note"):
                notes.append(f"Zennit: {zen['note']}")
            z_t, zg = _median(zen, "z_plus"), _median(zen, "gradient")
            notes.append(f"Zennit {zen.get('zennit')} z+ (PyTorch {zen.get('torch')}, "
                         f"{zen.get('threads')} threads): {_fmt(z_t)} s, its gradient "
                         f"{_fmt(zg)} s (z+ / its gradient = "
                         f"{_fmt(z_t / zg if z_t and zg else None, '.2f')}, same process), "
                         f"peak RSS {_fmt(zen.get('peak_rss_mb'), '.0f')} MiB; relevance / logit "
                         + ", ".join(f"{c:.5f}" for c in
                                     zen["analyzers"]["z_plus"]["relevance_over_logit"]))
            for kernels, per in entry["kernels"].items():
                dt_t = per["ours"].get("deep_taylor", {}).get("median_s")
                if dt_t and z_t:
                    ok = "met" if z_t / dt_t >= TARGET_SPEEDUP_VS_INNVESTIGATE else "NOT met"
                    notes.append(f"Zennit z+ / ours deep_taylor ({kernels}) = {z_t / dt_t:.2f}"
                                 f" (across processes; target >= "
                                 f"{TARGET_SPEEDUP_VS_INNVESTIGATE}: {ok})")
        lines += [""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def header(args: argparse.Namespace) -> str:
    return "\n".join([
        "# analyzers benchmark", "",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "- " + _machine.machine_line(kernels="both, one worker process per model and kernel "
                                     "set (the `kernels` column)"),
        "- ours: eager + tf.function. In each worker process the compiled input gradient and "
        "every analyzer run on the same model, weights and inputs, interleaved: warm-up "
        "rounds, then timed rounds that call each method once, in an order rotated per round. "
        "`/ gradient` is the ratio of the medians; `per-round median` the median over rounds of "
        "(method time / that round's gradient time). Peak RSS is the worker's peak after that "
        "method's first call (cumulative: the gradient runs first).",
        f"- repeats: {args.repeats} timed round(s) after {args.warmup} warm-up round(s)",
        f"- targets (issue 10): deep_taylor and lrp.epsilon <= {TARGET_DT_OVER_GRADIENT}x the "
        f"gradient under each kernel set; iNNvestigate's deep_taylor and Zennit's z+ times >= "
        f"{TARGET_SPEEDUP_VS_INNVESTIGATE}x ours (these two across processes)",
        f"- iNNvestigate Python: {INNVESTIGATE_PYTHON}; Zennit Python: {ZENNIT_PYTHON}",
        f"- mode: {'quick smoke run (tiny model)' if args.quick else 'full'}", "", "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, smoke run")
    parser.add_argument("--models", nargs="+", help="zoo spec names or kvlrp:<architecture> "
                        "(default: c3d_bench kvlrp:r2plus1d_small kvlrp:x3d_small c3d_full; "
                        "--quick: plain_bias)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--kernels", nargs="+", default=list(KERNEL_SETS),
                        choices=list(KERNEL_SETS), help="TF CPU kernel sets to run under")
    parser.add_argument("--batch", type=int, help="batch size for every model")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds (each calls every method once; default 5, --quick 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per subprocess, s")
    parser.add_argument("--no-innvestigate", action="store_true")
    parser.add_argument("--no-zennit", action="store_true")
    parser.add_argument("--out", type=Path, help="markdown output (default: "
                        "benchmarks/results/analyzers.md for a full run, none for --quick)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")

    if args.worker:
        print(json.dumps(run_worker(args.model, list(args.methods), args.batch, args.repeats,
                                    args.warmup)), flush=True)
        return 0

    methods = ["gradient"] + [m for m in args.methods if m != "gradient"]  # the baseline
    cases = QUICK_CASES if args.quick else FULL_CASES
    if args.models:
        cases = tuple((m, dict(cases).get(m, 2)) for m in args.models)
    if args.batch:
        cases = tuple((m, args.batch) for m, _ in cases)
    results: dict = {}
    for model_name, batch in cases:
        entry = {"batch": batch, "methods": methods, "kernels": {}}
        for kernels in args.kernels:
            onednn = KERNEL_SETS[kernels]
            print(f"[{model_name}, {kernels}] ours: {', '.join(methods)} (one process) ...",
                  file=sys.stderr, flush=True)
            worker = run_ours(model_name, methods, batch, args, onednn)
            per = {"ours": worker.pop("methods"), "process": worker, "innvestigate": {}}
            if args.no_innvestigate:
                per["innvestigate"] = {"error": "skipped (--no-innvestigate)"}
            elif model_name.startswith("kvlrp:"):
                per["innvestigate"] = {"error": "not run (a kvlrp.models builder, not a "
                                                "zoo spec)"}
            else:
                print(f"[{model_name}, {kernels}] iNNvestigate ...", file=sys.stderr,
                      flush=True)
                per["innvestigate"] = run_innvestigate(model_name, batch, args, onednn)
            entry["kernels"][kernels] = per
        if args.no_zennit:
            entry["zennit"] = {"error": "skipped (--no-zennit)"}
        else:
            print(f"[{model_name}] Zennit ...", file=sys.stderr, flush=True)
            entry["zennit"] = run_zennit(model_name, batch, args)
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
    _machine.setup()
    sys.exit(main())
