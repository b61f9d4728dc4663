"""Time and trace a zoo model's input gradient in plain TensorFlow, on any TensorFlow version.

No Keras, no ``analyzers`` and no ``kvlrp`` imports: the network of a zoo spec
(``tests/helpers/innvestigate_zoo/spec.py``; Conv3D, MaxPooling3D, Flatten and Dense layers) is
written
with ``tf.nn`` ops on the spec's seeded weights and inputs, so this runs unchanged in our env
(TF 2.21) and in the ``innvestigate`` tox env (TF 2.14) and compares the same program, op for
op, across TensorFlow versions. ``bench_tf_gap.py`` runs it per version and kernel set.

    python benchmarks/bench_tf_ops.py --model c3d_bench --batch 4 --repeats 3

The gradient of the top logit (summed over the batch) with respect to the input is timed two
ways, interleaved call by call: as a ``tf.function`` (how our engine runs) and as a
TF1-style ``Session`` graph (how iNNvestigate runs). Then one ``Session`` call runs with
``FULL_TRACE``: the executed kernels (``_MklNative*`` names mean oneDNN) with their times,
per layer. Prints one JSON line::

    {"tensorflow": "2.21.0", "onednn": true, "env": "1", "model": "c3d_bench", "batch": 4,
     "intra": 0, "inter": 0, "gflop": ..., "function_s": [...], "session_s": [...],
     "trace_wall_s": ..., "kernels": [{"layer": "conv2", "pass": "backward",
     "kernel": "_MklNativeConv3DBackpropInputV2", "s": ...}, ...], "grad_abs_sum": ...}
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
from innvestigate_zoo import spec as zoo_spec  # noqa: E402  (pure numpy)

SUPPORTED = ("Conv3D", "MaxPooling3D", "Flatten", "Dense")


def onednn_enabled(tf) -> bool | None:
    """Whether this TensorFlow runs its oneDNN CPU kernels (None: it cannot say)."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def check_spec(model_spec) -> None:
    """Raise ``ValueError`` if the spec is not a plain sequential stack this file can write."""
    for layer in model_spec.layers:
        if layer.kind not in SUPPORTED or layer.inputs:
            raise ValueError(f"layer {layer.name!r} ({layer.kind}, inputs {layer.inputs}) is "
                             f"not supported; a sequential stack of {SUPPORTED} is")


def conv_gflop(model_spec, batch: int) -> float:
    """Forward GFLOP of the convolutions and dense layers (2 per multiply-add)."""
    shapes = zoo_spec.layer_shapes(model_spec)
    total = 0.0
    for layer in model_spec.layers:
        out_shape, weight_shapes = shapes[layer.name]
        if layer.kind == "Conv3D":
            kernel = weight_shapes[0]
            voxels = out_shape[0] * out_shape[1] * out_shape[2]
            total += 2.0 * batch * voxels * kernel[0] * kernel[1] * kernel[2] * kernel[3] \
                * kernel[4]
        elif layer.kind == "Dense":
            total += 2.0 * batch * weight_shapes[0][0] * weight_shapes[0][1]
    return total / 1e9


def make_forward(tf, model_spec, weights):
    """``forward(x) -> logits`` from tf.nn ops, each layer under a name scope of its name."""
    constants = {name: [tf.constant(w) for w in ws] for name, ws in weights.items()}

    def forward(h):
        for layer in model_spec.layers:
            cfg = layer.config
            with tf.name_scope(layer.name):
                if layer.kind == "Conv3D":
                    kernel, *bias = constants[layer.name]
                    h = tf.nn.conv3d(h, kernel, [1] * 5, cfg.get("padding", "valid").upper())
                elif layer.kind == "MaxPooling3D":
                    size = [1, *zoo_spec._tuple(cfg["pool_size"], 3), 1]
                    h = tf.nn.max_pool3d(h, size, size, cfg.get("padding", "valid").upper())
                elif layer.kind == "Flatten":
                    h = tf.reshape(h, [tf.shape(h)[0], -1])
                else:
                    kernel, *bias = constants[layer.name]
                    h = tf.matmul(h, kernel)
                if layer.kind in ("Conv3D", "Dense"):
                    if bias:
                        h = h + bias[0]
                    if cfg.get("activation") == "relu":
                        h = tf.nn.relu(h)
                    elif cfg.get("activation") not in (None, "linear", "softmax"):
                        raise ValueError(f"activation {cfg['activation']!r} of "
                                         f"{layer.name!r} is not supported")
        return h

    return forward


def make_gradient(tf, forward):
    """``grad(x)``: the input gradient of the batch's summed top logits."""

    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            target = tf.reduce_sum(tf.reduce_max(forward(x), axis=-1))
        return tape.gradient(target, x)

    return grad


def trace_kernels(tf, sess, out, feed, layers: list[str]) -> tuple[float, list[dict]]:
    """One ``FULL_TRACE`` session run: wall time and the kernels' times per layer."""
    opts = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
    meta = tf.compat.v1.RunMetadata()
    start = time.perf_counter()
    sess.run(out, feed, options=opts, run_metadata=meta)
    wall = time.perf_counter() - start
    agg: dict[tuple[str, str, str], float] = collections.defaultdict(float)
    for dev in meta.step_stats.dev_stats:
        for node in dev.node_stats:
            label = node.timeline_label or node.node_name
            kernel = label.split("(")[0].split("=")[-1].strip()
            parts = node.node_name.split("/")
            layer = next((p for p in parts if p in layers), "other")
            stage = "backward" if "gradient" in node.node_name else "forward"
            agg[(layer, stage, kernel)] += node.all_end_rel_micros / 1e6
    rows = [{"layer": k[0], "pass": k[1], "kernel": k[2], "s": v} for k, v in agg.items()]
    return wall, sorted(rows, key=lambda r: -r["s"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments, validated."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="c3d_bench", help="zoo spec name")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per way")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: default)")
    parser.add_argument("--inter", type=int, default=0, help="inter-op threads (0: default)")
    args = parser.parse_args(argv)
    if args.model not in zoo_spec.ZOO:
        parser.error(f"--model {args.model!r} is not a zoo spec; choose from "
                     f"{sorted(zoo_spec.ZOO)}")
    if args.batch < 1 or args.repeats < 1 or args.threads < 0 or args.inter < 0:
        parser.error("--batch and --repeats must be >= 1, --threads and --inter >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the timing and the trace; print the JSON line."""
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if args.inter:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter)
    model_spec = zoo_spec.get_spec(args.model)
    check_spec(model_spec)
    weights = zoo_spec.make_weights(model_spec)
    x_value = zoo_spec.make_inputs(model_spec, n=args.batch).astype(np.float32)

    compiled = tf.function(make_gradient(tf, make_forward(tf, model_spec, weights)))
    x_eager = tf.constant(x_value)
    graph = tf.Graph()
    with graph.as_default():
        placeholder = tf.compat.v1.placeholder(tf.float32, x_value.shape)
        out = make_gradient(tf, make_forward(tf, model_spec, weights))(placeholder)
    sess = tf.compat.v1.Session(graph=graph)
    feed = {placeholder: x_value}
    ways = {"function_s": lambda: compiled(x_eager).numpy(),
            "session_s": lambda: sess.run(out, feed)}
    first = {name: call() for name, call in ways.items()}  # trace / graph build, warm-up
    times: dict[str, list[float]] = {name: [] for name in ways}
    for r in range(args.repeats):
        for name in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
            start = time.perf_counter()
            ways[name]()
            times[name].append(time.perf_counter() - start)
    wall, kernels = trace_kernels(tf, sess, out, feed, [lay.name for lay in model_spec.layers])
    print(json.dumps({
        "tensorflow": tf.__version__, "onednn": onednn_enabled(tf),
        "env": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"), "model": args.model,
        "batch": args.batch, "intra": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter": tf.config.threading.get_inter_op_parallelism_threads(),
        "gflop_forward": conv_gflop(model_spec, args.batch),
        **times, "function_median_s": statistics.median(times["function_s"]),
        "session_median_s": statistics.median(times["session_s"]),
        "trace_wall_s": wall, "kernels": kernels,
        "grad_abs_sum": float(np.abs(first["function_s"]).sum()),
        "function_session_max_abs_diff": float(np.abs(first["function_s"]
                                                      - first["session_s"]).max()),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
