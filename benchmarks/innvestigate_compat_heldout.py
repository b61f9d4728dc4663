"""``compat="innvestigate"`` on a model outside the cross-check zoo (issue 22's held-out case).

Two halves, one per environment, joined by an npz file::

    # 1. iNNvestigate 2.1.2 (the innvestigate tox env: TensorFlow 2.14, graph mode)
    .tox/innvestigate/bin/python benchmarks/innvestigate_compat_heldout.py theirs OUT.npz
    # 2. ours (Keras 3): each name by default and with compat="innvestigate", one table
    python benchmarks/innvestigate_compat_heldout.py ours OUT.npz

The model is the shape the issue describes and is in no reference file: Conv3D + ReLU,
MaxPooling3D, Conv3D + ReLU, AveragePooling3D, Flatten, Dense + ReLU, Dense, all with biases,
seeded weights of its own (seed 2201) and 4 clips uniform in [-1, 1]. Every deterministic
name is explained at each clip's top logit (``neuron_selection_mode="index"``).

The table gives, per name, the relative L2 distance ``|ours - theirs| / |theirs|`` (the
issue's measure) and the relative maximum difference ``max|ours - theirs| / max|theirs|`` (the
cross-check's), for the default and for ``compat="innvestigate"``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests" / "helpers")]  # (this checkout)
from innvestigate_zoo import spec  # noqa: E402

HELD_OUT = spec.ModelSpec("held_out_c3d", spec.CLIP, (
    spec._conv("conv1", 4),
    spec._pool("pool1", (1, 2, 2)),
    spec._conv("conv2", 6),
    spec._pool("pool2", (2, 2, 2), "AveragePooling3D"),
    spec._flat(),
    spec._dense("fc1", 16, act="relu"),
    spec._dense("logits", 5),
), "held out: Conv3D relu, MaxPooling3D, Conv3D relu, AveragePooling3D, Flatten, Dense, biases",
    seed=2201, n_samples=4)

#: The names compared (every deterministic one: not ``random`` / ``smoothgrad``, which draw
#: noise, nor ``lrp``, which takes rules of your own).
NAMES = spec.DETERMINISTIC_ANALYZERS


def theirs(out: Path) -> None:
    """iNNvestigate's maps of :data:`HELD_OUT` (with its weights and inputs) into ``out``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # (the references' Eigen kernels)
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    import tensorflow as tf
    tf.compat.v1.disable_eager_execution()
    import innvestigate
    from innvestigate_zoo import build_keras2

    weights = spec.make_weights(HELD_OUT)
    x = spec.make_inputs(HELD_OUT)
    logits = build_keras2.build(HELD_OUT, weights).predict_on_batch(x)
    index = np.argmax(logits, axis=1)
    arrays = dict(spec.flatten_weights(weights), x=x, index=index)
    for name in NAMES:
        tf.keras.backend.clear_session()
        model = build_keras2.build(HELD_OUT, weights)
        analyzer = innvestigate.create_analyzer(name, model, neuron_selection_mode="index",
                                                **spec.ANALYZER_KWARGS.get(name, {}))
        arrays[f"relevance/{name}"] = np.asarray(analyzer.analyze(x, neuron_selection=index),
                                                 np.float32)
        print(name, file=sys.stderr)
    np.savez(out, **arrays)


def ours(path: Path) -> None:
    """Print the table comparing ours (default, compat) with the maps in ``path``."""
    from innvestigate_zoo import build_keras3

    import analyzers

    with np.load(path) as data:
        stored = {k: data[k] for k in data.files}
    model = build_keras3.build(HELD_OUT, spec.unflatten_weights(stored))
    x, index = stored["x"], stored["index"]
    print("| name | default: rel. L2 | default: rel. max | compat: rel. L2 | compat: rel. max |")
    print("|---|---|---|---|---|")
    for name in NAMES:
        reference = stored[f"relevance/{name}"].astype(np.float64)
        row = [f"`{name}`"]
        for compat in (None, "innvestigate"):
            analyzer = analyzers.create_analyzer(name, model, neuron_selection_mode="index",
                                                 compat=compat,
                                                 **spec.ANALYZER_KWARGS.get(name, {}))
            got = analyzer.analyze(x, neuron_selection=index).astype(np.float64)
            l2 = np.linalg.norm(got - reference) / np.linalg.norm(reference)
            rel_max = np.abs(got - reference).max() / np.abs(reference).max()
            row += [f"{l2:.2g}", f"{rel_max:.2g}"]
        print("| " + " | ".join(row) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("side", choices=("theirs", "ours"))
    parser.add_argument("path", type=Path, help="the npz of iNNvestigate's maps")
    args = parser.parse_args(argv)
    (theirs if args.side == "theirs" else ours)(args.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
