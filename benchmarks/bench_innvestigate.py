"""Time iNNvestigate 2.1.2's deep_taylor and gradient analyzers on a zoo model (one JSON line).

Runs only in the ``innvestigate`` tox environment (TensorFlow 2.14, tf.keras 2, graph mode);
``benchmarks/bench_analyzers.py`` calls it as a subprocess to put iNNvestigate beside our
engine::

    .tox/innvestigate/bin/python benchmarks/bench_innvestigate.py \\
        --model c3d_bench --weights W.npz --batch 8 --repeats 5

Arguments
    ``--model``      a spec name from ``tests/helpers/innvestigate_zoo/spec.py`` (``c3d_bench``,
                     ``c3d_full``, or any reference model such as ``plain_bias``).
    ``--weights``    npz with keys ``weights/<layer>/<i>`` in Keras order, e.g. written by
                     ``np.savez(W, **spec.flatten_weights(weights))`` (``weights`` a
                     ``{layer name: [arrays]}`` dict, e.g. ``spec.make_weights("c3d_bench")`` or
                     read from a Keras 3 model built by ``build_keras3.build``). Default: the
                     spec's seeded weights.
    ``--inputs``     optional ``.npy`` batch ``[batch, *input_shape]``; default
                     ``spec.make_inputs(model, n=batch)`` (uniform in [-1, 1], seeded).
    ``--batch``      batch size (default 8); ``--repeats`` timed rounds (default 5) after
                     ``--warmup`` untimed rounds (default 1); ``--analyzers`` (default
                     ``deep_taylor gradient``); ``--threads`` TensorFlow intra-op threads
                     (default: TensorFlow's choice); ``--relevance-out`` a ``.npy`` for
                     deep_taylor's relevance of the inputs (to compare with ours).

Timing: the baseline ``tape`` (the graph's input gradient of each clip's top logit, a Keras
backend function as iNNvestigate's analyzers are) and every analyzer run in this one process,
interleaved: each round calls every method once, in an order rotated per round
(``_interleave.round_orders``); an analyzer's ``median_paired_ratio`` is the median over rounds
of its time over that round's tape time.

Output: exactly one JSON line on stdout (everything else goes to stderr)::

    {"library": "innvestigate", "innvestigate": "2.1.2", "tensorflow": "2.14.1",
     "model": "c3d_bench", "batch": 8, "input_shape": [16, 112, 112, 3], "repeats": 5,
     "warmup": 1, "n_parameters": 3046858,
     "forward_s": {"median": ..., "times": [...]},
     "tape": {"setup_s": ..., "median_s": ..., "times": [...]},
     "analyzers": {"deep_taylor": {"setup_s": ..., "median_s": ..., "times": [...],
                                   "median_paired_ratio": ..., "peak_rss_mb": ...},
                   "gradient": {...}},
     "peak_rss_mb": ...}

``setup_s`` is analyzer creation plus the first (graph-building) call; ``median_s`` the
median of the timed ``analyze`` calls; ``peak_rss_mb`` the process's peak resident memory
after that analyzer ran (monotone: it includes everything before). Exit status 2 on bad
arguments, with a message naming the problem.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _interleave import round_orders, summarize  # noqa: E402  (pure Python)
from innvestigate_zoo import build_keras2, spec  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn, repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments, validated."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="c3d_bench", help="zoo spec name")
    parser.add_argument("--weights", type=Path, help="npz with weights/<layer>/<i> keys")
    parser.add_argument("--inputs", type=Path, help=".npy input batch")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--analyzers", nargs="+", default=["deep_taylor", "gradient"])
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: default)")
    parser.add_argument("--relevance-out", type=Path,
                        help="write deep_taylor's relevance of the inputs to this .npy")
    args = parser.parse_args(argv)
    if args.model not in spec.ZOO:
        parser.error(f"--model {args.model!r} is not a zoo spec; choose from {sorted(spec.ZOO)}")
    if args.batch < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("--batch and --repeats must be >= 1 and --warmup >= 0")
    for path in (args.weights, args.inputs):
        if path is not None and not path.is_file():
            parser.error(f"file not found: {path}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its JSON line; returns the exit status."""
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.compat.v1.disable_eager_execution()
    import innvestigate

    model_spec = spec.get_spec(args.model)
    weights = (build_keras2.load_npz_weights(args.weights) if args.weights
               else spec.make_weights(model_spec))
    if args.inputs is not None:
        x = np.load(args.inputs).astype(np.float32)
        expected = (args.batch,) + model_spec.input_shape
        if x.shape != expected:
            print(f"error: --inputs has shape {x.shape}, expected {expected}", file=sys.stderr)
            return 2
    else:
        x = spec.make_inputs(model_spec, n=args.batch)
    model = build_keras2.build(model_spec, weights)
    if model_spec.layers[-1].config.get("activation") == "softmax":
        model = innvestigate.model_wo_softmax(model)

    for _ in range(max(args.warmup, 1)):
        model.predict_on_batch(x)
    forward = timed(lambda: model.predict_on_batch(x), args.repeats)
    result = {
        "library": "innvestigate",
        "innvestigate": _version("innvestigate"),
        "tensorflow": tf.__version__,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
        "model": args.model,
        "batch": args.batch,
        "input_shape": list(model_spec.input_shape),
        "repeats": args.repeats,
        "warmup": args.warmup,
        "n_parameters": int(model.count_params()),
        "forward_s": {"median": statistics.median(forward), "times": forward},
        "analyzers": {},
    }
    # every method in this process, interleaved round by round; the baseline is the graph's
    # own input gradient of the top logit (what a tf.function tape gradient is in TF 2.14's
    # graph mode), built and run like iNNvestigate's analyzers (a Keras backend function)
    calls = {"tape": _tape_function(model, x)}
    setups = {}
    for name in ["tape", *args.analyzers]:
        start = time.perf_counter()
        if name != "tape":
            analyzer = innvestigate.create_analyzer(
                name, model, **dict(spec.ANALYZER_KWARGS.get(name, {})))
            calls[name] = lambda analyzer=analyzer: analyzer.analyze(x)
        first = calls[name]()  # builds the graph
        setups[name] = (time.perf_counter() - start, peak_rss_mb())
        if name == "deep_taylor" and args.relevance_out is not None:
            np.save(args.relevance_out, np.asarray(first, dtype=np.float32))
    for _ in range(args.warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for order in round_orders(list(calls), args.repeats):
        for name in order:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    result["tape"] = {"setup_s": setups["tape"][0], **summarize(times["tape"])}
    for name in args.analyzers:
        result["analyzers"][name] = {"setup_s": setups[name][0],
                                     **summarize(times[name], times["tape"]),
                                     "peak_rss_mb": setups[name][1]}
        print(f"{name}: median {statistics.median(times[name]):.3f} s over {args.repeats} "
              f"rounds, {result['analyzers'][name]['median_paired_ratio']:.2f}x the tape "
              "gradient", file=sys.stderr)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result), flush=True)
    return 0


def _tape_function(model, x: np.ndarray):
    """A no-argument call of the compiled input gradient of each clip's top logit."""
    import tensorflow as tf

    logits = model.output
    top = tf.one_hot(tf.argmax(logits, axis=-1), tf.shape(logits)[-1])
    grad = tf.gradients(tf.reduce_sum(logits * top), model.inputs[0])[0]
    function = tf.compat.v1.keras.backend.function(model.inputs, [grad])
    return lambda: function([x])[0]


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    sys.exit(main())
